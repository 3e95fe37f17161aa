"""The operations table's "served" column is what a running daemon answers.

The docs generator reads the handler tables (daemon/parts.py handler_tables); this asks a real
daemon every operation in botocore's model with an empty body: a served operation reaches its
handler's validation (some modelled error or an answer), one not served gets
UnknownOperationException, exactly as the table says.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from streamproc.tools.docgen import operations

TARGET = "RekognitionService."


def _error_type(endpoint: str, operation: str) -> str | None:
    request = urllib.request.Request(
        endpoint + "/", data=b"{}", method="POST",
        headers={"Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Target": TARGET + operation})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return None
    except urllib.error.HTTPError as error:
        body: dict[str, Any] = json.loads(error.read() or b"{}")
        return str(body.get("__type", "")).rsplit("#", 1)[-1]


def test_every_operation_is_served_exactly_as_the_table_says(daemon: Any) -> None:
    served = operations.served_operations()
    unknown = {op for op in operations.botocore_operations()
               if _error_type(daemon.endpoint, op) == "UnknownOperationException"}
    assert unknown == set(operations.botocore_operations()) - served
    assert served <= set(operations.botocore_operations())

"""A Rekognition client for the operator tools, pointed at a streamproc daemon.

botocore (already a dependency) is the client: it signs with the usual AWS credentials
(environment, profile) when there are any, for daemons with ``auth.enabled``, and sends
unsigned requests otherwise.
"""

from __future__ import annotations

from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:8085"


def rekognition(endpoint: str, region: str = "us-east-1") -> Any:
    """A botocore ``rekognition`` client for ``endpoint``."""
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    session = botocore.session.get_session()
    signed = session.get_credentials() is not None
    config = Config(retries={"mode": "standard", "total_max_attempts": 3},
                    signature_version=None if signed else UNSIGNED,
                    connect_timeout=10, read_timeout=120)
    return session.create_client("rekognition", endpoint_url=endpoint, region_name=region,
                                 config=config)

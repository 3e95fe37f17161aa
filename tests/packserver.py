"""A local HTTP server for model pack archives: ETag, Range/If-Range, and dropped connections."""

from __future__ import annotations

import hashlib
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from conftest import SHARED

TEST_PACK = SHARED / "models" / "test_mfn"
PACK_FILES = ("det_500m.onnx", "mobilefacenet_foamliu_128d.onnx")


def build_archive(path: Path, files: dict[str, bytes] | None = None, folder: str = "") -> bytes:
    """A zip of the test pack (or of ``files``), optionally wrapped in ``folder``/."""
    if files is None:
        files = {name: (TEST_PACK / name).read_bytes() for name in PACK_FILES}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(f"{folder}/{name}" if folder else name, data)
    return path.read_bytes()


class PackServer:
    """Serves registered bytes; ``drop_after`` cuts the next response after that many bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[dict[str, Any]] = []
        self.drop_after: int | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL ending in ``/``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> None:
        """Serve in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Shut down and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                owner.requests.append({"path": self.path, "range": self.headers.get("Range"),
                                       "if_range": self.headers.get("If-Range")})
                data = owner.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                owner._respond(self, data)

        return Handler

    def _respond(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        etag = '"' + hashlib.sha1(data).hexdigest() + '"'
        start, status = 0, 200
        wanted, validator = handler.headers.get("Range"), handler.headers.get("If-Range")
        if wanted and (validator is None or validator == etag):
            start, status = int(wanted.removeprefix("bytes=").rstrip("-")), 206
        if start >= len(data) and status == 206:
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{len(data)}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        body = data[start:]
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("ETag", etag)
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        cut, self.drop_after = self.drop_after, None
        if cut is not None:
            handler.wfile.write(body[:cut])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body)

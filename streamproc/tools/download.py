"""A resumable HTTP(S) download of one archive, with a progress bar.

insightface 2.1 carries the URLs (``insightface.utils.storage``) but not a downloader that fits
here: ``insightface.utils.download.download_file`` writes in place with no timeout and no
resume, and the Evaluation Studio's (private) ``_download_with_retries`` resumes but takes a
dropped connection's short read for a complete file. This one writes ``DEST.part`` and keeps
the server's validator (ETag or Last-Modified) beside it, so a later run resumes only the
same file (``If-Range``), and a short read is an interruption, never a finished download.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import IO

import requests
from tqdm import tqdm

logger = logging.getLogger(__name__)
_CHUNK = 1 << 20
_RETRIABLE = (requests.ConnectionError, requests.Timeout,
              requests.exceptions.ChunkedEncodingError)


class DownloadError(Exception):
    """A download that did not finish; ``resumable`` when running again continues it."""

    def __init__(self, message: str, resumable: bool, received: int = 0) -> None:
        super().__init__(message)
        self.resumable = resumable
        self.received = received  # bytes kept for the next run


class _Interrupted(Exception):
    """The connection ended before the announced size."""


def download(url: str, dest: Path, retries: int = 2, progress: IO[str] | None = sys.stderr,
             timeout: tuple[float, float] = (10.0, 60.0)) -> Path:
    """Fetch ``url`` into ``dest``, resuming ``dest.part`` when the server allows it.

    ``retries`` more attempts follow a dropped connection within this call (each resumes);
    after the last one the partial file stays for the next run.
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, progress, timeout)
            part.replace(dest)
            _meta(part).unlink(missing_ok=True)
            return dest
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "error"
            raise DownloadError(f"{url}: HTTP {status}", resumable=False) from None
        except (*_RETRIABLE, _Interrupted) as exc:
            last = exc
        except requests.RequestException as exc:
            raise DownloadError(f"{url}: {exc}", resumable=False) from None
        except OSError as exc:  # disk full, read-only folder, ...
            raise DownloadError(
                f"cannot write {part}: {exc.strerror or exc}; free space (or fix the folder) "
                "and run the same command again to resume", resumable=True) from None
        if attempt < retries:
            logger.info("download of %s interrupted (%s); resuming", url, last)
            time.sleep(min(2.0 ** attempt, 8.0))
    have = part.stat().st_size if part.exists() else 0
    if not have:
        _meta(part).unlink(missing_ok=True)
        part.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # leave no empty folder behind
            part.parent.rmdir()
        raise DownloadError(f"could not download {url}: {_reason(last)}", resumable=False)
    raise DownloadError(f"download of {url} interrupted after {have / 1e6:.1f} MB "
                        f"({_reason(last)}); run the same command again to resume",
                        resumable=True, received=have)


def _reason(exc: Exception | None) -> str:
    """The root cause in a few words (urllib3 wraps it twice, behind the connection's repr)."""
    inner = exc.args[0] if exc is not None and exc.args else exc
    text = str(getattr(inner, "reason", inner))
    if text.startswith(("HTTPConnection(", "HTTPSConnection(")) and "): " in text:
        text = text.split("): ", 1)[1]
    return text if len(text) < 200 else text[:200] + "..."


def _meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _resume_headers(url: str, part: Path) -> dict[str, str]:
    """Range + If-Range for a partial file of the same URL; nothing otherwise (start over)."""
    try:
        meta = json.loads(_meta(part).read_text(encoding="utf-8"))
        have = part.stat().st_size
    except (OSError, ValueError):
        return {}
    if meta.get("url") != url or not meta.get("validator") or not have:
        return {}
    return {"Range": f"bytes={have}-", "If-Range": meta["validator"]}


def _fetch(url: str, part: Path, progress: IO[str] | None, timeout: tuple[float, float]) -> None:
    headers = _resume_headers(url, part)
    with requests.get(url, headers={**headers, "Accept-Encoding": "identity"}, stream=True,
                      timeout=timeout) as response:
        if response.status_code == 416 and headers:
            if _total(response, 0) == part.stat().st_size:
                return  # the partial file is already whole
            part.unlink()
            msg = "the partial file does not fit the remote one; starting over"
            raise _Interrupted(msg)
        response.raise_for_status()
        resumed = response.status_code == 206
        have = part.stat().st_size if resumed else 0
        total = _total(response, have)
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        _meta(part).write_text(json.dumps({"url": url, "validator": validator}),
                               encoding="utf-8")
        _check_space(part.parent, total - have if total else 0)
        # urllib3 raises on a short body and discards the bytes of that last read; we keep
        # every byte that arrived and compare the size ourselves below.
        response.raw.enforce_content_length = False
        if headers and not resumed:
            logger.info("%s changed or cannot resume; downloading it again", url)
        with part.open("ab" if resumed else "wb") as out, tqdm(
                total=total or None, initial=have, unit="B", unit_scale=True, file=progress,
                disable=progress is None, desc=part.name.removesuffix(".part")) as bar:
            for chunk in response.iter_content(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total and size != total:
        msg = f"connection closed at {size} of {total} bytes"
        raise _Interrupted(msg)


def _total(response: requests.Response, have: int) -> int:
    """Whole file size from Content-Range (206) or Content-Length (200); 0 if unknown."""
    if response.status_code in (206, 416):
        tail = response.headers.get("Content-Range", "").rpartition("/")[2]
        return int(tail) if tail.isdigit() else 0
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else 0


def _check_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        msg = (f"{needed / 1e6:.0f} MB to download but only {free / 1e6:.0f} MB free in "
               f"{folder}; free space and run the same command again")
        raise DownloadError(msg, resumable=True)

"""A media-analysis launch's local files: results and errors so far, and its checkpoint.

Under ``DATA_DIR/media/JOB_ID/``: ``results.jsonl`` (one line per analysed image, in
manifest order), ``errors.jsonl`` (one summary error entry per bad line, in order) and
``checkpoint.json``, rewritten atomically (temporary file, fsync, rename) after both files
were flushed and fsynced: how many manifest lines are fully resolved (each written to one
of the two files), both files' lengths then, and the counts. A launch that finds a
checkpoint (the daemon was killed or stopped mid-job) cuts both files back to those
lengths and reads the manifest on after that line, so every line lands in the output
exactly once. A checkpoint of another manifest (its fingerprint changed: size, ETag or
modification time), or one whose files are
shorter than it says, is not trusted: the launch starts over.

The summary is written from ``errors.jsonl`` a line at a time, never held whole.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from streamproc.dataplane.stored.manifest import LineError

SUMMARY_VERSION = "1.0"


@dataclass(frozen=True)
class Checkpoint:
    """How far a launch got, as its files last agreed."""

    lines: int = 0  # manifest lines fully resolved (the next launch skips them)
    results_bytes: int = 0
    errors_bytes: int = 0
    valid: int = 0  # valid-json-lines so far
    invalid: int = 0  # invalid-json-lines so far
    manifest: str | None = None  # the manifest's fingerprint when it was read


def _dump(item: dict[str, Any]) -> bytes:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ManifestFiles:
    """One job's local output; used by one launch at a time. Construction does no I/O."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.results_path = folder / "results.jsonl"
        self.errors_path = folder / "errors.jsonl"
        self.summary_path = folder / "manifest-summary.json"
        self._checkpoint_path = folder / "checkpoint.json"
        self._results: IO[bytes] | None = None
        self._errors: IO[bytes] | None = None
        self.valid = 0
        self.invalid = 0
        self.manifest: str | None = None  # the manifest's fingerprint when it was opened
        self.checkpointed = 0  # lines the last checkpoint covers

    # ---- opening -----------------------------------------------------------------------
    def open(self, manifest: str | None) -> Checkpoint:
        """Resume from the checkpoint if it is trustworthy, else start afresh; the start."""
        self.folder.mkdir(parents=True, exist_ok=True)
        start = self._trusted(self.read_checkpoint(), manifest)
        for path, length in ((self.results_path, start.results_bytes),
                             (self.errors_path, start.errors_bytes)):
            with open(path, "ab") as file:
                file.truncate(length)
        self._results = open(self.results_path, "ab")  # closed by close()
        self._errors = open(self.errors_path, "ab")
        self.valid, self.invalid = start.valid, start.invalid
        self.manifest, self.checkpointed = manifest, start.lines
        if start.lines == 0:
            self._write_checkpoint(start)
        return start

    def read_checkpoint(self) -> Checkpoint | None:
        """The last checkpoint written, or None (none, or unreadable)."""
        try:
            data = json.loads(self._checkpoint_path.read_text(encoding="utf-8"))
            return Checkpoint(**data)
        except (OSError, ValueError, TypeError):
            return None

    def _trusted(self, found: Checkpoint | None, manifest: str | None) -> Checkpoint:
        fresh = Checkpoint(manifest=manifest)
        if found is None or found.manifest != manifest:
            return fresh
        for path, length in ((self.results_path, found.results_bytes),
                             (self.errors_path, found.errors_bytes)):
            try:
                if path.stat().st_size < length:
                    return fresh  # written after the checkpoint, but lost (a power cut)
            except OSError:
                return fresh
        return found

    # ---- writing -----------------------------------------------------------------------
    def add_result(self, line: dict[str, Any]) -> None:
        """One analysed image's results line."""
        self._file(self._results).write(_dump(line))
        self.valid += 1

    def add_error(self, error: LineError) -> None:
        """One bad line's summary entry."""
        self._file(self._errors).write(_dump(error.entry()))
        self.invalid += 1

    def checkpoint(self, lines: int) -> Checkpoint:
        """Both files on disk, then a checkpoint saying ``lines`` lines are resolved."""
        results, errors = self._file(self._results), self._file(self._errors)
        for file in (results, errors):
            file.flush()
            os.fsync(file.fileno())
        point = Checkpoint(lines, results.tell(), errors.tell(), self.valid, self.invalid,
                           self.manifest)
        self._write_checkpoint(point)
        self.checkpointed = lines
        return point

    def _write_checkpoint(self, point: Checkpoint) -> None:
        temporary = self._checkpoint_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(point)), encoding="utf-8")
        _sync(temporary)
        os.replace(temporary, self._checkpoint_path)

    @property
    def is_open(self) -> bool:
        """Between open() and close()."""
        return self._results is not None

    @staticmethod
    def _file(file: IO[bytes] | None) -> IO[bytes]:
        if file is None:
            msg = "the files are written between open() and close()"
            raise RuntimeError(msg)
        return file

    def write_summary(self) -> Path:
        """The summary (statistics, then every error entry, streamed from errors.jsonl)."""
        self._file(self._errors).flush()
        statistics = {"total-json-lines": self.valid + self.invalid,
                      "valid-json-lines": self.valid, "invalid-json-lines": self.invalid}
        with open(self.summary_path, "wb") as out, open(self.errors_path, "rb") as errors:
            out.write(b'{"version":"' + SUMMARY_VERSION.encode() + b'","statistics":')
            out.write(json.dumps(statistics, separators=(",", ":")).encode())
            out.write(b',"errors":[')
            for i, entry in enumerate(errors):
                out.write((b"," if i else b"") + entry.rstrip(b"\n"))
            out.write(b"]}\n")
        return self.summary_path

    # ---- ending ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the files (kept on disk: the next launch resumes from them)."""
        for file in (self._results, self._errors):
            if file is not None:
                file.close()
        self._results = self._errors = None

    def remove(self) -> None:
        """Close and delete everything (the job ended)."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

"""One media-analysis launch: a manifest streamed through the moderation stage into S3 objects.

The launch (one thread, :class:`ManifestRun`) checks that its output can be written
(``INVALID_OUTPUT_CONFIG`` otherwise) and that its manifest can be read
(``ACCESS_DENIED`` for a bucket ``objects.buckets`` does not allow, ``INVALID_S3_OBJECT``
for a missing or unreadable object), then streams the manifest a line at a time: each
line is parsed, its image read and decoded with DetectModerationLabels' limits, and queued
for the moderation stage (BLOCK: reading waits for analysis). Resolved lines are written in
manifest order to the launch's local files (:mod:`.manifestfiles`), checkpointed every
``checkpoint_lines`` lines. At the end the results manifest, then the summary, are uploaded
atomically; the objects written become the job's metadata, and the local files go.

A launch that is halted (the daemon stops, the job moves) keeps its files: the next launch
of the job resumes after the checkpoint, so each input line is in the output exactly once.
A manifest with more than ``max_lines`` lines fails ``INVALID_MANIFEST`` when its line
``max_lines + 1`` is reached; one without a single valid line fails the same way (nothing
is uploaded). A stage failure is ``INTERNAL_ERROR``.

A launch with a ``ProjectVersion`` loads its adapter once, before it reads its manifest
(:class:`AdapterSource`), and its images are analysed with it (the owner's ``moderator``):
the launch keeps the adapter it loaded even if the version is deleted meanwhile, as a
model that was read stays what it was; a later launch of the job (a resume) loads it
again, and fails ``RESOURCE_NOT_FOUND`` if it is gone, ``RESOURCE_NOT_READY`` if it has no
usable model. Each results line then carries ``ProjectVersion``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from streamproc.dataplane.stored.jobrun import JobEvents, JobPlan, ResultSink
from streamproc.dataplane.stored.jobworker import retrying
from streamproc.dataplane.stored.manifest import (
    ACCESS_DENIED,
    INTERNAL_ERROR,
    INVALID_MANIFEST,
    INVALID_OUTPUT_CONFIG,
    INVALID_S3_OBJECT,
    RESOURCE_NOT_FOUND,
    RESOURCE_NOT_READY,
    ImageLine,
    LineError,
    ManifestOutcome,
    ManifestTask,
    failure,
    output_keys,
    parse_line,
)
from streamproc.dataplane.stored.manifestfiles import ManifestFiles
from streamproc.dataplane.stored.manifestimages import ImageLimits, ImageReader
from streamproc.dataplane.stored.manifestowner import Analysed, ManifestOwner, Resolved
from streamproc.errors import (
    InvalidS3ObjectException,
    OutputNotWritable,
    ResourceNotFoundException,
    ResourceNotReadyException,
    StreamprocError,
)
from streamproc.lifecycle import Service
from streamproc.metrics import JobSensor
from streamproc.moderation.adapter import no_adapters
from streamproc.moderation.types import Moderator, at_least
from streamproc.storage.objects import ObjectRef

if TYPE_CHECKING:  # the runner is the launch's deps; it imports this module
    from streamproc.dataplane.stored.manifestrunner import ManifestRunner


class JobFailed(Exception):
    """The launch cannot go on: ``str(self)`` is its ``CODE: message``."""


class AdapterSource(Protocol):
    """Loads a ProjectVersion's adapter for a launch (the daemon's, over its versions)."""

    def moderator(self, version_id: str | None, arn: str, stop: threading.Event
                  ) -> Moderator:
        """The moderator that applies adapter ``arn``; may wait for the server's versions.

        ``version_id``: its resource id as Start resolved it (None: resolve ``arn``).

        Raises ResourceNotFoundException or ResourceNotReadyException (the answers
        DetectModerationLabels gives) or another StreamprocError.
        """


@dataclass(frozen=True)
class ManifestSettings:
    """Limits and pacing of every media-analysis launch."""

    max_line_bytes: int  # jobs.media_analysis_max_line_bytes
    max_lines: int  # jobs.media_analysis_max_lines
    limits: ImageLimits  # DetectModerationLabels' image limits
    queue: int  # decoded images waiting for the stage
    checkpoint_lines: int = 256  # lines resolved between two checkpoints
    max_pending: int = 1024  # lines held behind the image at the front


class ManifestRun(Service):
    """Reads one manifest into the moderation stage and writes its output."""

    def __init__(self, plan: JobPlan, deps: ManifestRunner, sink: ResultSink,
                 events: JobEvents, sensor: JobSensor) -> None:
        super().__init__(f"media-{plan.job_id}")
        self.plan = plan
        task = plan.results
        if not isinstance(task, ManifestTask):
            msg = "a media-analysis launch needs a ManifestTask plan"
            raise TypeError(msg)
        self.task: ManifestTask = task
        self._deps = deps
        self._sink = sink
        self._events = events
        self._sensor = sensor
        self._owner = ManifestOwner(f"job {plan.job_id}", deps.settings.queue,
                                    deps.settings.max_pending, sensor)
        self._files = ManifestFiles(deps.folder / plan.job_id)
        self._resolved = 0  # manifest lines resolved and written (or blank)
        self._last = 0  # the last manifest line read

    def _on_stop(self) -> None:
        self._owner.ended.set()  # unblocks a put waiting for room and every wait

    def _on_crash(self, exc: BaseException) -> None:
        self._sensor.close()
        self._files.close()
        self._events.job_ended(self.plan.job_id, self.plan.attempt, failure(
            INTERNAL_ERROR, f"Internal error: {type(exc).__name__}: {exc}"))

    def _run(self) -> None:
        # The files are checkpointed, closed or removed under the job's lock: a successor
        # launch waiting for it must never open them while this one still writes.
        with self._deps.job_lock(self.plan.job_id, self._owner.ended) as held:
            if not held:
                return  # halted while an earlier launch of the job still held its files
            error = self._launch()
            self._sensor.close()
            if self.stopping:  # halted: the files stay for the next launch, nothing reported
                if self._files.is_open:
                    self._files.checkpoint(self._resolved)  # what was written needs no redo
                self._files.close()
                return
            self._files.remove()
        self._events.job_ended(self.plan.job_id, self.plan.attempt, error)

    def _launch(self) -> str | None:
        try:
            manifest = self._check()
            self._owner.moderator = self._adapter()
            if self.stopping:
                return None
            self._analyse(manifest)
            if self.stopping:
                return None
            if self._owner.failure is not None:
                raise JobFailed(failure(INTERNAL_ERROR, self._owner.failure))
            self._upload()
        except JobFailed as exc:
            return str(exc)
        return None

    def _check(self) -> str:
        """The output, then the manifest; the manifest's fingerprint."""
        objects, manifest = self._deps.objects, self.plan.source
        try:
            objects.check_output(self.task.output_bucket, self.task.output_prefix)
        except OutputNotWritable as exc:
            raise JobFailed(failure(INVALID_OUTPUT_CONFIG, str(exc))) from None
        if not objects.readable(manifest.bucket):
            raise JobFailed(failure(ACCESS_DENIED, f"The bucket {manifest.bucket} is not one "
                                    "this server reads S3 objects from (objects.buckets)"))
        try:
            return objects.fingerprint(manifest)
        except InvalidS3ObjectException as exc:
            raise JobFailed(failure(INVALID_S3_OBJECT, exc.message)) from None

    def _adapter(self) -> Moderator | None:
        """The launch's adapter, loaded once (None: the stage's engine analyses)."""
        arn, adapters = self.task.project_version, self._deps.adapters
        if arn is None:
            return None
        if adapters is None:
            raise JobFailed(failure(RESOURCE_NOT_FOUND, no_adapters(arn).message))
        try:
            return adapters.moderator(self.task.version_id, arn, self._owner.ended)
        except ResourceNotFoundException as exc:
            raise JobFailed(failure(RESOURCE_NOT_FOUND, exc.message)) from None
        except ResourceNotReadyException as exc:
            raise JobFailed(failure(RESOURCE_NOT_READY, exc.message)) from None
        except StreamprocError as exc:  # a version of another backbone, a damaged model
            raise JobFailed(failure(INTERNAL_ERROR, exc.message)) from None

    def _analyse(self, manifest: str) -> None:
        every, owner = self._deps.settings.checkpoint_lines, self._owner
        start = self._files.open(manifest)
        self._resolved = self._last = start.lines
        feed = self._deps.feed
        feed.attach(owner)
        try:
            self._read(start.lines)
            while owner.waiting() and not owner.ended.is_set():
                self._write(owner.ready(), every)
                owner.wait_more(0.1)
            self._write(owner.ready(), every)
        finally:
            feed.detach(owner)
            owner.frames.drain()

    def _read(self, skip: int) -> None:
        s, owner, reader = self._deps.settings, self._owner, self._deps.reader
        try:
            lines = self._deps.objects.lines(self.plan.source, s.max_line_bytes, owner.ended,
                                             skip)
            for line in lines:
                self._last = line.number
                if line.number > s.max_lines:
                    raise JobFailed(failure(INVALID_MANIFEST, f"The manifest has more than "
                                            f"{s.max_lines} lines (jobs.media_analysis_max_"
                                            "lines)"))
                while owner.full() and not owner.ended.is_set():
                    self._write(owner.ready(), s.checkpoint_lines)
                    owner.wait_more(0.1)
                if not self._line(parse_line(line, s.max_line_bytes), reader):
                    return
                self._write(owner.ready(), s.checkpoint_lines)
        except InvalidS3ObjectException as exc:
            raise JobFailed(failure(INVALID_S3_OBJECT, exc.message)) from None

    def _line(self, parsed: ImageLine | LineError | None, reader: ImageReader) -> bool:
        """Hand one line to the owner; False when the launch ended meanwhile."""
        owner = self._owner
        if parsed is None:  # blank: resolved once every line before it is (see _write)
            return True
        if isinstance(parsed, LineError):
            owner.add_error(parsed)
            return True
        pixels = reader.load(parsed)
        if isinstance(pixels, LineError):
            owner.add_error(pixels)
            return True
        self._sensor.frame_decoded(float(parsed.number), None)
        if not owner.add_image(parsed, pixels):
            return False
        self._deps.feed.notify()
        return True

    def _write(self, resolved: list[Resolved], every: int) -> None:
        """Resolved lines into the files, then a checkpoint once ``every`` lines passed.

        With nothing left unresolved, every line read so far is resolved (the blank ones
        too); else the lines before the first unresolved one are.
        """
        files, task = self._files, self.task
        for item in resolved:
            if isinstance(item, LineError):
                files.add_error(item)
                self._resolved = item.number
            else:
                files.add_result(_result_line(item, task))
                self._resolved = item.line.number
        if not self._owner.waiting():
            self._resolved = max(self._resolved, self._last)
        if self._resolved - files.checkpointed >= every:
            files.checkpoint(self._resolved)

    def _upload(self) -> None:
        files, task, objects = self._files, self.task, self._deps.objects
        if files.valid == 0:
            raise JobFailed(failure(INVALID_MANIFEST, "The manifest has no valid JSON line "
                                    f"({files.invalid} invalid)"))
        files.checkpoint(self._resolved)
        summary = files.write_summary()
        results_key, summary_key = output_keys(task.output_prefix, self.plan.job_id)
        bucket = task.output_bucket
        try:
            objects.put_file(ObjectRef(bucket, results_key), files.results_path)
            objects.put_file(ObjectRef(bucket, summary_key), summary)
        except OutputNotWritable as exc:
            raise JobFailed(failure(INVALID_OUTPUT_CONFIG, str(exc))) from None
        outcome = ManifestOutcome(task.model_version, bucket, results_key, summary_key)
        retrying(lambda: self._sink.set_metadata(self.plan.job_id, self.plan.attempt,
                                                 outcome.stored()),
                 self._owner.ended, lambda: self.stopping, self.plan.job_id)


def _result_line(item: Analysed, task: ManifestTask) -> dict[str, Any]:
    """A results-manifest line: the input's source-ref and the DetectModerationLabels answer."""
    labels = at_least(item.analysis.labels, task.min_confidence)
    answer: dict[str, Any] = {"ModerationLabels": [label.wire() for label in labels],
                              "ModerationModelVersion": task.model_version}
    if task.project_version is not None:
        answer["ProjectVersion"] = task.project_version
    return {"source-ref": item.line.source_ref, "detect-moderation-labels": answer}

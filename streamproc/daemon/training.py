"""The training runner: one thread that trains project versions, one at a time.

Hook order (:class:`streamproc.lifecycle.Service`)::

    start() -> thread: build the trainer once (it loads the backbone here, so the daemon's
               start does not wait for it; a pack without one leaves the reason, and every
               version fails with it); then, in turn: pick the oldest TRAINING_IN_PROGRESS
               version this node trains, train it, submit what ends it (the model's parts,
               then the status); wait for wake() or poll_s
    stop(timeout) -> the training in hand stops at its next batch; nothing is submitted

Restart: a version left TRAINING_IN_PROGRESS by a process that stopped (or died) part-way
is **retrained from the start** when the runner starts again: training is deterministic
(same entries, same images, same features, same Newton steps), so the result is the one
the first run would have given. Nothing half-done counts: a model part written before the
stop is overwritten from offset 0, and only the status command makes the version trained.
A version whose node is another cluster member's is that member's to train.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from streamproc.errors import StreamprocError
from streamproc.ledger import Ledger
from streamproc.lifecycle import Service
from streamproc.projects.versions import Version, VersionStatus
from streamproc.projects.versions_commands import SetVersionStatus, model_parts
from streamproc.rekognition.constants import Arns
from streamproc.storage.versions import VersionStore

logger = logging.getLogger(__name__)


class Trainer(Protocol):
    """Trains one version (:class:`streamproc.projects.versions_training.VersionTrainer`)."""

    def train(self, version: Version, arn: str, stop: threading.Event) -> SetVersionStatus:
        """The command that ends the version's training."""


class TrainingRunner(Service):
    """Trains the versions this node owns, on its own thread."""

    def __init__(self, store: VersionStore, ledger: Ledger, make_trainer: Callable[[], Trainer],
                 arns: Arns, node: str, poll_s: float = 2.0,
                 part_bytes: int = 256 * 1024) -> None:
        super().__init__("training")
        self._store = store
        self._ledger = ledger
        self._make = make_trainer
        self._arns = arns
        self._node = node
        self._poll_s = poll_s
        self._part_bytes = part_bytes
        self._wake = threading.Event()
        self._trainer: Trainer | None = None
        self._unavailable = ""

    def wake(self) -> None:
        """A version was created: look for work now rather than at the next poll."""
        self._wake.set()

    def _prepare(self) -> None:
        if self._trainer is not None or self._unavailable:
            return
        try:
            self._trainer = self._make()
        except Exception as error:  # noqa: BLE001 - any load failure is reported per version
            self._unavailable = f"training is not available on this server: {error}"
            logger.warning("%s", self._unavailable)

    def _on_stop(self) -> None:
        self._wake.set()

    def _next(self) -> Version | None:
        for row in self._store.with_status(VersionStatus.TRAINING_IN_PROGRESS.value):
            if row.node == self._node:
                return Version.of(row)
        return None

    def _run(self) -> None:
        self._prepare()
        while not self.stopping:
            self.beat()
            try:
                version = self._next()
            except Exception:  # the database at fault: try again later, never die of it
                logger.exception("training runner: cannot read the versions to train")
                self.wait(self._poll_s)
                continue
            if version is None:
                self._wake.wait(self._poll_s)
                self._wake.clear()
                continue
            self._train(version)

    def _train(self, version: Version) -> None:
        ref = version.ref
        arn = self._arns.version(ref.project, ref.name, ref.created_ms)
        self.busy = f"training {ref.project}/{ref.name}"
        try:
            if self._trainer is None:
                command = SetVersionStatus(ref, VersionStatus.TRAINING_FAILED,
                                           self._unavailable, version.updated_ms)
            else:
                command = self._trainer.train(version, arn, self._stopping)
        except Exception:  # a bug must not stop every later training
            logger.exception("training %s failed", arn)
            command = SetVersionStatus(ref, VersionStatus.TRAINING_FAILED,
                                       "The training failed: a server error",
                                       version.updated_ms)
        finally:
            self.busy = None
        if self.stopping:  # stopped part-way: retrained from the start on the next start
            return
        self._submit(command)

    def _submit(self, command: SetVersionStatus) -> None:
        parts, end = model_parts(command, self._part_bytes)
        try:
            for part in parts:
                self._ledger.submit(part)
            self._ledger.submit(end)
        except StreamprocError as error:  # deleted, or ended by another node, meanwhile
            logger.info("version %s: its training's end was refused: %s",
                        command.version.name, error.message)
        except Exception:
            logger.exception("version %s: its training's end could not be recorded",
                             command.version.name)
            # Leave it: the next turn would retrain it at once; wait for a poll instead.
            self.wait(self._poll_s)

"""The training runner: one thread that trains project versions, one at a time.

Hook order (:class:`streamproc.lifecycle.Service`)::

    start() -> thread: build the trainer once (it loads the backbone here, so the daemon's
               start does not wait for it; a pack without one leaves the reason, and every
               version fails with it); then, in turn: pick the oldest TRAINING_IN_PROGRESS
               version this node trains, record its start (a TrainingAttempt), train it,
               submit what ends it (the model's parts, then the status); fail another
               node's stale versions ("training did not finish"); wait for wake() or poll_s
    stop(timeout) -> the training in hand stops at its next batch or Newton step; nothing
               is submitted but the withdrawal of its start (so the stop counts no attempt);
               a thread still running when stop gives up submits nothing more (every
               submit goes through :meth:`TrainingRunner._submit`: under one lock, refused
               once abandoned; the ledger closes next). A start so cut counts as one of
               max_attempts; an end so refused (model parts, or the status after them)
               leaves the version TRAINING_IN_PROGRESS, which the next start retrains

Restart: a version left TRAINING_IN_PROGRESS by a process that stopped (or died) part-way
is **retrained from the start** when the runner starts again: training is deterministic
(same entries, same images, same features, same Newton steps), so the result is the one
the first run would have given. Nothing half-done counts: a model part written before the
stop is overwritten from offset 0, and only the status command makes the version trained.
This node never judges its own versions stale, however long it was down: they are retrained
(:meth:`.versions.Version.effective`). A version whose node is another cluster member's is
that member's to train; once stale (no end within the window its last start gave, or this
node's window for one never started or whose start a clean stop withdrew: the member left,
was renamed, or the versions say "local" from before cluster mode) any node fails it. A
training that crashes the process is started again at most ``max_attempts`` times in all;
the next start fails it instead (no crash loop).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from streamproc.errors import StreamprocError
from streamproc.ledger import Command, Ledger
from streamproc.lifecycle import Service
from streamproc.projects.versions import MAX_ATTEMPTS, Version, VersionStatus, stale_window_ms
from streamproc.projects.versions_commands import (
    SetVersionStatus,
    TrainingAttempt,
    model_parts,
)
from streamproc.rekognition.constants import Arns
from streamproc.storage.versions import VersionStore
from streamproc.training.errors import TrainingStopped

logger = logging.getLogger(__name__)

R = TypeVar("R")


class RunnerAbandoned(Exception):
    """A submit refused: stop() gave up on the runner's thread (the ledger may be closed)."""


class Trainer(Protocol):
    """Trains one version (:class:`streamproc.projects.versions_training.VersionTrainer`)."""

    def train(self, version: Version, arn: str, stop: threading.Event) -> SetVersionStatus:
        """The command that ends the version's training."""


class TrainingRunner(Service):
    """Trains the versions this node owns, on its own thread."""

    def __init__(self, store: VersionStore, ledger: Ledger, make_trainer: Callable[[], Trainer],
                 arns: Arns, node: str, poll_s: float = 2.0,
                 part_bytes: int = 256 * 1024, deadline_s: float = 1800.0,
                 max_attempts: int = MAX_ATTEMPTS,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__("training")
        self._store = store
        self._ledger = ledger
        self._make = make_trainer
        self._arns = arns
        self._node = node
        self._poll_s = poll_s
        self._part_bytes = part_bytes
        self._stale_ms = stale_window_ms(deadline_s)
        self._max_attempts = max_attempts
        self._clock = clock
        self._wake = threading.Event()
        self._trainer: Trainer | None = None
        self._unavailable = ""
        # Once stop() gives up on the thread the daemon closes the ledger: a training cut
        # later must submit nothing. The lock makes the check and the submit one step
        # (every submit goes through _submit).
        self._abandoned = False
        self._submit_lock = threading.Lock()

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

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread; one not done within ``timeout`` is abandoned and submits no more.

        A submit under way is waited for (at most ``timeout`` again); after this returns no
        submit of the runner starts (:meth:`_submit` refuses), so the caller may close the
        ledger. One still under way when that wait too gives up was begun before.
        """
        if super().stop(timeout):
            return True
        got = self._submit_lock.acquire(timeout=timeout)
        self._abandoned = True
        if got:
            self._submit_lock.release()
        return False

    def _submit(self, command: Command[R]) -> R:
        """Submit ``command`` under the lock; RunnerAbandoned once stop() gave up."""
        with self._submit_lock:
            if self._abandoned:
                raise RunnerAbandoned(type(command).__name__)
            return self._ledger.submit(command)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _next(self) -> Version | None:
        """The oldest version this node trains; another node's stale ones are failed."""
        for row in self._store.with_status(VersionStatus.TRAINING_IN_PROGRESS.value):
            version = Version.of(row)
            if version.node == self._node:
                return version
            # Judged with this node's window only when its start never recorded one.
            stale = version.effective(self._now_ms(), self._stale_ms, self._node)
            if stale is not version:
                self._end(SetVersionStatus(version.ref, stale.status, stale.message,
                                           self._now_ms()))
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

    def _attempt(self, version: Version, stopped: bool = False) -> Version | None:
        """Record a start (or its withdrawal); the version after, None when refused."""
        try:
            return self._submit(TrainingAttempt(
                version.ref, self._node, self._now_ms(), self._stale_ms, self._max_attempts,
                stopped))
        except RunnerAbandoned:  # a start so cut counts; a withdrawal so cut counts it
            logger.info("version %s: its training start was not recorded: the runner was "
                        "abandoned", version.ref.name)
        except StreamprocError as error:  # deleted, or ended by another node, meanwhile
            logger.info("version %s: its training start was refused: %s", version.ref.name,
                        error.message)
        except Exception:
            logger.exception("version %s: its training start could not be recorded",
                             version.ref.name)
            self.wait(self._poll_s)  # not at once again: the ledger is at fault
        return None

    def _train(self, version: Version) -> None:
        if self._trainer is None:  # nothing to start: fail it with the reason
            self._end(SetVersionStatus(version.ref, VersionStatus.TRAINING_FAILED,
                                       self._unavailable, self._now_ms()))
            return
        started = self._attempt(version)
        if started is None or started.status is not VersionStatus.TRAINING_IN_PROGRESS:
            return  # refused, or failed by the attempt (too many starts, or stale)
        command = self._run_trainer(self._trainer, started)
        if command is None or self.stopping:  # stopped part-way: retrained at the next start
            self._attempt(started, stopped=True)  # refused once abandoned: the start counts
            return
        self._end(command)

    def _run_trainer(self, trainer: Trainer, version: Version) -> SetVersionStatus | None:
        """The command that ends the training; None when it was stopped."""
        ref = version.ref
        arn = self._arns.version(ref.project, ref.name, ref.created_ms)
        self.busy = f"training {ref.project}/{ref.name}"
        try:
            return trainer.train(version, arn, self._stopping)
        except TrainingStopped:
            return None
        except Exception:  # a bug must not stop every later training
            logger.exception("training %s failed", arn)
            return SetVersionStatus(ref, VersionStatus.TRAINING_FAILED,
                                    "The training failed: a server error", self._now_ms())
        finally:
            self.busy = None

    def _end(self, command: SetVersionStatus) -> None:
        parts, end = model_parts(command, self._part_bytes)
        try:
            for part in parts:
                self._submit(part)
            self._submit(end)
        except RunnerAbandoned:  # left TRAINING_IN_PROGRESS: the next start retrains it
            logger.info("version %s: its training's end was not recorded: the runner was "
                        "abandoned (retrained at the next start)", command.version.name)
        except StreamprocError as error:  # deleted, or ended by another node, meanwhile
            logger.info("version %s: its training's end was refused: %s",
                        command.version.name, error.message)
        except Exception:
            logger.exception("version %s: its training's end could not be recorded",
                             command.version.name)
            # Leave it: the next turn would retrain it at once; wait for a poll instead.
            self.wait(self._poll_s)

"""The stream processor state machine, held as data and changed in one place."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import Enum

logger = logging.getLogger(__name__)


class ProcessorStatus(str, Enum):
    """Rekognition's StreamProcessorStatus; values are the wire strings."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    UPDATING = "UPDATING"


S = ProcessorStatus
# Allowed (from -> to) moves. Anything else is a bug in the caller, not a user error.
TRANSITIONS: dict[ProcessorStatus, frozenset[ProcessorStatus]] = {
    S.STOPPED: frozenset({S.STARTING, S.UPDATING}),
    S.FAILED: frozenset({S.STARTING, S.UPDATING}),
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.FAILED}),
    S.RUNNING: frozenset({S.STOPPING, S.FAILED, S.STARTING, S.UPDATING}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.UPDATING: frozenset({S.STOPPED, S.FAILED, S.RUNNING}),
}
# Which operations a status allows (ResourceInUseException otherwise).
CAN_START = frozenset({S.STOPPED, S.FAILED})
CAN_STOP = frozenset({S.STARTING, S.RUNNING})
CAN_DELETE = frozenset({S.STOPPED, S.FAILED})
CAN_UPDATE = frozenset({S.STOPPED, S.FAILED, S.RUNNING})


class IllegalTransition(RuntimeError):
    """A move not in :data:`TRANSITIONS`."""


class ProcessorState:
    """Status, message and timestamps of one processor, guarded by a lock."""

    def __init__(self, name: str, status: ProcessorStatus = S.STOPPED, message: str = "",
                 updated: float | None = None,
                 listener: Callable[[str, ProcessorStatus, ProcessorStatus, str], None] | None
                 = None) -> None:
        self.name = name
        self.lock = threading.RLock()
        self._status = status
        self._message = message
        self._updated = updated if updated is not None else time.time()
        self._listener = listener

    @property
    def status(self) -> ProcessorStatus:
        """Current status."""
        return self._status

    @property
    def message(self) -> str:
        """StatusMessage (empty unless FAILED or informative)."""
        return self._message

    @property
    def updated(self) -> float:
        """LastUpdateTimestamp."""
        return self._updated

    def change(self, new: ProcessorStatus, message: str = "") -> ProcessorStatus:
        """The one way to change status: checks the table, logs, timestamps, notifies."""
        with self.lock:
            old = self._status
            if new == old and message == self._message:
                return old
            if new != old and new not in TRANSITIONS[old]:
                msg = f"processor {self.name}: {old.value} -> {new.value} is not allowed"
                raise IllegalTransition(msg)
            self._status, self._message, self._updated = new, message, time.time()
        logger.info("processor %s: %s -> %s%s", self.name, old.value, new.value,
                    f" ({message})" if message else "")
        if self._listener is not None:
            self._listener(self.name, old, new, message)
        return old

    def change_if(self, allowed: frozenset[ProcessorStatus], new: ProcessorStatus,
                  message: str = "") -> bool:
        """Change only from one of ``allowed``; False (and no change) otherwise."""
        with self.lock:
            if self._status not in allowed:
                return False
            self.change(new, message)
            return True

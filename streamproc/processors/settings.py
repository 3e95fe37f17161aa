"""What the reconciler is built with: its runtime, its settings and the daemon's hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from streamproc.controlloop import Halting
from streamproc.dataplane.live.session import Session, SessionEvents, SessionPlan
from streamproc.dataplane.output.outputs import OutputAllowlist
from streamproc.metrics import ProcessorSensor
from streamproc.processors.spec import ProcessorSpec


class Runtime(Halting[Session], Protocol):
    """What the reconciler drives: the data plane, or a fake in tests."""

    def launch(self, plan: SessionPlan, sensor: ProcessorSensor,
               events: SessionEvents) -> Session:
        """Start a session."""


@dataclass(frozen=True)
class ReconcilerSettings:
    """Timeouts, defaults and budgets the loop applies."""

    stop_timeout_s: float = 2.0
    tick_s: float = 0.5
    video_streams: dict[str, str] = field(default_factory=dict)
    default_destination: str | None = None
    frame_queue: int = 2
    max_restarts: int = 5  # crashed sessions restarted per Start within restart_window_s
    restart_window_s: float = 60.0
    restart_delay_s: float = 0.5
    repost_s: float = 5.0  # a report not yet seen in the state is posted again after this
    handover_wait_s: float = 0.0  # longest wait for a live node to release a processor
    # Judged at every launch too: a processor started before the rule (or its settings)
    # changed is relaunched after a restart without passing StartStreamProcessor again.
    outputs: OutputAllowlist | None = None


def _everywhere(name: str) -> bool:
    return True


def _single_node() -> set[str] | None:
    return None


@dataclass(frozen=True)
class Hooks:
    """What the loop needs from the rest of the daemon."""

    sensor: Callable[[str], ProcessorSensor]
    emit_mode: Callable[[ProcessorSpec], str]
    placement: Callable[[str], bool] = _everywhere
    # The cluster's live node ids (None: a single node, which hands nothing over).
    members: Callable[[], set[str] | None] = _single_node

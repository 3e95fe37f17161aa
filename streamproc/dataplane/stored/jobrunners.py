"""The job runtime: one runner per input type and analysis stage, picked by each launch's plan.

A job kind says what its launch reads (:class:`~streamproc.dataplane.stored.jobrun.JobInput`:
a video, or a manifest of images) and which analysis stage its frames go to
(:mod:`~streamproc.dataplane.stored.stages`: the face stage today). The daemon's wiring
registers a runner for each pair it serves (videos into the face stage: a
:class:`~streamproc.dataplane.stored.jobworker.JobRunner` whose feed the analyzer takes);
the jobs' scheduler drives one runtime and never asks which runner a launch is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from streamproc.dataplane.stored.jobrun import JobEvents, JobInput, JobPlan, ResultSink
from streamproc.metrics import JobSensor

H = TypeVar("H")  # a runner's launch handle
RunnerKey = tuple[JobInput, str]  # (what a launch reads, the stage its frames go to)


class InputRunner(Protocol[H]):
    """Starts and halts the launches of one input type and stage; its handles are its own."""

    def launch(self, plan: JobPlan, sink: ResultSink, events: JobEvents,
               sensor: JobSensor) -> H:
        """Start a launch; its handle."""

    def begin_halt(self, run: H) -> None:
        """Ask a launch to end; returns at once."""

    def halted(self, run: H) -> bool:
        """True once the launch's threads have finished."""

    def abandon(self, run: H) -> None:
        """Give up waiting for a launch that did not end in time."""


@dataclass(frozen=True)
class Launched:
    """A launch, with the halts of the runner that started it bound to its handle.

    Runners' handles differ in type; bound here, the runtime's own handle has one.
    """

    plan: JobPlan
    begin_halt: Callable[[], None]
    halted: Callable[[], bool]
    abandon: Callable[[], None]


Launch = Callable[[JobPlan, ResultSink, JobEvents, JobSensor], Launched]


def _launcher(runner: InputRunner[H]) -> Launch:
    def launch(plan: JobPlan, sink: ResultSink, events: JobEvents,
               sensor: JobSensor) -> Launched:
        run = runner.launch(plan, sink, events, sensor)
        return Launched(plan, lambda: runner.begin_halt(run), lambda: runner.halted(run),
                        lambda: runner.abandon(run))
    return launch


def _shown(key: RunnerKey) -> str:
    return f"input {key[0].value} into stage {key[1]}"


class JobRunners:
    """(input, stage) -> runner; the scheduler's ``JobRuntime``."""

    def __init__(self) -> None:
        self._launch: dict[RunnerKey, Launch] = {}

    def add(self, reads: JobInput, stage: str, runner: InputRunner[H]) -> None:
        """At wiring: ``runner`` runs the launches that read ``reads`` into ``stage``."""
        key = (reads, stage)
        if key in self._launch:
            msg = f"two job runners for {_shown(key)}"
            raise ValueError(msg)
        self._launch[key] = _launcher(runner)

    def require(self, needs: Iterable[RunnerKey]) -> None:
        """At wiring: every (input, stage) a registered job kind names has a runner."""
        missing = sorted(_shown(k) for k in set(needs) - set(self._launch))
        if missing:
            msg = f"no job runner for {', '.join(missing)}"
            raise ValueError(msg)

    def launch(self, plan: JobPlan, sink: ResultSink, events: JobEvents,
               sensor: JobSensor) -> Launched:
        """Start the launch on the runner of its input and stage."""
        return self._launch[(plan.input, plan.stage)](plan, sink, events, sensor)

    def begin_halt(self, launched: Launched) -> None:
        """Ask a launch to end; returns at once."""
        launched.begin_halt()

    def halted(self, launched: Launched) -> bool:
        """True once the launch's threads have finished."""
        return launched.halted()

    def abandon(self, launched: Launched) -> None:
        """Give up waiting for a launch that did not end in time."""
        launched.abandon()

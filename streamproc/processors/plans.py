"""A processor's definition turned into what one launch of it runs: its session plan."""

from __future__ import annotations

from collections.abc import Callable

from streamproc.dataplane.live.session import Output, SessionPlan
from streamproc.dataplane.output.outputs import OutputRefused
from streamproc.errors import StreamprocError
from streamproc.processors.kinds import ProcessorKind
from streamproc.processors.settings import ReconcilerSettings
from streamproc.processors.spec import ProcessorSpec
from streamproc.processors.urls import KVS_ARN, destination_of, redact, stream_name


class Planner:
    """Resolves input, collection and output at launch; raises why a launch cannot run.

    Raises CollectionNotFound, or a StreamprocError whose message is the processor's
    StatusMessage.
    """

    def __init__(self, kinds: dict[str, ProcessorKind], settings: ReconcilerSettings) -> None:
        self._kinds = kinds
        self._settings = settings

    def plan(self, spec: ProcessorSpec, generation: int,
             emit_mode: Callable[[ProcessorSpec], str]) -> SessionPlan:
        """The plan of launch number ``generation`` of ``spec``."""
        url = self._input_url(spec)
        resolved = self._kinds[spec.kind].resolve(spec)
        output = self._output(spec)
        return SessionPlan(
            name=spec.name, generation=generation, kind=spec.kind, url=url,
            url_shown=redact(url), stream_arn=redact(spec.input_arn),
            collection=resolved.collection, threshold=resolved.threshold,
            output=output, emit=emit_mode(spec),
            regions=tuple(spec.regions), frame_queue=self._settings.frame_queue)

    def _output(self, spec: ProcessorSpec) -> Output:
        output = destination_of(spec.output_arn, self._settings.default_destination)
        if output is None:
            raise StreamprocError(f"No Kafka cluster for output {redact(spec.output_arn)}")
        destination, topic = output
        if self._settings.outputs is not None:
            try:
                self._settings.outputs.check(destination, topic)
            except OutputRefused as exc:
                raise StreamprocError(
                    f"Output refused by outputs.{exc.rule}: {exc.message}") from None
        return Output(destination, topic)

    def _input_url(self, spec: ProcessorSpec) -> str:
        if not KVS_ARN.match(spec.input_arn):
            return spec.input_arn
        streams = self._settings.video_streams
        url = streams.get(spec.input_arn) or streams.get(stream_name(spec.input_arn))
        if url is None:
            raise StreamprocError(f"Stream {stream_name(spec.input_arn)} doesn't exist")
        return url

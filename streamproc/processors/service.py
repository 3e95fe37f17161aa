"""Stream processor operations, API side: validate a request, submit it, read the registry.

Nothing here changes state directly: each operation becomes a command for the ledger, whose
applier (:mod:`streamproc.processors.rules`) holds the rules; the reconciler then makes the
data plane match. Start returns at once with the processor STARTING, Stop with it STOPPING.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from streamproc.config import Config
from streamproc.dataplane.guard.allowlist import InputAllowlist, InputRefused, InputUnresolved
from streamproc.dataplane.output.outputs import OutputAllowlist, OutputRefused
from streamproc.dataplane.regions import Region
from streamproc.errors import InvalidParameterException
from streamproc.ledger import Ledger
from streamproc.metrics import ProcessorMetrics, ProcessorSensor
from streamproc.processors.commands import (
    CreateProcessor,
    DeleteProcessor,
    StartProcessor,
    StopProcessor,
    UpdateProcessor,
)
from streamproc.processors.kinds import ProcessorKind
from streamproc.processors.registry import ProcessorRegistry
from streamproc.processors.rules import check_emit_tag
from streamproc.processors.spec import ProcessorSpec
from streamproc.processors.state import ProcessorState
from streamproc.processors.urls import KVS_ARN, destination_of, output_target, redact
from streamproc.rekognition.constants import DEFAULT_PAGE_SIZE, Arns
from streamproc.rekognition.tokens import page_of_keys
from streamproc.storage.tags import TagStore

logger = logging.getLogger(__name__)
EMIT_TAG = "streamproc:emit"


class ProcessorService:
    """What the API calls for stream processors."""

    def __init__(self, registry: ProcessorRegistry, ledger: Ledger, tags: TagStore,
                 metrics: ProcessorMetrics, config: Config, kinds: dict[str, ProcessorKind],
                 inputs: InputAllowlist | None = None,
                 outputs: OutputAllowlist | None = None) -> None:
        self._inputs = inputs
        self._outputs = outputs or OutputAllowlist.for_config(config)
        # Checks against this node's model run here, before the command is appended:
        # an applier must decide the same on every node, whatever model each one runs.
        self._kinds = kinds
        self._registry = registry
        self._ledger = ledger
        self._tags = tags
        self._metrics = metrics
        self._config = config
        self._arns = Arns(config.server.region, config.server.account_id)

    def arn(self, name: str) -> str:
        """The processor's ARN."""
        return self._arns.processor(name)

    def sensor_for(self, name: str) -> ProcessorSensor | None:
        """Metrics of an existing processor (None once deleted)."""
        return self._metrics.sensor(name) if self._registry.get(name) else None

    def emit_mode(self, spec: ProcessorSpec) -> str:
        """``frame`` or ``track``: the processor's tag, else the configured default."""
        return self._tags.get(spec.arn).get(EMIT_TAG, self._config.processors.emit)

    def create(self, spec_args: dict[str, Any], tags: dict[str, str]) -> ProcessorSpec:
        """Register a STOPPED processor (the rules: ``ProcessorRules``)."""
        if output_target(spec_args["output_arn"]) is None:
            raise InvalidParameterException("Output.KinesisDataStream.Arn names no Kafka topic")
        if destination_of(spec_args["output_arn"], self._config.kafka.bootstrap) is None:
            raise InvalidParameterException(
                "No default Kafka cluster is configured (streamproc serve --kafka HOST:PORT); "
                "use a kafka://host:port/topic output instead")
        self._check_output(spec_args["output_arn"])
        check_emit_tag(tags, EMIT_TAG)
        self._check_input(spec_args["input_arn"])
        spec = ProcessorSpec(arn=self.arn(spec_args["name"]), created=time.time(), **spec_args)
        self._check_kind(spec)
        self._ledger.submit(CreateProcessor(spec, tags))
        logger.info("created processor %s: %s -> %s", spec.name, redact(spec.input_arn),
                    redact(spec.output_arn))
        return spec

    def _check_kind(self, spec: ProcessorSpec) -> None:
        self._kinds[spec.kind].check(spec)

    def _check_output(self, output_arn: str) -> None:
        """The outputs allowlist, at Create and again at Start (the settings may have changed)."""
        destination = destination_of(output_arn, self._config.kafka.bootstrap)
        if destination is None:
            return  # no topic or cluster: Create refuses it; a launch fails it (reconciler)
        try:
            self._outputs.check(*destination)
        except OutputRefused as exc:
            raise InvalidParameterException(
                f"Output.KinesisDataStream.Arn refused by outputs.{exc.rule}: "
                f"{exc.message}") from None

    def _check_input(self, url: str) -> None:
        """The inputs allowlist at the API; the source checks again before every connect.

        Here, not in the command's applier: what a name resolves to is this node's view
        now, not state every node would compute the same from the log.
        """
        if self._inputs is None or KVS_ARN.match(url):
            return  # a KVS-style ARN maps to an operator-configured URL, checked at connect
        try:
            self._inputs.check(url)
        except InputRefused as exc:
            raise InvalidParameterException(
                f"Input.KinesisVideoStream.Arn refused by inputs.{exc.rule}: "
                f"{exc.message}") from None
        except InputUnresolved:
            logger.info("input host of %s does not resolve now; judged again at connect",
                        redact(url))

    def delete(self, name: str) -> None:
        """Delete a processor that is not running."""
        self._registry.require(name)
        self._ledger.submit(DeleteProcessor(name))

    def start(self, name: str) -> str:
        """STOPPED/FAILED -> STARTING; RUNNING once frames flow. Returns the SessionId."""
        spec = self._registry.require(name).spec
        self._check_output(spec.output_arn)
        self._check_input(spec.input_arn)
        self._check_kind(spec)
        session_id = str(uuid.uuid4())
        self._ledger.submit(StartProcessor(name, session_id))
        return session_id

    def stop(self, name: str) -> None:
        """STARTING/RUNNING -> STOPPING; STOPPED within ``processors.stop_timeout_s``."""
        self._registry.require(name)
        self._ledger.submit(StopProcessor(name))

    def update(self, name: str, regions: tuple[Region, ...] | None,
               data_sharing: bool | None, delete: list[str], connected_home: bool) -> None:
        """Apply UpdateStreamProcessor; a running processor picks up new regions at once.

        ``regions`` None leaves them as they are; ``()`` (or deleting them) clears them.
        """
        if connected_home:
            raise InvalidParameterException(
                "SettingsForUpdate.ConnectedHomeForUpdate applies only to label detection "
                "processors; this is a face search processor")
        self._registry.require(name)
        if "RegionsOfInterest" in delete:
            regions = ()
        self._ledger.submit(UpdateProcessor(name, regions, data_sharing))

    def tag_key(self, name: str) -> str | None:
        """The ARN a processor's tags are kept under (None: no such processor)."""
        entry = self._registry.get(name)
        return entry.spec.arn if entry is not None else None

    def describe(self, name: str) -> tuple[ProcessorSpec, ProcessorState]:
        """Definition and state."""
        entry = self._registry.require(name)
        return entry.spec, entry.state

    def list(self, token: str | None, max_results: int | None
             ) -> tuple[list[tuple[str, str]], str | None]:
        """(name, status) pairs in name order, paginated."""
        entries = {e.spec.name: e for e in self._registry.entries()}
        names, next_token = page_of_keys("processors", sorted(entries), token,
                                         max_results or DEFAULT_PAGE_SIZE)
        return [(n, entries[n].state.status.value) for n in names], next_token

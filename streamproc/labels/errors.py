"""The one answer when this server has no label pack: DetectLabels and label jobs alike."""

from __future__ import annotations

from streamproc.errors import InvalidParameterException


class LabelPackMissing(InvalidParameterException):
    """No label pack is installed: it is made by an explicit step, never at start.

    A 400 that retrying cannot fix, so not retriable, and the message names the step.
    """

    default_message = ("This server has no label pack installed; its operator makes one with "
                       "`streamproc models convert labels`.")


class LabelPackChanged(InvalidParameterException):
    """A label job launched on a node whose pack is not the one its Start was accepted with.

    Its labels would be another model's than the LabelModelVersion Get answers, so the job
    FAILS with this message instead (every node needs the same label pack).
    """

    def __init__(self, wanted: str, loaded: str) -> None:
        super().__init__(f"This job was started with label pack {wanted}; this node has "
                         f"{loaded}: every node needs the same label pack")

"""The one answer when this server has no label pack: DetectLabels and label jobs alike."""

from __future__ import annotations

from streamproc.errors import InvalidParameterException


class LabelPackMissing(InvalidParameterException):
    """No label pack is installed: it is made by an explicit step, never at start.

    A 400 that retrying cannot fix, so not retriable, and the message names the step.
    """

    default_message = ("This server has no label pack installed; its operator makes one with "
                       "`streamproc models convert labels`.")

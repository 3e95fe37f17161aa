"""Regions of interest: parsed once from the wire, then asked which faces they keep.

A stream processor's ``RegionsOfInterest`` arrives as Rekognition's JSON (a list of
``{"BoundingBox": {...}, "Polygon": [...]}`` objects, every member optional) at Create and
Update, and comes back the same way from the store and the ledger's log. It is parsed into
:class:`Region` values at those edges only (the API's handlers, ``ProcessorSpec.from_dict``,
``UpdateProcessor.from_payload``), so everything below them, the analysis stage included,
reads fields, never keys.

A region keeps the JSON it was read from (:attr:`Region.wire`): Describe shows, and the store
and the log keep, exactly what the client sent, byte for byte, whatever the parsed view fills
in (an omitted Width is the whole frame, an omitted polygon X is 0).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from streamproc.faces.types import Face

Wire = dict[str, Any]  # one region as the API's JSON has it


@dataclass(frozen=True)
class Box:
    """A bounding box as fractions of the frame; omitted members span the whole frame."""

    left: float = 0.0
    top: float = 0.0
    width: float = 1.0
    height: float = 1.0

    def contains(self, x: float, y: float, frame_w: int, frame_h: int) -> bool:
        """Whether pixel (x, y) lies in the box, edges included."""
        left, top = self.left * frame_w, self.top * frame_h
        right = left + self.width * frame_w
        bottom = top + self.height * frame_h
        return left <= x <= right and top <= y <= bottom


@dataclass(frozen=True)
class Point:
    """A polygon vertex as fractions of the frame (an omitted coordinate is 0)."""

    x: float = 0.0
    y: float = 0.0


def _in_polygon(points: tuple[Point, ...], x: float, y: float, frame_w: int,
                frame_h: int) -> bool:
    if len(points) < 3:  # fewer than three points enclose nothing
        return False
    pts = np.array([[p.x * frame_w, p.y * frame_h] for p in points], np.float32)
    return bool(cv2.pointPolygonTest(pts, (x, y), False) >= 0)


@dataclass(frozen=True)
class Region:
    """One region of interest: a box, a polygon, either or both (either one is enough)."""

    box: Box | None = None
    polygon: tuple[Point, ...] = ()
    # As the client sent it; a region made in code gets its members in the model's order.
    wire: Wire = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.wire:
            object.__setattr__(self, "wire", self._render())

    def _render(self) -> Wire:
        out: Wire = {}
        if self.box is not None:
            b = self.box
            out["BoundingBox"] = {"Width": b.width, "Height": b.height, "Left": b.left,
                                  "Top": b.top}
        if self.polygon:
            out["Polygon"] = [{"X": p.x, "Y": p.y} for p in self.polygon]
        return out

    @classmethod
    def from_wire(cls, wire: Wire) -> Region:
        """Parse one validated ``RegionOfInterest`` object.

        TypeError for anything else, so a log record holding one is refused as a command
        whose payload does not fit (a ValueError of the ledger's), not an AttributeError.
        """
        if not isinstance(wire, dict):
            msg = f"a region is a JSON object, not {type(wire).__name__}"
            raise TypeError(msg)
        box = wire.get("BoundingBox")
        points = wire.get("Polygon") or ()
        return cls(
            box=Box(box.get("Left", 0.0), box.get("Top", 0.0), box.get("Width", 1.0),
                    box.get("Height", 1.0)) if box else None,
            polygon=tuple(Point(p.get("X", 0.0), p.get("Y", 0.0)) for p in points),
            wire=wire)

    def contains(self, x: float, y: float, frame_w: int, frame_h: int) -> bool:
        """Whether pixel (x, y) of a ``frame_w`` x ``frame_h`` frame lies in the region."""
        if self.box is not None and self.box.contains(x, y, frame_w, frame_h):
            return True
        return _in_polygon(self.polygon, x, y, frame_w, frame_h)


def regions_from_wire(items: Iterable[Wire]) -> tuple[Region, ...]:
    """Regions from the wire: the API's request, a stored spec, a command on the log."""
    return tuple(Region.from_wire(r) for r in items)


def regions_to_wire(regions: Iterable[Region]) -> list[Wire]:
    """The JSON the regions were read from, for Describe, the store and the log (copies)."""
    return [copy.deepcopy(r.wire) for r in regions]


def in_regions(face: Face, regions: Sequence[Region], width: int, height: int) -> bool:
    """True if the face's centre lies in any region (or no regions are set)."""
    if not regions:
        return True
    cx = float(face.box[0] + face.box[2]) / 2
    cy = float(face.box[1] + face.box[3]) / 2
    return any(region.contains(cx, cy, width, height) for region in regions)

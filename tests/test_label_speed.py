"""Whole-image classes held between a label job's frames (``jobs.label_classifier_interval_s``).

The rule (:mod:`streamproc.dataplane.stored.label_stage`): the classifier runs on an owner's
first frame, then on the first frame at least the interval of video after the last one it
ran on, or on a frame earlier in the video; each owner holds its own. The unit tests drive
the stage with a fake detector that records which frames ran the classifier; the last two
run the real pack (:func:`labels_helpers.label_pack_dir`) and check that a frame given held
classes gets its own boxes and exactly those classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import av
import numpy as np
import numpy.typing as npt
import pytest
from conftest import VIDEO
from labels_helpers import label_pack_dir
from test_label_job_stage import FakeDetector, Live, Owner, _frame

from streamproc.config.jobs import JobsConfig
from streamproc.dataplane.stored.label_stage import FLOOR, HELD_OWNERS, Item, LabelStage
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.faces.providers import ExecutionOptions
from streamproc.labels.detector import PackDetector, WholeImage
from streamproc.labels.merge import Hit
from streamproc.labels.types import Label


class HeldFake(FakeDetector):
    """FakeDetector that can reuse classes: records (frame index, whether the classifier ran)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[tuple[int, bool]] = []
        self.order: list[str] = []  # "classifier", "between", "detector", per call

    def detect_frame(self, image: npt.NDArray[np.uint8], min_confidence: float,
                     held: WholeImage | None, between: Callable[[], object] | None = None
                     ) -> tuple[tuple[Label, ...], WholeImage]:
        index = int(image[0, 0, 2])
        self.runs.append((index, held is None))
        if held is None:
            self.order.append("classifier")
            if between is not None:
                self.order.append("between")
                between()
        self.order.append("detector")
        # The classes name the frame they were computed on: a held one shows where it came from.
        whole = held or WholeImage((Hit(f"from-{index}", 50.0),))
        return (Label("Index", float(index)),), whole


def _at(index: int, timestamp_ms: int) -> StoredFrame:
    frame = _frame(index)
    return StoredFrame(frame.image, timestamp_ms, timestamp_ms / 1000)


def _ran(detector: HeldFake, owner_frames: Sequence[Item], interval_s: float) -> list[int]:
    stage = LabelStage(detector, 4, Live(), yield_s=0.01, classifier_interval_s=interval_s)
    stage.analyse(list(owner_frames))
    return [index for index, ran in detector.runs if ran]


def test_the_classifier_runs_once_per_interval_of_video_per_owner() -> None:
    detector = HeldFake()
    a, b = Owner("a"), Owner("b")
    # 5 fps: frames every 200 ms; a 1 s interval classifies frames 0, 5 and 10 of each owner.
    frames = [(owner, _at(i + base, i * 200)) for i in range(11)
              for owner, base in ((a, 0), (b, 100))]
    assert _ran(detector, frames, 1.0) == [0, 100, 5, 105, 10, 110]
    assert len(a.finished) == len(b.finished) == 11  # every frame is labelled


def test_interval_zero_runs_both_models_on_every_frame() -> None:
    detector = HeldFake()
    owner = Owner("a")
    assert _ran(detector, [(owner, _at(i, i * 200)) for i in range(4)], 0.0) == [0, 1, 2, 3]
    assert len(owner.finished) == 4


def test_a_waiting_live_frame_goes_first_between_a_frames_two_model_calls() -> None:
    detector = HeldFake()
    live = Live()
    stage = LabelStage(detector, 4, live, yield_s=0.01)
    real_frame = detector.detect_frame

    def detect_frame(image: npt.NDArray[np.uint8], min_confidence: float,
                     held: WholeImage | None, between: Callable[[], object] | None = None
                     ) -> tuple[tuple[Label, ...], WholeImage]:
        live.waiting = True  # a live frame arrives while the classifier runs
        return real_frame(image, min_confidence, held, between)

    detector.detect_frame = detect_frame  # type: ignore[method-assign]
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        detector.order.append("live")
        live.waiting = False  # the live frame was analysed meanwhile
        waits.append(seconds)
        return False

    stage.wait = wait  # type: ignore[method-assign]
    stage.analyse([(Owner("a"), _at(1, 0))])
    assert detector.order == ["classifier", "between", "live", "detector"] and waits == [0.01]


def test_a_frame_earlier_in_the_video_runs_the_classifier_again() -> None:
    detector = HeldFake()
    owner = Owner("a")
    frames = [(owner, _at(1, 4000)), (owner, _at(2, 4200)), (owner, _at(3, 0))]
    assert _ran(detector, frames, 1.0) == [1, 3]


def test_held_classes_are_bounded_to_the_most_recent_owners() -> None:
    detector = HeldFake()
    owners = [Owner(f"o{i}") for i in range(HELD_OWNERS + 1)]
    first: list[Item] = [(o, _at(i % 200, 0)) for i, o in enumerate(owners)]
    again: list[Item] = [(owners[0], _at(0, 200)), (owners[-1], _at(9, 200))]
    stage = LabelStage(detector, 4, Live(), yield_s=0.01, classifier_interval_s=1.0)
    stage.analyse(first)
    assert len(stage._held) == HELD_OWNERS
    stage.analyse(again)
    # owners[0] was pushed out (runs again); the newest still holds its classes.
    assert detector.runs[-2:] == [(0, True), (9, False)]


def test_the_owner_pushed_out_is_the_one_labelled_least_recently() -> None:
    detector = HeldFake()
    owners = [Owner(f"o{i}") for i in range(HELD_OWNERS + 1)]
    stage = LabelStage(detector, 4, Live(), yield_s=0.01, classifier_interval_s=1.0)
    stage.analyse([(o, _at(1, 0)) for o in owners[:HELD_OWNERS]])
    stage.analyse([(owners[0], _at(2, 200))])  # the first owner is labelled again: recent now
    stage.analyse([(owners[-1], _at(3, 0))])  # one owner too many: owners[1] goes
    stage.analyse([(owners[0], _at(4, 400)), (owners[1], _at(5, 400))])
    assert detector.runs[-2:] == [(4, False), (5, True)]


def test_the_setting_defaults_to_every_frame_and_is_checked() -> None:
    assert JobsConfig().label_classifier_interval_s == 0.0
    with pytest.raises(ValueError, match="negative"):
        LabelStage(HeldFake(), 4, Live(), classifier_interval_s=-1.0)


@pytest.fixture(scope="module")
def pack() -> PackDetector:
    detector = PackDetector(label_pack_dir(), ExecutionOptions(providers="cpu"))
    detector.load()
    return detector


def _clip_frames(count: int) -> list[npt.NDArray[np.uint8]]:
    """RGB frames of the classroom clip, about a second apart."""
    out: list[npt.NDArray[np.uint8]] = []
    with av.open(str(VIDEO / "classroom.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 15 == 0:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def test_detect_frame_without_held_classes_is_detect(pack: PackDetector) -> None:
    (image,) = _clip_frames(1)
    labels, whole = pack.detect_frame(image, FLOOR, None)
    assert labels == pack.detect(image, FLOOR)
    assert whole.hits  # the classifier's classes, to hold


def test_held_classes_merge_with_the_frames_own_boxes(pack: PackDetector) -> None:
    first, later = _clip_frames(2)
    _, held = pack.detect_frame(first, FLOOR, None)
    labels, whole = pack.detect_frame(later, FLOOR, held)
    assert whole is held
    own = {label.name: label.instances for label in pack.detect(later, FLOOR)
           if label.instances}
    boxed = {label.name: label.instances for label in labels if label.instances}
    assert boxed == own and own  # boxes: the later frame's, every one
    names = {label.name for label in labels}
    assert {hit.name for hit in held.hits if hit.confidence > 0} <= names

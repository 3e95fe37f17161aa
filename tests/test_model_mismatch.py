"""A collection is only ever searched with the model that made it, on every path.

Real daemons and models: a collection enrolled with test_mfn, then the daemon restarted
with test_sface on the same data dir (same 128-d size, different recogniser), and a
collection made (as far as the database says) by a 512-d pack.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import client_for, fixture_photo, make_config
from streams import WOMAN, create, enrol, wait_status

from streamproc.daemon import Daemon


def _silent_server() -> tuple[socket.socket, list[socket.socket]]:
    """A TCP server that accepts and never sends: a processor on it stays STARTING."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, accepted


def _daemon(path: Path, broker: Any, pack: str) -> Daemon:
    daemon = Daemon(make_config(path, **{"models.pack": pack,
                                         "kafka.bootstrap": broker.bootstrap}))
    daemon.start()
    return daemon


def test_same_size_other_recogniser_is_refused_everywhere(tmp_path: Path, broker: Any) -> None:
    server, accepted = _silent_server()
    url = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    first = _daemon(tmp_path, broker, "test_mfn")
    try:
        rek = client_for(first.endpoint)
        rek.create_collection(CollectionId="mfn")
        assert enrol(rek, "mfn", WOMAN, "woman-W", every=12) >= 1
        create(rek, "was-running", url, "mm-1", "mfn")
        create(rek, "was-stopped", url + "/2", "mm-2", "mfn")
        rek.start_stream_processor(Name="was-running")
        assert wait_status(rek, "was-running", {"STARTING"})["Status"] == "STARTING"
    finally:
        first.stop()
    second = _daemon(tmp_path, broker, "test_sface")
    try:
        rek = client_for(second.endpoint)
        # The processor that should run is resumed and refused at launch, with the reason.
        desc = wait_status(rek, "was-running", {"FAILED"}, 10)
        assert desc["Status"] == "FAILED"
        assert "created with model pack test_mfn" in desc["StatusMessage"]
        assert "runs test_sface" in desc["StatusMessage"]
        for call in (lambda: rek.start_stream_processor(Name="was-stopped"),
                     lambda: create(rek, "new", url + "/3", "mm-3", "mfn"),
                     lambda: rek.search_faces_by_image(
                         CollectionId="mfn", Image={"Bytes": fixture_photo("person_a_1")}),
                     lambda: rek.index_faces(
                         CollectionId="mfn", Image={"Bytes": fixture_photo("person_a_1")})):
            with pytest.raises(rek.exceptions.InvalidParameterException) as err:
                call()
            assert "test_mfn" in err.value.response["Error"]["Message"]
        assert rek.describe_stream_processor(Name="was-stopped")["Status"] == "STOPPED"
        # A new collection made by this pack works as usual.
        rek.create_collection(CollectionId="sface")
        create(rek, "fine", url + "/4", "mm-4", "sface")
    finally:
        second.stop()
        server.close()
        for conn in accepted:
            conn.close()


def test_collection_of_another_size_is_refused_at_create_and_start(tmp_path: Path,
                                                                   broker: Any) -> None:
    first = _daemon(tmp_path, broker, "test_mfn")
    try:
        rek = client_for(first.endpoint)
        rek.create_collection(CollectionId="old")
        create(rek, "old-door", "/nonexistent/old.mp4", "mm-old", "old")
    finally:
        first.stop()
    # As if the collection had been made by a 512-d pack before a model change.
    with sqlite3.connect(tmp_path / "streamproc.db") as conn:
        conn.execute("UPDATE collections SET dim = 512, pack = 'buffalo_l', recognizer = NULL")
    second = _daemon(tmp_path, broker, "test_mfn")
    try:
        rek = client_for(second.endpoint)
        for call in (lambda: rek.start_stream_processor(Name="old-door"),
                     lambda: create(rek, "old-door-2", "/nonexistent/2.mp4", "mm-old2", "old")):
            with pytest.raises(rek.exceptions.InvalidParameterException) as err:
                call()
            assert "buffalo_l (512-d embeddings)" in err.value.response["Error"]["Message"]
    finally:
        second.stop()

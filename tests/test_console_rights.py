"""What a key may see through the console's own routes, judged by the real access control.

A ControlApi and the console served on loopback, with the real :class:`AccessControl` over a
keys file and a policy file (reloaded as SIGHUP reloads them), the live feed over a real
:class:`FeedTap` and the job frames over a real clip: an open feed ends when a reload takes
``ListFaces`` on its collection away; with auth off every session shares one key's feed cap;
a job frame is judged as the API judges that job's Get request.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import VIDEO
from prometheus_client import CollectorRegistry
from test_console_feed import Events
from test_console_jobs import FakeJobs

from streamproc.api.access import AccessControl
from streamproc.api.context import RequestContext
from streamproc.api.intake import BodyLimits
from streamproc.api.policy import may_allow_somewhere, parse_policy
from streamproc.api.resources import request_resources
from streamproc.api.server import ConnectionTimeouts, HttpServer
from streamproc.api.transport import ApiLimits, ControlApi
from streamproc.api.validate import ServiceSpec
from streamproc.config import ObjectsConfig, load_config
from streamproc.console import feed as feed_module
from streamproc.console.feed import LiveFeed
from streamproc.console.job_frames import JobFrameRoute
from streamproc.console.routes import Console
from streamproc.console.sessions import SessionStore
from streamproc.dataplane.output.tap import FeedTap
from streamproc.metrics import ApiMetrics
from streamproc.rekognition.constants import Arns
from streamproc.storage.objects import ObjectStore

pytestmark = pytest.mark.unit

ARNS = Arns("us-east-1", "000000000000")
CAM, COLLECTION = "lobby-cam", "staff"
CLIP = VIDEO / "head-pose-face-detection-female-and-male.mp4"
WATCHER, GETTER, SCOPED, DENIER = ("AKIDRIGHTSWATCHER001", "AKIDRIGHTSGETTER0001",
                                   "AKIDRIGHTSSCOPED0001", "AKIDRIGHTSDENIER0001")
LOBBY, BLOCKED = "AKIDRIGHTSLOBBY00001", "AKIDRIGHTSBLOCKED001"
SECRETS = {key: f"{key.lower()}/secret+1"
           for key in (WATCHER, GETTER, SCOPED, DENIER, LOBBY, BLOCKED)}
PROCESSOR_ARN = "arn:aws:rekognition:us-east-1:000000000000:streamprocessor/"


def allow(actions: list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


WATCHING = policy(allow(["rekognition:DescribeStreamProcessor", "rekognition:ListFaces"]))
POLICIES: dict[str, Any] = {
    WATCHER: WATCHING,
    GETTER: policy(allow(["rekognition:GetFaceDetection"])),
    # The Get names no collection: an Allow scoped to collections does not cover it.
    SCOPED: policy(allow(["rekognition:GetFaceDetection"],
                         "arn:aws:rekognition:*:*:collection/*")),
    DENIER: policy(allow(["rekognition:*"]),
                   {"Effect": "Deny", "Action": "rekognition:GetFaceDetection",
                    "Resource": "*"}),
    LOBBY: policy(allow(["rekognition:CreateStreamProcessor"],
                        [PROCESSOR_ARN + "lobby-*", "arn:aws:rekognition:*:*:collection/*"])),
    BLOCKED: policy(allow(["rekognition:CreateStreamProcessor"], PROCESSOR_ARN + "lobby-*"),
                    {"Effect": "Deny", "Action": "rekognition:Create*", "Resource": "*"}),
}


class RecordingAccess(AccessControl):
    """The real access control, recording every request it judges (operation, params)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.judged: list[tuple[str, str, dict[str, Any]]] = []

    def allows(self, key_id: str, operation: str, params: dict[str, Any]) -> bool:
        self.judged.append(("allows", operation, dict(params)))
        return super().allows(key_id, operation, params)

    def authorize(self, key_id: str, operation: str, params: dict[str, Any]) -> None:
        self.judged.append(("authorize", operation, dict(params)))
        super().authorize(key_id, operation, params)


class Served:
    """The console (auth on or off) with the live feed and job frames, on loopback."""

    def __init__(self, home: Path, *, auth: bool, per_key: int = 2) -> None:
        (home / "keys.json").write_text(json.dumps(SECRETS))
        self.policies = home / "policies.json"
        self.policies.write_text(json.dumps(POLICIES))
        overrides = {"auth.enabled": True, "auth.access_keys_file": str(home / "keys.json"),
                     "auth.policy_file": str(self.policies)} if auth else {}
        config = load_config(None, overrides)
        self.registry = CollectorRegistry()
        metrics = ApiMetrics.create(self.registry)
        self.access: RecordingAccess | None = None
        if auth:
            self.access = RecordingAccess(config.auth, ARNS, metrics)
            self.access.load()

        def answer(params: dict[str, Any], context: RequestContext) -> dict[str, Any]:
            return {"JobStatus": "SUCCEEDED"}

        handlers = {op: answer for op in ("DescribeStreamProcessor", "ListFaces",
                                          "GetFaceDetection", "CreateStreamProcessor")}
        api = ControlApi(ServiceSpec(), handlers, metrics, self.registry,
                         ApiLimits(BodyLimits.of(config.server), 4, 2), lambda: {"status": "ok"},
                         ARNS, None, self.access)
        self.tap = FeedTap(10, 10, per_key)
        feed = LiveFeed(self.tap, lambda name: True, {CAM: COLLECTION}.get, self.registry)
        objects = home / "objects"
        (objects / "vids").mkdir(parents=True)
        shutil.copy(CLIP, objects / "vids" / CLIP.name)
        frames = JobFrameRoute(FakeJobs({"job-both": ("FaceDetection", CLIP.name)}),  # type: ignore[arg-type]
                               ObjectStore(ObjectsConfig(local_root=objects)), 2,
                               home / "scratch", 10 << 20, self.registry)
        console = Console(api, self.access, SessionStore(20, 60.0, max_per_key=20),
                          secure_cookie=False, version="test", extensions=(feed, frames))
        self.http = HttpServer(None, "127.0.0.1", 0, 1.0, ConnectionTimeouts(5.0, 5.0, 5))
        self.http.serve(api.app(console.routes()))
        self.url = f"http://127.0.0.1:{self.http.port}"

    def sign_in(self, key: str | None = None) -> tuple[requests.Session, str]:
        http = requests.Session()
        body = {} if key is None else {"AccessKeyId": key, "SecretAccessKey": SECRETS[key]}
        answer = http.post(f"{self.url}/console/session", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        return http, answer.json()["csrf"]

    def set_policy(self, key: str, document: dict[str, Any]) -> None:
        assert self.access is not None
        self.policies.write_text(json.dumps({**POLICIES, key: document}))
        assert self.access.reload()

    def stop(self) -> None:
        self.tap.close()
        self.http.stop(2.0)


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setattr(feed_module, "RECHECK_S", 0.2)
    served = Served(tmp_path, auth=True)
    yield served
    served.stop()


@pytest.fixture
def open_auth(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path, auth=False)
    yield served
    served.stop()


# ---- the live feed -------------------------------------------------------------------------
@pytest.mark.parametrize("reloaded", [
    policy(allow(["rekognition:DescribeStreamProcessor"])),
    policy(allow(["rekognition:DescribeStreamProcessor", "rekognition:ListFaces"]),
           {"Effect": "Deny", "Action": "rekognition:ListFaces",
            "Resource": f"arn:aws:rekognition:us-east-1:000000000000:collection/{COLLECTION}"}),
], ids=["allow-removed", "explicit-deny"])
def test_an_open_feed_ends_when_a_reload_takes_list_faces_away(
        keyed: Served, reloaded: dict[str, Any]) -> None:
    http, _ = keyed.sign_in(WATCHER)
    events = Events(http, f"{keyed.url}/console/feed/{CAM}")
    try:
        assert events.next() == ("hello", {"processor": CAM, "here": True})
        keyed.tap.offer(CAM, b'{"FaceSearchResponse":[]}', ())
        name, data = events.until("match", 5)
        assert name == "match" and data["record"] == {"FaceSearchResponse": []}
        keyed.set_policy(WATCHER, reloaded)  # Describe kept: only the collection went
        assert events.until("end", 5) == ("end", {"reason": "session"})
        with pytest.raises(StopIteration):
            events.next()
    finally:
        events.close()
    assert keyed.tap.open_feeds == 0
    # And a new feed is refused outright, naming the collection.
    answer = http.get(f"{keyed.url}/console/feed/{CAM}", timeout=5)
    assert answer.status_code == 403
    assert f"ListFaces on collection {COLLECTION}" in answer.json()["Message"]


def test_a_feed_whose_key_keeps_its_rights_stays_open_across_a_reload(
        keyed: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "KEEPALIVE_S", 0.5)  # more than RECHECK_S (0.2)
    http, _ = keyed.sign_in(WATCHER)
    events = Events(http, f"{keyed.url}/console/feed/{CAM}")
    try:
        assert events.next()[0] == "hello"
        keyed.set_policy(WATCHER, WATCHING)  # reloaded, same rights
        keyed.set_policy(GETTER, policy(allow(["rekognition:*"])))  # another key's change
        # Two keepalives a re-check period apart or more: the feed was judged again since.
        assert [events.next_line() for _ in range(2)] == [": keepalive"] * 2
        keyed.tap.offer(CAM, b'{"n":1}', ())
        name, data = events.until("match", 5)
        assert name == "match" and data["record"] == {"n": 1}
    finally:
        events.close()


# ---- the feed cap with auth off ------------------------------------------------------------
def test_with_auth_off_every_session_shares_one_keys_feed_cap(open_auth: Served) -> None:
    first, _ = open_auth.sign_in()
    second, _ = open_auth.sign_in()
    url = f"{open_auth.url}/console/feed/{CAM}"
    feeds = [Events(first, url), Events(second, url)]  # per_key = 2 of max_feeds = 10
    try:
        for events in feeds:
            assert events.next()[0] == "hello"
        for http in (first, second, open_auth.sign_in()[0]):  # any session, even a new one
            answer = http.get(url, timeout=5)
            assert answer.status_code == 400
            body = answer.json()
            assert body["__type"] == "LimitExceededException"
            assert "Authentication is off" in body["Message"]
            assert "console.max_feeds_per_key" in body["Message"]
        assert open_auth.tap.open_feeds == 2
    finally:
        for events in feeds:
            events.close()


# ---- job frames ----------------------------------------------------------------------------
FRAME = "/console/jobs/GetFaceDetection/job-both/frame?ms=0"


@pytest.mark.parametrize("key, allowed", [(GETTER, True), (SCOPED, False), (DENIER, False)])
def test_a_job_frame_is_judged_as_the_api_judges_that_jobs_get(
        keyed: Served, key: str, allowed: bool) -> None:
    assert keyed.access is not None
    http, csrf = keyed.sign_in(key)
    api = http.post(f"{keyed.url}/console/api/GetFaceDetection", json={"JobId": "job-both"},
                    headers={"X-CSRF-Token": csrf}, timeout=5)
    (_, operation, judged_by_api), = [j for j in keyed.access.judged if j[0] == "authorize"]
    keyed.access.judged.clear()
    frame = http.get(keyed.url + FRAME, timeout=30)
    (_, frame_operation, judged_for_frame), = [j for j in keyed.access.judged
                                               if j[1] == "GetFaceDetection"]
    # The very request the API judged: the operation, the JobId, so the same resources.
    assert frame_operation == operation == "GetFaceDetection"
    assert judged_for_frame == {"JobId": "job-both"}
    assert judged_by_api["JobId"] == "job-both"
    assert request_resources(operation, judged_for_frame, ARNS) == \
        request_resources(operation, judged_by_api, ARNS)
    assert (api.status_code == 200) is allowed, api.text
    if allowed:
        assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    else:
        assert api.json()["__type"] == "AccessDeniedException"
        assert frame.status_code == 403 and frame.json()["__type"] == "AccessDeniedException"


# ---- the create form for resource-scoped keys ----------------------------------------------
def test_may_allow_somewhere_sees_a_scoped_allow_and_a_blanket_deny() -> None:
    create = "rekognition:CreateStreamProcessor"
    assert may_allow_somewhere(parse_policy(POLICIES[LOBBY]), create)
    assert not may_allow_somewhere(parse_policy(POLICIES[BLOCKED]), create)  # Deny on "*"
    assert not may_allow_somewhere(parse_policy(POLICIES[WATCHER]), create)  # never named
    # A Deny on some resources only leaves the others: the API judges the name given.
    partly = policy(allow(["rekognition:*"]), {"Effect": "Deny", "Action": create,
                                               "Resource": PROCESSOR_ARN + "door-*"})
    assert may_allow_somewhere(parse_policy(partly), create)
    not_resource = policy(allow([create]), {"Effect": "Deny", "Action": create,
                                            "NotResource": PROCESSOR_ARN + "lobby-*"})
    assert may_allow_somewhere(parse_policy(not_resource), create)


def whoami(served: Served, key: str | None) -> dict[str, Any]:
    http, _ = served.sign_in(key)
    answer = http.get(f"{served.url}/console/whoami", timeout=5)
    assert answer.status_code == 200
    return dict(answer.json())


def test_whoami_tells_a_key_allowed_to_create_some_processors_apart(keyed: Served) -> None:
    lobby = whoami(keyed, LOBBY)
    assert "CreateStreamProcessor" not in lobby["allowed"]  # not on every processor ("*")
    assert lobby["allowedSomewhere"] == ["CreateStreamProcessor"]
    for key in (BLOCKED, WATCHER):
        assert whoami(keyed, key)["allowedSomewhere"] == [], key
    everything = policy(allow(["rekognition:*"]))
    keyed.set_policy(LOBBY, everything)
    full = whoami(keyed, LOBBY)
    assert "CreateStreamProcessor" in full["allowed"] and full["allowedSomewhere"] == []
    # The API decides each request: inside the pattern it runs, outside it is denied.
    keyed.set_policy(LOBBY, POLICIES[LOBBY])
    http, csrf = keyed.sign_in(LOBBY)
    for name, status in (("lobby-1", 200), ("door-1", 400)):
        answer = http.post(f"{keyed.url}/console/api/CreateStreamProcessor", timeout=5,
                           headers={"X-CSRF-Token": csrf}, json={
                               "Name": name, "RoleArn": "arn:aws:iam::000000000000:role/r",
                               "Input": {"KinesisVideoStream": {"Arn": "arn:aws:kinesisvideo:"
                                         "us-east-1:000000000000:stream/s/1"}},
                               "Output": {"KinesisDataStream": {"Arn": "arn:aws:kinesis:"
                                          "us-east-1:000000000000:stream/o"}},
                               "Settings": {"FaceSearch": {"CollectionId": "staff"}}})
        assert answer.status_code == status, (name, answer.text)
    assert answer.json()["__type"] == "AccessDeniedException"


def test_with_auth_off_whoami_allows_create_everywhere(open_auth: Served) -> None:
    body = whoami(open_auth, None)
    assert "CreateStreamProcessor" in body["allowed"] and body["allowedSomewhere"] == []

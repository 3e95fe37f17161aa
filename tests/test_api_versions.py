"""Project versions through boto3 against a real daemon: training on real frames, end to end.

Frames of the shared clips (a few per clip, small JPEGs under the daemon's
``objects.local_root``) make the images: a Custom Labels project learns two scenes
(classroom vs walking), an adapter learns ``Violence`` for one clip's frames. Both train
in the runner's thread while the API answers; the botocore waiters wait for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import WaiterError
from conftest import client_for, make_config
from projects_helpers import (
    IMAGES,
    OUT,
    WAIT,
    class_line,
    describe_version,
    moderation_line,
    put_frames,
    running,
    spread_frames,
    write_lines,
)

from streamproc.daemon import Daemon
from streamproc.storage.db import Database
from streamproc.storage.versions import StoredVersion, VersionStore

PER_CLIP = 14  # frames per clip: 10 train, 4 test
MIN_PER_CLASS = 4


def _write_frames(root: Path, clip: str, tag: str) -> list[str]:
    """``PER_CLIP`` frames spread over the clip, as JPEGs under ``IMAGES/tag``; their refs."""
    return [ref for ref, _ in put_frames(root, tag, spread_frames(clip, PER_CLIP))]


class Home:
    """The daemon's data and objects, and the frames written there."""

    def __init__(self, base: Path) -> None:
        self.root = base / "objects"
        (self.root / OUT).mkdir(parents=True)
        (self.root / "not-allowed").mkdir()
        # OUT is read too: CopyProjectVersion copies the source version's output files.
        self.config = make_config(base / "data", **{
            "objects.local_root": str(self.root), "objects.buckets": [IMAGES, OUT],
            "objects.output_buckets": [OUT], "kafka.bootstrap": "127.0.0.1:9",
            "projects.training_min_per_class": MIN_PER_CLASS})
        self.classroom = _write_frames(self.root, "classroom.mp4", "classroom")
        self.walking = _write_frames(self.root, "face-demographics-walking.mp4", "walking")
        self.head = _write_frames(self.root, "head-pose-face-detection-male.mp4", "head")

    def manifest(self, key: str, lines: list[dict[str, Any]]) -> dict[str, str]:
        return write_lines(self.root, key, lines)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(tmp_path_factory.mktemp("versions"))


@pytest.fixture(scope="module")
def daemon(home: Home) -> Iterator[Daemon]:
    yield from running(Daemon(home.config))


@pytest.fixture(scope="module")
def rek(daemon: Daemon) -> Any:
    return client_for(daemon.endpoint)


def _read(home: Home, s3: dict[str, Any]) -> bytes:
    assert s3["Bucket"] == OUT
    return (home.root / OUT / s3["Name"]).read_bytes()


def _custom_labels_project(rek: Any, home: Home, name: str, train_n: int) -> str:
    project = rek.create_project(ProjectName=name)["ProjectArn"]
    for kind, part in (("TRAIN", slice(0, train_n)), ("TEST", slice(10, PER_CLIP))):
        lines = [class_line(ref, "classroom") for ref in home.classroom[part]] + \
                [class_line(ref, "walking") for ref in home.walking[part]]
        rek.create_dataset(ProjectArn=project, DatasetType=kind, DatasetSource={
            "GroundTruthManifest": {"S3Object": home.manifest(f"{name}-{kind}.manifest",
                                                              lines)}})
    return str(project)


def test_custom_labels_version_trains_starts_stops_and_is_deleted(rek: Any, home: Home) -> None:
    project = _custom_labels_project(rek, home, "scenes", 10)
    arn = rek.create_project_version(
        ProjectArn=project, VersionName="v1", VersionDescription="two scenes",
        OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": "cl/"},
        Tags={"team": "vision"})["ProjectVersionArn"]
    assert arn.startswith("arn:aws:rekognition:us-east-1:") and "/version/v1/" in arn
    assert describe_version(rek, project, "v1")["Status"] == "TRAINING_IN_PROGRESS"
    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=["v1"], WaiterConfig=WAIT)
    done = describe_version(rek, project, "v1")
    assert done["Status"] == "TRAINING_COMPLETED" and done["Feature"] == "CUSTOM_LABELS"
    assert done["VersionDescription"] == "two scenes" and done["ProjectVersionArn"] == arn
    assert done["BillableTrainingTimeInSeconds"] >= 1 and "TrainingEndTimestamp" in done
    assert done["EvaluationResult"]["F1Score"] >= 0.9, done["EvaluationResult"]
    print(f"custom labels F1 {done['EvaluationResult']['F1Score']:.3f}")
    summary = json.loads(_read(home, done["EvaluationResult"]["Summary"]["S3Object"]))
    assert done["EvaluationResult"]["Summary"]["S3Object"]["Name"].endswith(
        "EvaluationSummary-scenes-v1.json")
    assert summary["EvaluationDetails"]["NumberOfTestingImages"] == 8
    assert summary["EvaluationDetails"]["NumberOfTrainingImages"] == 20
    assert sorted(summary["EvaluationDetails"]["Labels"]) == ["classroom", "walking"]
    manifest = json.loads(_read(home, done["ManifestSummary"]["S3Object"]))
    assert manifest["statistics"]["total-json-lines"] == 28
    test_out = done["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]
    assert len(_read(home, test_out["S3Object"]).splitlines()) == 8
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "vision"}
    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.delete_project(ProjectArn=project)  # a version is left
    assert rek.start_project_version(ProjectVersionArn=arn,
                                     MinInferenceUnits=1)["Status"] == "STARTING"
    rek.get_waiter("project_version_running").wait(ProjectArn=project, VersionNames=["v1"],
                                                   WaiterConfig=WAIT)
    running = describe_version(rek, project, "v1")
    assert (running["MinInferenceUnits"], running["MaxInferenceUnits"]) == (1, 1)
    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.delete_project_version(ProjectVersionArn=arn)
    assert rek.stop_project_version(ProjectVersionArn=arn)["Status"] == "STOPPING"
    assert describe_version(rek, project, "v1")["Status"] == "STOPPED"
    copy = rek.create_project(ProjectName="scenes-copy")["ProjectArn"]
    copied = rek.copy_project_version(
        SourceProjectArn=project, SourceProjectVersionArn=arn, DestinationProjectArn=copy,
        VersionName="c1", OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": "copy/"})
    described = describe_version(rek, copy, "c1")
    assert described["Status"] == "COPYING_COMPLETED"
    assert described["SourceProjectVersionArn"] == arn
    # The copy's files are its own, under its OutputConfig, and say what the source's say.
    copied_summary = described["EvaluationResult"]["Summary"]["S3Object"]
    assert copied_summary["Name"] == "copy/scenes-copy/c1/EvaluationSummary-scenes-copy-c1.json"
    assert json.loads(_read(home, copied_summary)) == summary
    assert described["ManifestSummary"]["S3Object"]["Name"] == \
        "copy/scenes-copy/c1/manifest-summary.json"
    assert json.loads(_read(home, described["ManifestSummary"]["S3Object"])) == manifest
    copied_test = described["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]
    assert _read(home, copied_test["S3Object"]) == _read(home, test_out["S3Object"])
    assert described["EvaluationResult"]["F1Score"] == done["EvaluationResult"]["F1Score"]
    assert rek.delete_project_version(ProjectVersionArn=arn)["Status"] == "DELETING"
    assert rek.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"] == []
    rek.delete_project_version(ProjectVersionArn=copied["ProjectVersionArn"])
    assert rek.delete_project(ProjectArn=project)["Status"] == "DELETING"


def test_adapter_version_trains_from_assets_and_is_never_started(rek: Any, home: Home) -> None:
    project = rek.create_project(ProjectName="tuned", Feature="CONTENT_MODERATION",
                                 AutoUpdate="DISABLED")["ProjectArn"]
    lines = [moderation_line(ref, ["Violence"]) for ref in home.head[:12]] + \
            [moderation_line(ref, []) for ref in home.classroom[:12]]
    asset = {"Assets": [{"GroundTruthManifest": {"S3Object": home.manifest(
        "adapter.manifest", lines)}}]}
    arn = rek.create_project_version(
        ProjectArn=project, VersionName="a1", TrainingData=asset,
        TestingData={"AutoCreate": True}, OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": "ad/"},
        FeatureConfig={"ContentModeration": {"ConfidenceThreshold": 50.0}})["ProjectVersionArn"]
    rek.get_waiter("project_version_training_completed").wait(
        ProjectArn=project, VersionNames=["a1"], WaiterConfig=WAIT)
    done = describe_version(rek, project, "a1")
    assert done["Feature"] == "CONTENT_MODERATION" and done["BaseModelVersion"]
    assert done["FeatureConfig"] == {"ContentModeration": {"ConfidenceThreshold": 50.0}}
    assert done["TestingDataResult"]["Output"]["AutoCreate"] is True
    assert done["TestingDataResult"]["Input"]["AutoCreate"] is True  # as the request asked
    summary = json.loads(_read(home, done["EvaluationResult"]["Summary"]["S3Object"]))
    at = summary["ContentModeration"]["InputConfidenceThresholdEvalResults"]
    assert at["ConfidenceThreshold"] == 50.0
    assert len(summary["ContentModeration"]["AllConfidenceThresholdsEvalResults"]) == 20
    assert summary["AggregatedEvaluationResults"]["F1Score"] == done["EvaluationResult"][
        "F1Score"]
    base, adapter = (at["AggregatedEvaluationResults"][k] for k in ("BaseModel", "Adapter"))
    # open_nsfw never emits Violence: the base model misses every held-out positive.
    assert base["TruePositive"] == 0 and base["FalseNegative"] > 0
    assert adapter["TruePositive"] > 0 and done["EvaluationResult"]["F1Score"] > 0.0
    print(f"adapter test set: base {base}, adapter {adapter}, "
          f"F1 {done['EvaluationResult']['F1Score']:.3f}")
    test_out = done["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]
    rows = [json.loads(x) for x in _read(home, test_out["S3Object"]).splitlines()]
    assert rows and all({"source-ref", "content-moderation-groundtruth",
                         "detect-moderation-labels", "detect-moderation-labels-base-model"}
                        <= set(row) for row in rows)
    assert rows[0]["detect-moderation-labels"]["ProjectVersion"] == arn
    # BaseModelVersion: the model it was trained on, as its training recorded it.
    assert done["BaseModelVersion"] == \
        rows[0]["detect-moderation-labels-base-model"]["ModerationModelVersion"]
    with pytest.raises(rek.exceptions.InvalidParameterException, match="adapter"):
        rek.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    with pytest.raises(rek.exceptions.InvalidParameterException, match="adapter"):
        rek.stop_project_version(ProjectVersionArn=arn)
    rek.delete_project_version(ProjectVersionArn=arn)


def test_too_few_images_fails_the_version_with_the_reason(rek: Any, home: Home) -> None:
    project = _custom_labels_project(rek, home, "tiny", 2)
    rek.create_project_version(ProjectArn=project, VersionName="v1",
                               OutputConfig={"S3Bucket": OUT, "S3KeyPrefix": "tiny/"})
    waiter = rek.get_waiter("project_version_training_completed")
    with pytest.raises(WaiterError, match="TRAINING_FAILED|failure state"):
        waiter.wait(ProjectArn=project, VersionNames=["v1"], WaiterConfig=WAIT)
    failed = describe_version(rek, project, "v1")
    assert failed["Status"] == "TRAINING_FAILED"
    assert "too few usable images" in failed["StatusMessage"]


def test_bad_requests_get_rekognition_errors(rek: Any, home: Home) -> None:
    project = rek.create_project(ProjectName="errs")["ProjectArn"]
    missing = project.replace("/errs/", "/nope/")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.create_project_version(ProjectArn=missing, VersionName="v",
                                   OutputConfig={"S3Bucket": OUT})
    with pytest.raises(rek.exceptions.AccessDeniedException, match="output_buckets"):
        rek.create_project_version(ProjectArn=project, VersionName="v",
                                   OutputConfig={"S3Bucket": "not-allowed"})
    for malformed in ("../../", "/etc/"):  # the request's fault, as at StartMediaAnalysisJob
        with pytest.raises(rek.exceptions.InvalidParameterException, match="does not write"):
            rek.create_project_version(ProjectArn=project, VersionName="v", OutputConfig={
                "S3Bucket": OUT, "S3KeyPrefix": malformed})
    with pytest.raises(rek.exceptions.InvalidParameterException, match="KmsKeyId"):
        rek.create_project_version(ProjectArn=project, VersionName="v", KmsKeyId="k",
                                   OutputConfig={"S3Bucket": OUT})
    with pytest.raises(rek.exceptions.InvalidParameterException, match="FeatureConfig"):
        rek.create_project_version(
            ProjectArn=project, VersionName="v", OutputConfig={"S3Bucket": OUT},
            FeatureConfig={"ContentModeration": {"ConfidenceThreshold": 40.0}})
    with pytest.raises(rek.exceptions.InvalidParameterException, match="no TRAIN dataset"):
        rek.create_project_version(ProjectArn=project, VersionName="v",
                                   OutputConfig={"S3Bucket": OUT})
    with pytest.raises(rek.exceptions.InvalidParameterException, match="needs an S3Bucket"):
        rek.create_project_version(ProjectArn=project, VersionName="v",
                                   OutputConfig={"S3KeyPrefix": "p/"})
    with pytest.raises(rek.exceptions.InvalidParameterException, match="GroundTruthManifest"):
        rek.create_project_version(ProjectArn=project, VersionName="v",
                                   OutputConfig={"S3Bucket": OUT},
                                   TrainingData={"Assets": [{"GroundTruthManifest": {}}]})
    gone = f"{project.rsplit('/', 1)[0]}/version/none/1"
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_project_version(ProjectVersionArn=gone)


def test_project_policies_keep_revisions(rek: Any) -> None:
    project = rek.create_project(ProjectName="shared")["ProjectArn"]
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": "rekognition:CopyProjectVersion", "Resource": "*"}]})
    revision = rek.put_project_policy(ProjectArn=project, PolicyName="p1",
                                      PolicyDocument=doc)["PolicyRevisionId"]
    with pytest.raises(rek.exceptions.ResourceAlreadyExistsException):
        rek.put_project_policy(ProjectArn=project, PolicyName="p1", PolicyDocument=doc)
    with pytest.raises(rek.exceptions.InvalidPolicyRevisionIdException):
        rek.put_project_policy(ProjectArn=project, PolicyName="p1", PolicyDocument=doc,
                               PolicyRevisionId="00ff")
    with pytest.raises(rek.exceptions.MalformedPolicyDocumentException):
        rek.put_project_policy(ProjectArn=project, PolicyName="p2", PolicyDocument="{x")
    newer = rek.put_project_policy(ProjectArn=project, PolicyName="p1", PolicyDocument=doc,
                                   PolicyRevisionId=revision)["PolicyRevisionId"]
    (listed,) = rek.list_project_policies(ProjectArn=project)["ProjectPolicies"]
    assert (listed["PolicyName"], listed["PolicyRevisionId"]) == ("p1", newer) != revision
    with pytest.raises(rek.exceptions.InvalidPolicyRevisionIdException):
        rek.delete_project_policy(ProjectArn=project, PolicyName="p1",
                                  PolicyRevisionId=revision)
    rek.delete_project_policy(ProjectArn=project, PolicyName="p1", PolicyRevisionId=newer)
    assert rek.list_project_policies(ProjectArn=project)["ProjectPolicies"] == []


def test_a_version_left_training_by_a_dead_process_is_retrained(tmp_path: Path,
                                                                 home: Home) -> None:
    """A stopped daemon's data holds a version mid-training; the next start trains it."""
    config = make_config(tmp_path / "data", **{
        "objects.local_root": str(home.root), "objects.buckets": [IMAGES],
        "objects.output_buckets": [OUT], "kafka.bootstrap": "127.0.0.1:9",
        "projects.training_min_per_class": MIN_PER_CLASS})
    first = Daemon(config)
    first.start()
    rek = client_for(first.endpoint)
    project = _custom_labels_project(rek, home, "resumed", 10)
    first.stop()
    db = Database(tmp_path / "data" / "streamproc.db")
    db.open()
    try:
        created_ms = int(project.rsplit("/", 1)[1])
        VersionStore(db).put(StoredVersion(  # as a process that died mid-training left it
            "resumed", created_ms, "v1", created_ms + 1, "CUSTOM_LABELS",
            "TRAINING_IN_PROGRESS", "The model is being trained", created_ms + 1, "local",
            {"OutputConfig": {"S3Bucket": OUT, "S3KeyPrefix": "resumed/"}}, {}, None, None))
    finally:
        db.close()
    second = Daemon(config)
    second.start()
    try:
        rek = client_for(second.endpoint)
        rek.get_waiter("project_version_training_completed").wait(
            ProjectArn=project, VersionNames=["v1"], WaiterConfig=WAIT)
        assert describe_version(rek, project, "v1")["EvaluationResult"]["F1Score"] >= 0.9
    finally:
        second.stop()

"""Old logs replay on an upgraded node: every command kind's bytes as the untyped code wrote them.

The constants below were written by the encoder before commands were typed (``git show
d1a666d:streamproc/ledger.py``: ``encode(kind, payload, id, node)``), one per kind, with
payloads as that code's services built them (embeddings 4-d to keep the bytes short). Each
decodes into its typed command with the right fields and writes the same bytes again, a
newer node's extra payload key changes nothing, and a whole old log applied to the appliers
a daemon builds (its own build functions) gives the state it always gave, step by step.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from streamproc.cluster.commands import AdvanceEpoch
from streamproc.cluster.ledger import Barrier
from streamproc.cluster.node import ClusterNode
from streamproc.collections.commands import (
    AddFaces,
    AssociateFaces,
    CreateCollection,
    CreateUser,
    DeleteCollection,
    DeleteFaces,
    DeleteUser,
    DisassociateFaces,
)
from streamproc.config import CalibrationKnot, Config, load_config
from streamproc.daemon.jobs import Moderation, build_jobs
from streamproc.daemon.parts import Domain, Storage, build_domain, open_storage
from streamproc.dataplane.regions import regions_from_wire
from streamproc.faces.engine import ModelIdentity
from streamproc.faces.similarity import SimilarityScale
from streamproc.jobs.commands import AddJobResults, FinishJob, LaunchJob, SetJobMetadata, StartJob
from streamproc.jobs.parts import JobHooks
from streamproc.ledger import (
    Applied,
    Appliers,
    Command,
    LocalLedger,
    UnknownCommand,
    Unregistered,
    encode,
)
from streamproc.processors.commands import (
    ClaimProcessor,
    CreateProcessor,
    DeleteProcessor,
    ReleaseProcessor,
    Report,
    ReportProcessor,
    StartProcessor,
    StopProcessor,
    UpdateProcessor,
)
from streamproc.processors.mailbox import Mailbox
from streamproc.processors.registry import Desired
from streamproc.processors.spec import ProcessorSpec
from streamproc.processors.state import ProcessorStatus
from streamproc.projects.commands import CreateProject, DeleteProject
from streamproc.projects.dataset_commands import (
    AddDatasetEntries,
    CreateDataset,
    DatasetRef,
    DeleteDataset,
    DistributeEntries,
    SetDatasetStatus,
)
from streamproc.projects.datasets import Dataset, DatasetStatus, DatasetType, Entry, StatusCode
from streamproc.projects.types import AutoUpdate, Feature, Project
from streamproc.projects.versions import Version, VersionRef, VersionStatus
from streamproc.projects.versions_commands import (
    AddVersionModel,
    CreateVersion,
    DeletePolicy,
    DeleteVersion,
    PutPolicy,
    SetVersionStatus,
    TrainingAttempt,
)
from streamproc.rekognition.constants import FACE_SEARCH
from streamproc.storage.cluster import ClusterLog
from streamproc.storage.collections import CollectionInfo
from streamproc.storage.jobs import JobStore, ResultOrder, ResultRow, StoredJob
from streamproc.storage.objects import ObjectStore
from streamproc.storage.versions import StoredPolicy
from streamproc.tags.commands import RemoveTags, SetTags

ARN = "arn:aws:rekognition:eu-west-1:123456789012"
RECOGNIZER = "9f2c1e4b7a5d3c8e0f6a2b4d1c7e9a3f5b8d0c2e4a6f1b3d5c7e9a0b2d4f6a8c"
MODEL = ModelIdentity("test_mfn", 4, RECOGNIZER)
F1, F2 = "3d2b7c9e-41aa-5f0e-8c1d-6b5a4e3f2d10", "8a1f6e2d-93bc-5a47-b2e8-0c9d7f6e5a41"
NO_FACE = "00000000-0000-0000-0000-000000000000"
SID = "5b0f3a1e-2c7d-4e98-b6a4-1d3f5e7c9a20"
LOBBY = f"{ARN}:collection/lobby"

# kind -> a record as the untyped code wrote it (its JSON, byte for byte).
OLD_LOG: dict[str, bytes] = {
    "collection.create": (
        b'{"kind":"collection.create","id":"00000000-0000-4000-8000-000000000000","node":"node'
        b'-a","payload":{"info":{"collection_id":"lobby","arn":"arn:aws:rekognition:eu-west-1:'
        b'123456789012:collection/lobby","created":1718000000.25,"pack":"test_mfn","dim":4,"fa'
        b'ce_model_version":"7.0","recognizer":"9f2c1e4b7a5d3c8e0f6a2b4d1c7e9a3f5b8d0c2e4a6f1b'
        b'3d5c7e9a0b2d4f6a8c"},"tags":{"team":"security"}}}'),
    "collection.delete": (
        b'{"kind":"collection.delete","id":"00000000-0000-4000-8000-000000000001","node":"node'
        b'-a","payload":{"collection_id":"old-lobby"}}'),
    "faces.add": (
        b'{"kind":"faces.add","id":"00000000-0000-4000-8000-000000000002","node":"node-a","pay'
        b'load":{"collection_id":"lobby","faces":[{"face_id":"3d2b7c9e-41aa-5f0e-8c1d-6b5a4e3f'
        b'2d10","image_id":"c5e0b8a2-7d14-5e39-a6f1-2b8c4d9e0f73","external_image_id":"alice-1'
        b'.jpg","bbox":{"Width":0.21875,"Height":0.40625,"Left":0.390625,"Top":0.15625},"confi'
        b'dence":99.8731,"embedding":"AAAAPwAAAD8AAAA/AAAAPw=="},{"face_id":"8a1f6e2d-93bc-5a4'
        b'7-b2e8-0c9d7f6e5a41","image_id":"d7f2c0b4-9e36-5b51-c8a3-4d0e6f1b2a95","external_ima'
        b'ge_id":null,"bbox":{"Width":0.21875,"Height":0.40625,"Left":0.390625,"Top":0.15625},'
        b'"confidence":99.2046,"embedding":"mpkZP4/C9T6PwvU+PQrXPg=="}]}}'),
    "faces.delete": (
        b'{"kind":"faces.delete","id":"00000000-0000-4000-8000-000000000003","node":"node-a","'
        b'payload":{"collection_id":"lobby","face_ids":["8a1f6e2d-93bc-5a47-b2e8-0c9d7f6e5a41"'
        b',"00000000-0000-0000-0000-000000000000"]}}'),
    "user.create": (
        b'{"kind":"user.create","id":"00000000-0000-4000-8000-000000000004","node":"node-a","p'
        b'ayload":{"collection_id":"lobby","user_id":"alice","token":"create-alice-1"}}'),
    "user.delete": (
        b'{"kind":"user.delete","id":"00000000-0000-4000-8000-000000000005","node":"node-a","p'
        b'ayload":{"collection_id":"lobby","user_id":"bob","token":null}}'),
    "user.associate": (
        b'{"kind":"user.associate","id":"00000000-0000-4000-8000-000000000006","node":"node-a"'
        b',"payload":{"collection_id":"lobby","user_id":"alice","face_ids":["3d2b7c9e-41aa-5f0'
        b'e-8c1d-6b5a4e3f2d10"],"threshold":75.0,"token":"assoc-1"}}'),
    "user.disassociate": (
        b'{"kind":"user.disassociate","id":"00000000-0000-4000-8000-000000000007","node":"node'
        b'-a","payload":{"collection_id":"lobby","user_id":"alice","face_ids":["3d2b7c9e-41aa-'
        b'5f0e-8c1d-6b5a4e3f2d10"],"token":null}}'),
    "tags.set": (
        b'{"kind":"tags.set","id":"00000000-0000-4000-8000-000000000008","node":"node-a","payl'
        b'oad":{"key":"arn:aws:rekognition:eu-west-1:123456789012:collection/lobby","tags":{"e'
        b'nv":"prod","owner":"ops"}}}'),
    "tags.remove": (
        b'{"kind":"tags.remove","id":"00000000-0000-4000-8000-000000000009","node":"node-a","p'
        b'ayload":{"key":"arn:aws:rekognition:eu-west-1:123456789012:collection/lobby","keys":'
        b'["owner"]}}'),
    "processor.create": (
        b'{"kind":"processor.create","id":"00000000-0000-4000-8000-000000000010","node":"node-'
        b'a","payload":{"spec":{"name":"door-cam","arn":"arn:aws:rekognition:eu-west-1:1234567'
        b'89012:streamprocessor/door-cam","input_arn":"rtsp://10.0.0.5:8554/door","output_arn"'
        b':"kafka://127.0.0.1:9092/door-matches","collection_id":"lobby","threshold":85.0,"rol'
        b'e_arn":"arn:aws:iam::123456789012:role/rekognition-stream","created":1718000100.5,"r'
        b'egions":[{"BoundingBox":{"Width":0.5,"Height":0.5,"Left":0.25,"Top":0.25}}],"data_sh'
        b'aring":false,"notification":null,"kms_key_id":null,"kind":"FaceSearch"},"tags":{"str'
        b'eamproc:emit":"track"}}}'),
    "processor.delete": (
        b'{"kind":"processor.delete","id":"00000000-0000-4000-8000-000000000011","node":"node-'
        b'a","payload":{"name":"old-cam"}}'),
    "processor.start": (
        b'{"kind":"processor.start","id":"00000000-0000-4000-8000-000000000012","node":"node-a'
        b'","payload":{"name":"door-cam","session_id":"5b0f3a1e-2c7d-4e98-b6a4-1d3f5e7c9a20"}}'),
    "processor.stop": (
        b'{"kind":"processor.stop","id":"00000000-0000-4000-8000-000000000013","node":"node-a"'
        b',"payload":{"name":"door-cam"}}'),
    "processor.update": (
        b'{"kind":"processor.update","id":"00000000-0000-4000-8000-000000000014","node":"node-'
        b'a","payload":{"name":"door-cam","changes":{"regions":[],"data_sharing":true}}}'),
    "processor.claim": (
        b'{"kind":"processor.claim","id":"00000000-0000-4000-8000-000000000015","node":"node-a'
        b'","payload":{"name":"door-cam","session_id":"5b0f3a1e-2c7d-4e98-b6a4-1d3f5e7c9a20"}}'),
    "processor.release": (
        b'{"kind":"processor.release","id":"00000000-0000-4000-8000-000000000016","node":"node'
        b'-a","payload":{"name":"door-cam","session_id":"5b0f3a1e-2c7d-4e98-b6a4-1d3f5e7c9a20"'
        b'}}'),
    "processor.report": (
        b'{"kind":"processor.report","id":"00000000-0000-4000-8000-000000000017","node":"node-'
        b'a","payload":{"name":"door-cam","session_id":"5b0f3a1e-2c7d-4e98-b6a4-1d3f5e7c9a20",'
        b'"event":"failed","message":"Stream unavailable: connection refused"}}'),
    "placement.epoch": (
        b'{"kind":"placement.epoch","id":"00000000-0000-4000-8000-000000000018","node":"node-a'
        b'","payload":{"from":3}}'),
    "ledger.barrier": (
        b'{"kind":"ledger.barrier","id":"00000000-0000-4000-8000-000000000019","node":"node-a"'
        b',"payload":{}}'),
}

# The stored-video job commands (streamproc/jobs/commands.py), as the untyped code wrote them.
OLD_JOB_LOG: dict[str, bytes] = {
    "job.start": (
        b'{"kind":"job.start","id":"00000000-0000-4000-8000-000000000020","node":"node-a","pay'
        b'load":{"job_id":"0e4d6c8a2f1b3d5e7c9a0b2d4f6e8a1c","api":"FaceSearch","token":"searc'
        b'h-door-1","request":{"Video":{"S3Object":{"Bucket":"videos","Name":"door/2024-06-10.'
        b'mp4"}},"JobTag":"door","CollectionId":"lobby","FaceMatchThreshold":80.0},"created":1'
        b'718000200.75,"max_jobs":20,"retention_s":604800.0}}'),
    "job.launch": (
        b'{"kind":"job.launch","id":"00000000-0000-4000-8000-000000000021","node":"node-a","pa'
        b'yload":{"job_id":"0e4d6c8a2f1b3d5e7c9a0b2d4f6e8a1c","after":0,"node":"node-a","messa'
        b'ge":""}}'),
    "job.metadata": (
        b'{"kind":"job.metadata","id":"00000000-0000-4000-8000-000000000022","node":"node-a","'
        b'payload":{"job_id":"0e4d6c8a2f1b3d5e7c9a0b2d4f6e8a1c","attempt":1,"metadata":{"Codec'
        b'":"h264","DurationMillis":12000,"Format":"QuickTime / MOV","FrameRate":25.0,"FrameHe'
        b'ight":720,"FrameWidth":1280,"ColorRange":"LIMITED"}}}'),
    "job.results": (
        b'{"kind":"job.results","id":"00000000-0000-4000-8000-000000000023","node":"node-a","p'
        b'ayload":{"job_id":"0e4d6c8a2f1b3d5e7c9a0b2d4f6e8a1c","attempt":1,"rows":[[0,1200,0,{'
        b'"Timestamp":1200,"Person":{"Index":0}}]]}}'),
    "job.finish": (
        b'{"kind":"job.finish","id":"00000000-0000-4000-8000-000000000024","node":"node-a","pa'
        b'yload":{"job_id":"0e4d6c8a2f1b3d5e7c9a0b2d4f6e8a1c","attempt":1,"state":"SUCCEEDED",'
        b'"message":"","finished":1718000260.0}}'),
}

# The project commands (streamproc/projects/commands.py), typed from their first release: the
# bytes that release wrote, kept as the contract for every later one.
PROJECT_LOG: dict[str, bytes] = {
    "project.create": (
        b'{"kind":"project.create","id":"00000000-0000-4000-8000-000000000027","node":"node-a","'
        b'payload":{"project":{"name":"moderation-tuning","arn":"arn:aws:rekognition:eu-west-1:1'
        b'23456789012:project/moderation-tuning/1718000500250","created_ms":1718000500250,"featu'
        b're":"CONTENT_MODERATION","auto_update":"ENABLED","status":"CREATED"},"tags":{"team":"t'
        b'rust"}}}'),
    "project.delete": (
        b'{"kind":"project.delete","id":"00000000-0000-4000-8000-000000000028","node":"node-a","'
        b'payload":{"name":"old-shelves","created_ms":1718000400000}}'),
}

# The dataset commands (streamproc/projects/dataset_commands.py), typed from their first release.
DATASET_LOG: dict[str, bytes] = {
    "dataset.create": (
        b'{"kind":"dataset.create","id":"00000000-0000-4000-8000-000000000029","node":"node-a","'
        b'payload":{"dataset":{"project":"moderation-tuning","project_ms":1718000500250,"type":"'
        b'TRAIN","created_ms":1718000600000,"updated_ms":1718000600000,"status":"CREATE_IN_PROGR'
        b'ESS","message":"","code":"SUCCESS"},"copy_from":null,"tags":{"team":"trust"}}}'),
    "dataset.entries": (
        rb'{"kind":"dataset.entries","id":"00000000-0000-4000-8000-000000000030","node":"node-a",'
        rb'"payload":{"dataset":{"project":"moderation-tuning","type":"TRAIN","created_ms":171800'
        rb'0600000},"entries":[["{\"source-ref\":\"s3://tuning/a.jpg\",\"content-moderation-groun'
        rb'dtruth\":{\"ModerationLabels\":[{\"Name\":\"Violence\"}]}}","s3://tuning/a.jpg",["Viol'
        rb'ence"],true,false],["{\"line-number\":2,\"errors\":[{\"code\":\"ERROR_INVALID_JSON_LIN'
        rb'E\",\"message\":\"The JSON line is not valid JSON\"}]}",null,[],false,true]]}}'),
    "dataset.status": (
        b'{"kind":"dataset.status","id":"00000000-0000-4000-8000-000000000031","node":"node-a","'
        b'payload":{"dataset":{"project":"moderation-tuning","type":"TRAIN","created_ms":1718000'
        b'600000},"status":"CREATE_COMPLETE","message":"The dataset was created","code":"SUCCESS'
        b'","at_ms":1718000600500}}'),
    "dataset.distribute": (
        b'{"kind":"dataset.distribute","id":"00000000-0000-4000-8000-000000000032","node":"node-'
        b'a","payload":{"train":{"project":"moderation-tuning","type":"TRAIN","created_ms":17180'
        b'00600000},"test":{"project":"moderation-tuning","type":"TEST","created_ms":17180007000'
        b'00},"at_ms":1718000800000}}'),
    "dataset.delete": (
        b'{"kind":"dataset.delete","id":"00000000-0000-4000-8000-000000000033","node":"node-a","'
        b'payload":{"dataset":{"project":"moderation-tuning","type":"TEST","created_ms":17180007'
        b'00000},"at_ms":1718000900000}}'),
}

# The project version and policy commands (streamproc/projects/versions_commands.py), typed
# from their first release.
VERSION_LOG: dict[str, bytes] = {
    "version.create": (
        b'{"kind":"version.create","id":"00000000-0000-4000-8000-000000000034","node":"node-a","'
        b'payload":{"version":{"project":"moderation-tuning","project_ms":1718000500250,"name":"'
        b'adapter-1","created_ms":1718001000000,"feature":"CONTENT_MODERATION","status":"TRAININ'
        b'G_IN_PROGRESS","message":"The model is being trained","updated_ms":1718001000000,"node'
        b'":"node-a","spec":{"OutputConfig":{"S3Bucket":"tuning-out","S3KeyPrefix":"adapters/"},'
        b'"FeatureConfig":{"ContentModeration":{"ConfidenceThreshold":50.0}}},"result":{},"min_u'
        b'nits":null,"max_units":null},"copy_from":null,"tags":{"team":"trust"}}}'),
    "version.status": (
        b'{"kind":"version.status","id":"00000000-0000-4000-8000-000000000035","node":"node-a","'
        b'payload":{"version":{"project":"moderation-tuning","name":"adapter-1","created_ms":171'
        b'8001000000},"status":"TRAINING_COMPLETED","message":"The model is trained","at_ms":171'
        b'8001060000,"result":{"EvaluationResult":{"F1Score":0.9}},"model":"eyJmb3JtYXQiOiJzdHJl'
        b'YW1wcm9jLWhlYWRzIn0=","units":null}}'),
    "policy.put": (
        b'{"kind":"policy.put","id":"00000000-0000-4000-8000-000000000036","node":"node-a","payl'
        b'oad":{"policy":{"project":"moderation-tuning","name":"share","revision":"0f1e2d3c4b5a6'
        b'9788796a5b4c3d2e1f0","document":"{\\"Version\\":\\"2012-10-17\\",\\"Statement\\":[]}","creat'
        b'ed_ms":1718001100000,"updated_ms":1718001100000},"project_ms":1718000500250,"expected"'
        b':null}}'),
    "policy.delete": (
        b'{"kind":"policy.delete","id":"00000000-0000-4000-8000-000000000037","node":"node-a","p'
        b'ayload":{"project":"moderation-tuning","project_ms":1718000500250,"name":"share","revi'
        b'sion":"0f1e2d3c4b5a69788796a5b4c3d2e1f0"}}'),
    "version.attempt": (
        b'{"kind":"version.attempt","id":"00000000-0000-4000-8000-000000000040","node":"node-a","p'
        b'ayload":{"version":{"project":"moderation-tuning","name":"adapter-1","created_ms":171800'
        b'1000000},"node":"node-a","at_ms":1718001000500,"stale_ms":2100000,"max_attempts":3,"stop'
        b'ped":false}}'),
    "version.model": (
        b'{"kind":"version.model","id":"00000000-0000-4000-8000-000000000039","node":"node-a","p'
        b'ayload":{"version":{"project":"moderation-tuning","name":"adapter-1","created_ms":1718'
        b'001000000},"offset":0,"data":"eyJmb3JtYXQiOg=="}}'),
    "version.delete": (
        b'{"kind":"version.delete","id":"00000000-0000-4000-8000-000000000038","node":"node-a","'
        b'payload":{"version":{"project":"moderation-tuning","name":"adapter-1","created_ms":171'
        b'8001000000},"at_ms":1718001200000}}'),

}

# Two more records of the untyped code: a job.start written before retention_s existed (its
# token never expires), with a versioned video and a channel; a job.finish of whatever launch.
OLD_JOB_EXTRA: dict[str, bytes] = {
    "job.start": (
        b'{"kind":"job.start","id":"00000000-0000-4000-8000-000000000025","node":"node-a","paylo'
        b'ad":{"job_id":"1f5e7d9b3a2c4e6f8d0b1c3e5a7f9b2d","api":"FaceDetection","token":null,"r'
        b'equest":{"Video":{"S3Object":{"Bucket":"videos","Name":"door/2024-06-11.mp4","Version"'
        b':"v2"}},"NotificationChannel":{"SNSTopicArn":"arn:aws:sns:eu-west-1:123456789012:done"'
        b',"RoleArn":"arn:aws:iam::123456789012:role/r"},"FaceAttributes":"DEFAULT"},"created":1'
        b'718000300.5,"max_jobs":20}}'),
    "job.finish": (
        b'{"kind":"job.finish","id":"00000000-0000-4000-8000-000000000026","node":"node-a","payl'
        b'oad":{"job_id":"1f5e7d9b3a2c4e6f8d0b1c3e5a7f9b2d","attempt":null,"state":"FAILED","mes'
        b'sage":"analyzer stage failed 6 times within 60 s: RuntimeError","finished":1718000400.'
        b'0}}'),
}
OLD: dict[str, bytes] = {**OLD_LOG, **OLD_JOB_LOG, **PROJECT_LOG,
                         **DATASET_LOG, **VERSION_LOG}  # every kind once
RECORDS = {**OLD, **{f"older {k}": b for k, b in OLD_JOB_EXTRA.items()}}
JOB, OTHER_JOB = "0e4d6c8a2f1b3d5e7c9a0b2d4f6e8a1c", "1f5e7d9b3a2c4e6f8d0b1c3e5a7f9b2d"
SEARCH_REQUEST = {"Video": {"S3Object": {"Bucket": "videos", "Name": "door/2024-06-10.mp4"}},
                  "JobTag": "door", "CollectionId": "lobby", "FaceMatchThreshold": 80.0}
METADATA = {"Codec": "h264", "DurationMillis": 12000, "Format": "QuickTime / MOV",
            "FrameRate": 25.0, "FrameHeight": 720, "FrameWidth": 1280, "ColorRange": "LIMITED"}
RESULT = {"Timestamp": 1200, "Person": {"Index": 0}}

SPEC = ProcessorSpec(
    name="door-cam", arn=f"{ARN}:streamprocessor/door-cam",
    input_arn="rtsp://10.0.0.5:8554/door", output_arn="kafka://127.0.0.1:9092/door-matches",
    collection_id="lobby", threshold=85.0,
    role_arn="arn:aws:iam::123456789012:role/rekognition-stream", created=1718000100.5,
    regions=regions_from_wire([{"BoundingBox": {"Width": 0.5, "Height": 0.5, "Left": 0.25,
                                                "Top": 0.25}}]),
    data_sharing=False)
INFO = CollectionInfo("lobby", LOBBY, 1718000000.25, "test_mfn", 4, "7.0", RECOGNIZER)
TUNING = Project("moderation-tuning", f"{ARN}:project/moderation-tuning/1718000500250",
                 1718000500250, Feature.CONTENT_MODERATION, AutoUpdate.ENABLED)
TUNING_TRAIN = DatasetRef("moderation-tuning", DatasetType.TRAIN, 1718000600000)
TUNING_TEST = DatasetRef("moderation-tuning", DatasetType.TEST, 1718000700000)
VIOLENT = Entry('{"source-ref":"s3://tuning/a.jpg","content-moderation-groundtruth":'
                '{"ModerationLabels":[{"Name":"Violence"}]}}', "s3://tuning/a.jpg",
                ("Violence",), True, False)
NOT_JSON = Entry('{"line-number":2,"errors":[{"code":"ERROR_INVALID_JSON_LINE","message":'
                 '"The JSON line is not valid JSON"}]}', None, (), False, True)
ADAPTER = VersionRef("moderation-tuning", "adapter-1", 1718001000000)
TUNED = Version(ADAPTER, 1718000500250, Feature.CONTENT_MODERATION,
                VersionStatus.TRAINING_IN_PROGRESS, "The model is being trained",
                1718001000000, "node-a",
                {"OutputConfig": {"S3Bucket": "tuning-out", "S3KeyPrefix": "adapters/"},
                 "FeatureConfig": {"ContentModeration": {"ConfidenceThreshold": 50.0}}}, {})
HEADS = b'{"format":"streamproc-heads"}'
SHARE = StoredPolicy("moderation-tuning", "share", "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                     '{"Version":"2012-10-17","Statement":[]}', 1718001100000, 1718001100000)

# kind -> the typed command its old record must decode to (faces.add: _check_faces).
EXPECTED: dict[str, Command[Any]] = {
    "collection.create": CreateCollection(INFO, {"team": "security"}),
    "collection.delete": DeleteCollection("old-lobby"),
    "faces.delete": DeleteFaces("lobby", [F2, NO_FACE]),
    "user.create": CreateUser("lobby", "alice", "create-alice-1"),
    "user.delete": DeleteUser("lobby", "bob", None),
    "user.associate": AssociateFaces("lobby", "alice", [F1], 75.0, "assoc-1"),
    "user.disassociate": DisassociateFaces("lobby", "alice", [F1], None),
    "tags.set": SetTags(LOBBY, {"env": "prod", "owner": "ops"}),
    "tags.remove": RemoveTags(LOBBY, ["owner"]),
    "processor.create": CreateProcessor(SPEC, {"streamproc:emit": "track"}),
    "processor.delete": DeleteProcessor("old-cam"),
    "processor.start": StartProcessor("door-cam", SID),
    "processor.stop": StopProcessor("door-cam"),
    "processor.update": UpdateProcessor("door-cam", (), True),
    "processor.claim": ClaimProcessor("door-cam", SID),
    "processor.release": ReleaseProcessor("door-cam", SID),
    "processor.report": ReportProcessor("door-cam", SID, Report.FAILED,
                                        "Stream unavailable: connection refused"),
    "placement.epoch": AdvanceEpoch(3),
    "ledger.barrier": Barrier(),
    "job.start": StartJob(JOB, "FaceSearch", "search-door-1", SEARCH_REQUEST, 1718000200.75,
                          20, 604800.0),
    "job.launch": LaunchJob(JOB, 0, "node-a", ""),
    "job.metadata": SetJobMetadata(JOB, 1, METADATA),
    "job.results": AddJobResults(JOB, 1, (ResultRow(0, 1200, 0, RESULT),)),
    "job.finish": FinishJob(JOB, 1, "SUCCEEDED", "", 1718000260.0),
    "project.create": CreateProject(TUNING, {"team": "trust"}),
    "project.delete": DeleteProject("old-shelves", 1718000400000),
    "dataset.create": CreateDataset(Dataset(
        TUNING_TRAIN.key, 1718000500250, 1718000600000, 1718000600000,
        DatasetStatus.CREATE_IN_PROGRESS, "", StatusCode.SUCCESS), None, {"team": "trust"}),
    "dataset.entries": AddDatasetEntries(TUNING_TRAIN, (VIOLENT, NOT_JSON)),
    "dataset.status": SetDatasetStatus(TUNING_TRAIN, DatasetStatus.CREATE_COMPLETE,
                                       "The dataset was created", StatusCode.SUCCESS,
                                       1718000600500),
    "dataset.distribute": DistributeEntries(TUNING_TRAIN, TUNING_TEST, 1718000800000),
    "dataset.delete": DeleteDataset(TUNING_TEST, 1718000900000),
    "version.create": CreateVersion(TUNED, None, {"team": "trust"}),
    "version.status": SetVersionStatus(ADAPTER, VersionStatus.TRAINING_COMPLETED,
                                       "The model is trained", 1718001060000,
                                       {"EvaluationResult": {"F1Score": 0.9}}, HEADS),
    "version.delete": DeleteVersion(ADAPTER, 1718001200000),
    "version.model": AddVersionModel(ADAPTER, 0, b'{"format":'),
    "version.attempt": TrainingAttempt(ADAPTER, "node-a", 1718001000500, 2100000, 3),
    "policy.put": PutPolicy(SHARE, 1718000500250, None),
    "policy.delete": DeletePolicy("moderation-tuning", 1718000500250, "share",
                                  SHARE.revision),
}


@dataclass
class Fresh:
    """A fresh daemon's appliers (registered by the daemon's own builders) and its state."""

    appliers: Appliers
    storage: Storage
    domain: Domain
    config: Config
    played: set[str] = field(default_factory=set)  # the kinds of the old records applied
    offset: int = 0

    def apply(self, record: bytes) -> Any:
        """Apply a record as a node following the cluster's log does (another node's)."""
        envelope = self.appliers.decode(record)
        self.offset += 1
        return self.appliers.apply(envelope.command, Applied(envelope.node, self.offset, False))

    def play(self, kind: str, newer: bool = False, records: dict[str, bytes] = OLD) -> Any:
        """Apply the old record of ``kind`` (with a newer node's extra key: ``newer``)."""
        self.played.add(kind)
        return self.apply(_newer(records[kind]) if newer else records[kind])

    def setup(self, command: Command[Any]) -> None:
        """A command of today's code, for the state an old record needs (node-a's too)."""
        self.apply(encode(command, f"setup-{self.offset}", "node-a"))

    def epoch(self) -> int:
        """The placement epoch this node applied."""
        cluster = self.config.cluster
        return ClusterLog(self.storage.db, cluster.state_topic, cluster.id).epoch()


def _config() -> Config:
    return load_config(None, {"cluster.bootstrap": "127.0.0.1:1",
                              "outputs.clusters": ["127.0.0.1:9092"],
                              "server.region": "eu-west-1",
                              "server.account_id": "123456789012"})


def _engine() -> Any:
    """What the builders read of a face engine (no models are loaded)."""
    scale = SimilarityScale([CalibrationKnot(cosine=-1, similarity=0),
                             CalibrationKnot(cosine=1, similarity=100)])
    return SimpleNamespace(identity=MODEL, scale=scale, face_model_version="7.0")


def _plane() -> Any:
    """What build_jobs reads of a data plane: the face-search stage it feeds videos to."""
    stage = SimpleNamespace(add_background=lambda feed, share: None)
    return SimpleNamespace(stages={FACE_SEARCH: stage})


def _moderation() -> Any:
    """What build_jobs reads of the moderation pack and stage (no model is loaded)."""
    return Moderation(SimpleNamespace(model_version="7.0-open_nsfw"),
                      SimpleNamespace(add_background=lambda feed, share: None))


@contextmanager
def _fresh(data_dir: Path) -> Iterator[Fresh]:
    """Every rule registered as ``Daemon.start`` does: cluster node, domain, then jobs."""
    config = _config()
    storage = open_storage(config, data_dir)
    appliers, registry = Appliers(), CollectorRegistry()
    ledger = LocalLedger(appliers)
    ClusterNode(config, appliers, storage.db, "node-b", "http://b", list,  # epoch, barrier
                registry, lambda: None)
    domain = build_domain(config, _engine(), storage, ledger, appliers, Mailbox(), registry)
    build_jobs(config, "7.0", storage.db, domain.searcher, _plane(), SimpleNamespace(),
               ObjectStore(config.objects), registry, data_dir, ledger, appliers, JobHooks(),
               _moderation())
    try:
        yield Fresh(appliers, storage, domain, config)
    finally:
        storage.builder.stop(2.0)
        storage.db.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Fresh]:
    """A fresh daemon's state, to apply commands to."""
    with _fresh(tmp_path) as made:
        yield made


@pytest.fixture(scope="module")
def appliers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliers]:
    """A fresh daemon's appliers, to decode with (nothing is applied: shared by the module)."""
    with _fresh(tmp_path_factory.mktemp("decode")) as made:
        yield made.appliers


def _payload(record: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(record)
    return parsed


def _newer(record: bytes) -> bytes:
    """The record as a newer node might write it: one more (optional) payload key."""
    parsed = _payload(record)
    parsed["payload"]["added_later"] = {"by": "a newer node", "values": [1, None]}
    return json.dumps(parsed, separators=(",", ":")).encode()


# ---- what the log holds -------------------------------------------------------------------------
def test_the_daemon_registers_exactly_the_kinds_of_the_old_log(appliers: Appliers) -> None:
    """A kind the daemon applies gets its old-bytes case here; a kind it lost is a failure."""
    assert appliers.kinds() == set(OLD) == set(EXPECTED) | {"faces.add"}
    assert all(_payload(b)["kind"] == kind for kind, b in OLD.items())
    assert set(OLD_JOB_EXTRA) <= set(OLD_JOB_LOG)


def test_kinds_are_what_was_registered() -> None:
    appliers = Appliers()
    assert appliers.kinds() == frozenset()
    appliers.register(Barrier, lambda command, where: None)
    appliers.register(AdvanceEpoch, lambda command, where: None)
    assert appliers.kinds() == {"ledger.barrier", "placement.epoch"}
    with pytest.raises(ValueError, match="two appliers for ledger.barrier"):
        appliers.register(Barrier, lambda command, where: None)
    assert appliers.kinds() == {"ledger.barrier", "placement.epoch"}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_an_old_record_decodes_to_its_typed_command(appliers: Appliers, kind: str) -> None:
    envelope = appliers.decode(OLD[kind])
    assert type(envelope.command) is type(EXPECTED[kind])
    assert envelope.command == EXPECTED[kind]
    assert envelope.node == "node-a" and envelope.command_id == _payload(OLD[kind])["id"]


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_decoded_command_writes_the_same_bytes_again(appliers: Appliers, name: str) -> None:
    """Byte for byte (key order too): a typed node writes what an untyped one did."""
    record = RECORDS[name]
    envelope = appliers.decode(record)
    assert encode(envelope.command, envelope.command_id, envelope.node) == record


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_command_reads_every_key_it_writes(kind: str) -> None:
    """A key the payload writes but from_payload drops would be lost on every other node."""
    command = EXPECTED[kind]
    assert set(command.payload()) <= type(command).payload_keys()


def test_faces_decode_with_their_exact_vectors(appliers: Appliers) -> None:
    command = appliers.decode(OLD_LOG["faces.add"]).command
    assert isinstance(command, AddFaces) and command.collection_id == "lobby"
    first, second = command.faces
    assert (first.face_id, first.image_id, first.external_image_id, first.confidence) == (
        F1, "c5e0b8a2-7d14-5e39-a6f1-2b8c4d9e0f73", "alice-1.jpg", 99.8731)
    assert first.bbox == {"Width": 0.21875, "Height": 0.40625, "Left": 0.390625, "Top": 0.15625}
    assert first.embedding.dtype == np.float32
    assert first.embedding.tolist() == [0.5, 0.5, 0.5, 0.5]
    assert second.external_image_id is None
    assert second.embedding.tolist() == np.array([0.6, 0.48, 0.48, 0.42], np.float32).tolist()


def test_older_job_records_keep_their_absent_and_null_fields(appliers: Appliers) -> None:
    start = appliers.decode(OLD_JOB_EXTRA["job.start"]).command
    assert isinstance(start, StartJob) and start.retention_s is None  # absent: never expires
    finish = appliers.decode(OLD_JOB_EXTRA["job.finish"]).command
    assert isinstance(finish, FinishJob) and finish.attempt is None  # whatever launch


# ---- a newer node's records -----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_key_this_node_does_not_know_changes_nothing(appliers: Appliers, name: str) -> None:
    """In a rolling upgrade an older node applies a newer node's command as it always did.

    The whole-log replay below applies every kind this way too.
    """
    record = RECORDS[name]
    envelope, plain = appliers.decode(_newer(record)), appliers.decode(record).command
    assert type(envelope.command) is type(plain)
    if not isinstance(plain, AddFaces):  # numpy vectors: the bytes below compare those
        assert envelope.command == plain
    assert encode(envelope.command, envelope.command_id, envelope.node) == record  # dropped


def test_the_ignored_keys_are_named_in_a_debug_line(appliers: Appliers,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    parsed = _payload(OLD_LOG["placement.epoch"])
    parsed["payload"].update(zeta=1, alpha=2)
    with caplog.at_level(logging.DEBUG, logger="streamproc.ledger"):
        assert appliers.decode(json.dumps(parsed).encode()).command == AdvanceEpoch(3)
        appliers.decode(OLD_LOG["placement.epoch"])
    lines = [r.getMessage() for r in caplog.records if r.name == "streamproc.ledger"]
    assert lines == ["placement.epoch: ignoring payload keys this node does not read: alpha, zeta"]


def test_an_unknown_kind_decodes_and_applying_it_is_refused(fresh: Fresh) -> None:
    newer = b'{"kind":"labels.add","id":"i","node":"node-c","payload":{"label":"cat"}}'
    envelope = fresh.appliers.decode(newer)
    assert envelope.command == Unregistered("labels.add", {"label": "cat"})
    with pytest.raises(UnknownCommand, match="'labels.add'"):
        fresh.appliers.apply(envelope.command, Applied("node-c", 9, False))


@pytest.mark.parametrize(("kind", "key"), [
    ("collection.create", "tags"), ("collection.delete", "collection_id"), ("faces.add", "faces"),
    ("faces.delete", "face_ids"), ("user.create", "user_id"), ("user.associate", "face_ids"),
    ("tags.set", "key"), ("tags.remove", "keys"), ("processor.create", "spec"),
    ("processor.start", "session_id"), ("processor.update", "changes"),
    ("processor.report", "event"), ("placement.epoch", "from"), ("job.start", "max_jobs"),
    ("job.launch", "after"), ("job.metadata", "metadata"), ("job.results", "rows"),
    ("job.finish", "state"), ("project.create", "project"), ("project.delete", "created_ms"),
    ("dataset.create", "dataset"), ("dataset.entries", "entries"), ("dataset.status", "status"),
    ("dataset.distribute", "test"), ("dataset.delete", "at_ms"), ("version.create", "version"),
    ("version.status", "model"), ("version.delete", "at_ms"), ("version.model", "offset"),
    ("version.attempt", "stale_ms"), ("version.attempt", "stopped"),
    ("policy.put", "expected"), ("policy.delete", "revision")])
def test_a_payload_missing_a_key_is_not_a_command(appliers: Appliers, kind: str, key: str) -> None:
    """Also with a newer node's extra key beside it: dropping unknown keys adds none."""
    record = _payload(_newer(OLD[kind]))
    del record["payload"][key]
    with pytest.raises(ValueError, match=f"^a {kind} command whose payload does not fit it"):
        appliers.decode(json.dumps(record).encode())


@pytest.mark.parametrize(("kind", "key", "value"), [
    ("processor.report", "event", "exploded"), ("processor.update", "changes", {"name": "x"}),
    ("placement.epoch", "from", "three"), ("project.create", "project", {"name": "x"}),
    ("project.create", "project", {**_payload(PROJECT_LOG["project.create"])["payload"][
        "project"], "feature": "LABELS"}), ("dataset.status", "status", "DONE"),
    ("dataset.entries", "entries", [["{}", None, [], False]]),
    ("dataset.delete", "dataset", {"project": "p", "type": "VALIDATION", "created_ms": 1}),
    ("version.status", "status", "TRAINED"), ("version.status", "model", "not base64!"),
    ("version.delete", "version", {"project": "p", "name": "v"}),
    ("version.attempt", "stopped", "no"), ("version.attempt", "max_attempts", "three")])
def test_a_payload_value_that_does_not_fit_is_not_a_command(appliers: Appliers, kind: str, key: str,
                                                            value: object) -> None:
    record = _payload(OLD[kind])
    record["payload"][key] = value
    with pytest.raises(ValueError, match=f"^a {kind} command whose payload does not fit it"):
        appliers.decode(json.dumps(record).encode())


def test_the_typed_face_requests_write_the_stored_form_old_starts_carry() -> None:
    """A Start parsed now stores (and compares) exactly what the untyped code stored."""
    from streamproc.jobs.kinds.faces import FaceDetectionRequest, FaceSearchRequest
    from streamproc.jobs.request import NotificationChannel
    from streamproc.storage.objects import ObjectRef

    search = FaceSearchRequest(ObjectRef("videos", "door/2024-06-10.mp4"), "door",
                               collection_id="lobby")
    assert json.dumps(search.stored()) == json.dumps(SEARCH_REQUEST)  # same keys, same order
    assert FaceSearchRequest.from_stored(SEARCH_REQUEST) == search
    older = _payload(OLD_JOB_EXTRA["job.start"])["payload"]["request"]
    detection = FaceDetectionRequest(
        ObjectRef("videos", "door/2024-06-11.mp4", "v2"), None, NotificationChannel(
            "arn:aws:sns:eu-west-1:123456789012:done", "arn:aws:iam::123456789012:role/r"))
    assert json.dumps(detection.stored()) == json.dumps(older)
    assert FaceDetectionRequest.from_stored(older) == detection


# ---- a whole old log, applied step by step ------------------------------------------------------
Play = Callable[[str], Any]


def _faces(fresh: Fresh) -> list[tuple[str, str | None]]:
    faces, _ = fresh.domain.collections.list_faces("lobby", None, None, None, None)
    return [(f.face_id, f.user_id) for f in faces]


def _users(fresh: Fresh) -> list[tuple[str, int]]:
    users, _ = fresh.domain.users.list_users("lobby", None, None)
    return [(u.user_id, u.face_count) for u in users]


def _collection_steps(fresh: Fresh, play: Play) -> None:
    assert play("collection.create") == INFO
    assert fresh.storage.collections.get("lobby") == INFO
    assert fresh.domain.tags.list(LOBBY) == {"team": "security"}
    assert [f.face_id for f in play("faces.add")] == [F1, F2]
    assert _faces(fresh) == [(F1, None), (F2, None)]
    play("user.create")
    assert _users(fresh) == [("alice", 0)]
    play("user.associate")
    assert (_faces(fresh), _users(fresh)) == ([(F1, "alice"), (F2, None)], [("alice", 1)])
    play("user.disassociate")
    assert (_faces(fresh), _users(fresh)) == ([(F1, None), (F2, None)], [("alice", 0)])
    deleted, missing, kept = play("faces.delete")
    assert (list(deleted), list(missing), list(kept)) == ([F2], [NO_FACE], [])
    assert _faces(fresh) == [(F1, None)]


def _tag_and_delete_steps(fresh: Fresh, play: Play) -> None:
    play("tags.set")
    assert fresh.domain.tags.list(LOBBY) == {"team": "security", "env": "prod", "owner": "ops"}
    play("tags.remove")
    assert fresh.domain.tags.list(LOBBY) == {"team": "security", "env": "prod"}
    fresh.setup(CreateUser("lobby", "bob"))
    fresh.setup(AssociateFaces("lobby", "bob", [F1]))
    assert (_faces(fresh), _users(fresh)) == ([(F1, "bob")], [("alice", 0), ("bob", 1)])
    play("user.delete")
    assert (_faces(fresh), _users(fresh)) == ([(F1, None)], [("alice", 0)])  # its face stays
    old = dataclasses.replace(INFO, collection_id="old-lobby", arn=f"{ARN}:collection/old-lobby")
    fresh.setup(CreateCollection(old, {"gone": "soon"}))
    assert fresh.storage.collections.get("old-lobby") == old
    play("collection.delete")
    assert fresh.storage.collections.get("old-lobby") is None
    assert fresh.storage.tags.get(old.arn) == {}
    assert fresh.storage.collections.list_ids() == ["lobby"]


def _processor(fresh: Fresh) -> tuple[ProcessorSpec, ProcessorStatus, str, str, Desired]:
    """(spec, status, message, owner, desired) of door-cam, as the registry holds it."""
    entry = fresh.domain.registry.require("door-cam")
    return entry.spec, entry.state.status, entry.state.message, entry.owner, entry.desired


def _stored_processor(fresh: Fresh) -> tuple[str, str, str]:
    """(desired, session id, owner) of door-cam, as a restarted daemon reads them."""
    (row,) = [r for r in fresh.storage.processors.load() if r.spec["name"] == "door-cam"]
    return row.desired, row.session_id, row.owner


def _processor_steps(fresh: Fresh, play: Play) -> None:
    s, p = ProcessorStatus, _processor
    play("processor.create")
    assert p(fresh) == (SPEC, s.STOPPED, "", "", Desired.STOPPED)
    assert fresh.storage.tags.get(SPEC.arn) == {"streamproc:emit": "track"}
    play("processor.start")
    assert p(fresh)[1:] == (s.STARTING, "", "", Desired.RUNNING)
    assert fresh.domain.registry.require("door-cam").session_id == SID
    play("processor.claim")
    assert p(fresh)[3] == "node-a" and _stored_processor(fresh) == ("RUNNING", SID, "node-a")
    play("processor.report")
    assert p(fresh)[1:] == (s.FAILED, "Stream unavailable: connection refused", "node-a",
                            Desired.STOPPED)
    assert _stored_processor(fresh) == ("STOPPED", SID, "node-a")
    play("processor.release")
    assert p(fresh)[3] == "" and _stored_processor(fresh)[2] == ""
    play("processor.update")
    updated = dataclasses.replace(SPEC, regions=(), data_sharing=True)
    assert p(fresh)[0] == updated
    assert fresh.storage.processors.load()[0].spec == updated.to_dict()
    play("processor.start")  # the same Start again: FAILED may start
    play("processor.stop")
    assert p(fresh)[1:] == (s.STOPPING, "", "", Desired.STOPPED)
    old = dataclasses.replace(SPEC, name="old-cam", arn=f"{ARN}:streamprocessor/old-cam",
                              input_arn="rtsp://10.0.0.6:8554/old",
                              output_arn="kafka://127.0.0.1:9092/old-matches")
    fresh.setup(CreateProcessor(old, {"gone": "soon"}))
    play("processor.delete")
    assert fresh.domain.registry.get("old-cam") is None
    assert [r.spec["name"] for r in fresh.storage.processors.load()] == ["door-cam"]
    assert fresh.storage.tags.get(old.arn) == {}


def _cluster_steps(fresh: Fresh, play: Play) -> None:
    for epoch in range(3):
        fresh.setup(AdvanceEpoch(epoch))
    assert fresh.epoch() == 3
    play("placement.epoch")  # from 3
    assert fresh.epoch() == 4
    play("placement.epoch")  # a repeat (another node asked too): no second move
    assert fresh.epoch() == 4
    assert play("ledger.barrier") is None


def _job_steps(fresh: Fresh, play: Play, newer: bool) -> None:
    store = JobStore(fresh.storage.db)

    def job(job_id: str = JOB) -> StoredJob:
        found = store.get(job_id)
        assert found is not None
        return found

    def progress() -> tuple[str, int, str, float | None]:
        found = job()
        return found.state, found.attempt, found.node, found.finished

    assert play("job.start") == JOB
    assert progress() == ("QUEUED", 0, "", None)
    assert (job().api, job().token, job().request, job().created) == (
        "FaceSearch", "search-door-1", SEARCH_REQUEST, 1718000200.75)
    assert play("job.launch") == 1
    assert progress() == ("RUNNING", 1, "node-a", None)
    play("job.metadata")
    assert job().video_metadata == METADATA
    assert play("job.results") is True
    assert store.results(JOB, ResultOrder.PERSON, 0, 10) == [RESULT]
    assert play("job.finish") is True
    assert progress() == ("SUCCEEDED", 1, "node-a", 1718000260.0)
    assert fresh.play("job.start", newer, OLD_JOB_EXTRA) == OTHER_JOB
    assert job(OTHER_JOB).state == "QUEUED"
    assert fresh.play("job.finish", newer, OLD_JOB_EXTRA) is True
    other = job(OTHER_JOB)
    assert (other.state, other.status_message, other.finished) == (
        "FAILED", "analyzer stage failed 6 times within 60 s: RuntimeError", 1718000400.0)


def _project_steps(fresh: Fresh, play: Play) -> None:
    assert play("project.create") == TUNING
    assert fresh.domain.projects.get("moderation-tuning") == TUNING
    assert fresh.storage.tags.get(TUNING.arn) == {"team": "trust"}
    old = Project("old-shelves", f"{ARN}:project/old-shelves/1718000400000", 1718000400000,
                  Feature.CUSTOM_LABELS, None)
    fresh.setup(CreateProject(old, {"gone": "soon"}))
    play("project.delete")
    assert fresh.domain.projects.get("old-shelves") is None
    assert fresh.storage.tags.get(old.arn) == {}
    assert [p.name for p in fresh.storage.projects.all()] == ["moderation-tuning"]


def _dataset_steps(fresh: Fresh, play: Play) -> None:
    """After the project steps: the TRAIN dataset of moderation-tuning is made and split."""
    store = fresh.storage.datasets
    created = play("dataset.create")
    assert created.status is DatasetStatus.CREATE_IN_PROGRESS
    train_arn = f"{ARN}:project/moderation-tuning/dataset/train/1718000600000"
    assert fresh.domain.tags.list(train_arn) == {"team": "trust"}
    assert play("dataset.entries") == 2
    more = tuple(dataclasses.replace(VIOLENT, source_ref=f"s3://tuning/{n}.jpg",
                                     line=f'{{"source-ref":"s3://tuning/{n}.jpg"}}')
                 for n in "bcd")
    fresh.setup(AddDatasetEntries(TUNING_TRAIN, more))
    done = play("dataset.status")
    assert (done.status, done.updated_ms) == (DatasetStatus.CREATE_COMPLETE, 1718000600500)
    assert store.counts("moderation-tuning", "TRAIN") == (4, 5, 1, 1)
    fresh.setup(CreateDataset(Dataset(TUNING_TEST.key, 1718000500250, 1718000700000,
                                      1718000700000, DatasetStatus.CREATE_COMPLETE, "",
                                      StatusCode.SUCCESS), None, {"gone": "soon"}))
    test_arn = f"{ARN}:project/moderation-tuning/dataset/test/1718000700000"
    assert fresh.storage.tags.get(test_arn) == {"gone": "soon"}
    assert play("dataset.distribute") == 1  # a fifth of 4, rounded; the error line stays
    assert store.counts("moderation-tuning", "TRAIN")[1:] == (4, 1, 1)
    assert store.counts("moderation-tuning", "TEST")[:2] == (1, 1)
    play("dataset.delete")
    assert [d.type for d in store.of_project("moderation-tuning")] == ["TRAIN"]
    assert store.counts("moderation-tuning", "TEST") == (0, 0, 0, 0)
    assert fresh.storage.tags.get(test_arn) == {}


def _version_steps(fresh: Fresh, play: Play) -> None:
    """After the dataset steps: an adapter of moderation-tuning trains, a policy comes and goes."""
    store = fresh.storage.versions
    assert play("version.create") == TUNED
    arn = f"{ARN}:project/moderation-tuning/version/adapter-1/1718001000000"
    assert fresh.storage.tags.get(arn) == {"team": "trust"}
    started = play("version.attempt")
    assert (started.attempts, started.stale_ms, started.updated_ms) == (1, 2100000,
                                                                        1718001000500)
    assert play("version.model") == 10
    assert store.model("moderation-tuning", "adapter-1") == b'{"format":'
    done = play("version.status")  # its own model bytes replace the part
    assert (done.status, done.result["EvaluationResult"], done.attempts) == (
        VersionStatus.TRAINING_COMPLETED, {"F1Score": 0.9}, 1)
    assert store.model("moderation-tuning", "adapter-1") == HEADS
    assert play("policy.put") == SHARE
    assert store.policies("moderation-tuning") == [SHARE]
    play("policy.delete")
    assert store.policies("moderation-tuning") == []
    play("version.delete")
    assert store.get("moderation-tuning", "adapter-1") is None
    assert fresh.storage.tags.get(arn) == {}


@pytest.mark.parametrize("newer", [False, True], ids=["as-written", "with-a-newer-key"])
def test_a_whole_old_log_replays_into_a_fresh_daemon(fresh: Fresh, newer: bool) -> None:
    """Every kind, in an order where each changes something; the state checked after each.

    ``with-a-newer-key``: every record carries a key this node does not know, and every step
    ends exactly as without it.
    """
    def play(kind: str) -> Any:
        return fresh.play(kind, newer)

    _collection_steps(fresh, play)
    _tag_and_delete_steps(fresh, play)
    _processor_steps(fresh, play)
    _cluster_steps(fresh, play)
    _job_steps(fresh, play, newer)
    _project_steps(fresh, play)
    _dataset_steps(fresh, play)
    _version_steps(fresh, play)
    assert fresh.played == fresh.appliers.kinds()  # no kind left out of the replay

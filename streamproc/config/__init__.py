"""Typed daemon configuration (pydantic, unknown keys rejected), one module per section.

Every default here is repeated, with a comment, in ``configs/streamproc.yaml``. Import from
here (``from streamproc.config import Config, load_config``), not from the section modules:
this package re-exports every public name. Layer: the bottom one; it imports nothing else
from streamproc.
"""

from streamproc.config.base import HiddenSecret, Secret, resolve_secret
from streamproc.config.calibration import CalibrationKnot, ConfidenceKnot, default_confidence
from streamproc.config.celebrities import CelebritiesConfig
from streamproc.config.cluster import ClusterConfig
from streamproc.config.inputs import (
    DEFAULT_BLOCKED_NETWORKS,
    DEFAULT_MEDIA_SCHEMES,
    MEDIA_SCHEMES,
    InputsConfig,
    OutputsConfig,
)
from streamproc.config.jobs import JobsConfig, NotificationTarget
from streamproc.config.kafka import KafkaConfig, KafkaSecurity
from streamproc.config.models import QUALITY_LEVELS, ModelsConfig, QualityLevel, default_quality
from streamproc.config.moderation import (
    LabelRule,
    ModerationConfig,
    ModerationPackConfig,
    NudeNetModel,
    OpenNsfwModel,
)
from streamproc.config.packs import ExecutionConfig, PackConfig, ProviderChoice, default_packs
from streamproc.config.processors import ProcessorsConfig, SupervisionConfig
from streamproc.config.projects import ProjectsConfig
from streamproc.config.root import Config, load_config
from streamproc.config.server import AuthConfig, ConsoleConfig, ServerConfig
from streamproc.config.storage import ImagesConfig, ObjectsConfig, StorageConfig

__all__ = [
    "AuthConfig",
    "CalibrationKnot",
    "CelebritiesConfig",
    "ClusterConfig",
    "ConfidenceKnot",
    "Config",
    "ConsoleConfig",
    "DEFAULT_BLOCKED_NETWORKS",
    "DEFAULT_MEDIA_SCHEMES",
    "ExecutionConfig",
    "HiddenSecret",
    "ImagesConfig",
    "InputsConfig",
    "JobsConfig",
    "KafkaConfig",
    "KafkaSecurity",
    "MEDIA_SCHEMES",
    "LabelRule",
    "ModelsConfig",
    "ModerationConfig",
    "ModerationPackConfig",
    "NudeNetModel",
    "OpenNsfwModel",
    "NotificationTarget",
    "ObjectsConfig",
    "OutputsConfig",
    "PackConfig",
    "ProcessorsConfig",
    "ProjectsConfig",
    "ProviderChoice",
    "QUALITY_LEVELS",
    "QualityLevel",
    "Secret",
    "ServerConfig",
    "StorageConfig",
    "SupervisionConfig",
    "default_confidence",
    "default_packs",
    "default_quality",
    "load_config",
    "resolve_secret",
]

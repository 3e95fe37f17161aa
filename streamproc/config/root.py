"""The whole configuration, its cross-section checks, and loading it from YAML and flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from streamproc.config.base import Section
from streamproc.config.celebrities import CelebritiesConfig
from streamproc.config.cluster import ClusterConfig
from streamproc.config.inputs import InputsConfig, OutputsConfig
from streamproc.config.jobs import JobsConfig
from streamproc.config.kafka import KafkaConfig
from streamproc.config.models import ModelsConfig, default_quality
from streamproc.config.moderation import ModerationConfig
from streamproc.config.packs import default_packs
from streamproc.config.processors import ProcessorsConfig, SupervisionConfig
from streamproc.config.projects import ProjectsConfig
from streamproc.config.server import AuthConfig, ConsoleConfig, ServerConfig
from streamproc.config.storage import ImagesConfig, ObjectsConfig, StorageConfig


class Config(Section):
    """The whole daemon configuration."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, raw: Any) -> Any:
        """``images.s3_local_root`` (before objects were shared with videos) still works."""
        if not isinstance(raw, dict) or not isinstance(raw.get("images"), dict):
            return raw
        images = dict(raw["images"])
        if "s3_local_root" not in images:
            return raw
        root = images.pop("s3_local_root")
        objects = dict(raw.get("objects") or {})
        if objects.get("local_root") not in (None, root):
            msg = "images.s3_local_root and objects.local_root disagree; keep objects.local_root"
            raise ValueError(msg)
        objects["local_root"] = root
        return {**raw, "images": images, "objects": objects}

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.auth.enabled and not (self.auth.access_keys or self.auth.access_keys_file):
            msg = "auth.enabled needs auth.access_keys or auth.access_keys_file"
            raise ValueError(msg)
        if self.auth.policy_file is not None and not self.auth.enabled:
            msg = "auth.policy_file needs auth.enabled: true (policies apply to access keys)"
            raise ValueError(msg)
        cluster = self.cluster
        if cluster.bootstrap and cluster.fence_after_s >= cluster.session_timeout_s:
            msg = "cluster.fence_after_s must be under cluster.session_timeout_s (or 0)"
            raise ValueError(msg)
        if (self.server.tls_certfile is None) != (self.server.tls_keyfile is None):
            msg = "server.tls_certfile and server.tls_keyfile go together"
            raise ValueError(msg)
        return self

    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    console: ConsoleConfig = ConsoleConfig()
    kafka: KafkaConfig = KafkaConfig()
    processors: ProcessorsConfig = ProcessorsConfig()
    inputs: InputsConfig = InputsConfig()
    outputs: OutputsConfig = OutputsConfig()
    models: ModelsConfig = ModelsConfig()
    moderation: ModerationConfig = ModerationConfig()
    images: ImagesConfig = ImagesConfig()
    objects: ObjectsConfig = ObjectsConfig()
    jobs: JobsConfig = JobsConfig()
    celebrities: CelebritiesConfig = CelebritiesConfig()
    storage: StorageConfig = StorageConfig()
    projects: ProjectsConfig = ProjectsConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    cluster: ClusterConfig = ClusterConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged.")
    log_format: Literal["text", "json"] = Field(
        "text", description="json = one JSON object per line, for log shippers.")


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load YAML (if given), apply dotted-key overrides (CLI flags), validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            msg = f"{path}: top level must be a mapping"
            raise ValueError(msg)
        raw = loaded or {}
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(raw, key, value)
    packs = raw.get("models", {}).get("packs")
    if packs is not None:
        # Configured packs extend the built-in ones instead of replacing them all.
        raw["models"]["packs"] = {**default_packs(), **packs}
    quality = raw.get("models", {}).get("quality")
    if quality is not None:
        # Likewise, configured levels replace only the built-in levels they name.
        raw["models"]["quality"] = {**default_quality(), **quality}
    return Config.model_validate(raw)

"""Limits on Custom Labels and adapter projects and on their datasets."""

from __future__ import annotations

from pydantic import Field

from streamproc.config.base import Section


class ProjectsConfig(Section):
    """Limits on projects and their datasets."""

    max_projects: int = Field(
        100, gt=0, description="CreateProject refuses more (LimitExceededException), "
        "whatever their feature.")
    dataset_max_entries: int = Field(
        10_000, gt=0, description="JSON lines one manifest (CreateDataset) or one "
        "UpdateDatasetEntries may hold, and entries one dataset may reach; past it the call is "
        "refused (InvalidParameterException). Datasets are read inside the call, so this bounds "
        "its time and memory.")
    dataset_max_manifest_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="The largest manifest CreateDataset reads "
        "(InvalidParameterException past it).")
    dataset_max_line_bytes: int = Field(
        64 * 1024, gt=0, le=90_000, description="A longer JSON line is an error entry "
        "(ERROR_JSON_LINE_TOO_LARGE), never held whole. At most 90,000, leaving room for "
        "the errors an entry carries (the first 5, each message cut to 300 characters, and "
        "a count of the rest); an entry that would still pass DatasetEntry's 100,000 "
        "characters (a line rewritten longer, 1e5 as 100000.0) is stored as one "
        "ERROR_JSON_LINE_TOO_LARGE entry instead.")
    dataset_max_error_fraction: float = Field(
        0.2, ge=0.0, le=1.0, description="A manifest with more of its lines in error than "
        "this ends CREATE_FAILED / UPDATE_FAILED (ERROR_TOO_MANY_RECORDS_IN_ERROR), its "
        "entries kept for ListDatasetEntries: AWS's 20% rule.")
    dataset_chunk_bytes: int = Field(
        256 * 1024, gt=0, description="Entries travel to the ledger in commands of about "
        "this many bytes of JSON lines each, and a trained model larger than this in parts of "
        "this size (the cluster's log takes records up to 1 MiB by Kafka's default).")
    dataset_stale_s: float = Field(
        600.0, gt=0, description="A dataset left CREATE_IN_PROGRESS / UPDATE_IN_PROGRESS with "
        "no entries arriving this long (its daemon stopped part-way) reads as *_FAILED, so it "
        "can be deleted or updated again. The deciding node writes it into its commands, so "
        "every node judges alike; the work's own closing status is always taken.")
    max_versions: int = Field(
        100, gt=0, description="Versions (models or adapters) one project may hold; "
        "CreateProjectVersion refuses more (LimitExceededException).")
    training_max_images: int = Field(
        10_000, gt=0, description="Images one training may use (training and test sets "
        "together); a larger version ends TRAINING_FAILED. Bounds its time and memory "
        "(~4 KB of features per image).")
    training_deadline_s: float = Field(
        1800.0, gt=0, description="A training still running this long is abandoned: "
        "TRAINING_FAILED, 'did not finish within its limit'.")
    training_min_per_class: int = Field(
        10, ge=2, description="Usable training images each label (adapter) or class "
        "(Custom Labels) needs with it and without it; fewer ends TRAINING_FAILED. "
        "Custom Labels documents 10.")
    training_batch: int = Field(
        16, gt=0, description="Images read and decoded at once by the training runner "
        "(its memory: this many decoded images, then only their features).")

"""streamproc: self-hosted, Rekognition-compatible face search and stream processors.

The packages form layers, written down in pyproject.toml ([tool.importlinter]) and checked
by tests/test_layers.py: cli, tools, daemon, cluster, api, the domain packages (processors,
collections, jobs, tags), dataplane, search, rekognition, faces and storage, supervisor and
controlloop, then the base modules (config, errors, lifecycle, metrics, redaction, ledger).
Each imports only those below it.
"""

__version__ = "0.1.0"

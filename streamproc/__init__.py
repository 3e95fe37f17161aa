"""streamproc: self-hosted, Rekognition-compatible face search and stream processors."""

__version__ = "0.1.0"

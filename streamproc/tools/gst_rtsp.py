"""Test and demo harness: a real RTSP server (GStreamer's gst-rtsp-server), also for benchmarks.

Runs under Debian's system ``python3`` (``python3-gi`` + ``gir1.2-gst-rtsp-server-1.0``),
never inside streamproc's virtual environment, so it imports nothing from streamproc.
:class:`streamproc.tools.rtspserver.RtspServer` starts and stops it.

Each time the shared media is built (first client after none), the server starts the
source command given after ``--`` (it must write a Matroska stream of one H.264 or H.265
track to stdout, e.g. a looping ``ffmpeg -re``) and packetises it as RTP; every client
sees the same live stream, as with a camera. It sends RTCP sender reports (the camera's
clock), offers RTP over TCP (interleaved) and UDP, and optionally asks for basic or digest
authentication. It prints ``ready PORT`` once listening and stops on SIGTERM/SIGINT.

Parameter sets travel in the SDP only: with ``config-interval=-1`` (in-band before every
key frame) FFmpeg 8 decoded one corrupt frame per key frame from GStreamer 1.22.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PAYLOADERS = {"h264": "rtph264pay", "h265": "rtph265pay"}


class LiveFactory(GstRtspServer.RTSPMediaFactory):
    """Builds one shared media from a fresh source process; ends it with the media."""

    def __init__(self, command: list[str], codec: str) -> None:
        super().__init__()
        self.command = command
        self.payloader = PAYLOADERS[codec]
        self.pending: subprocess.Popen[bytes] | None = None
        self.set_shared(True)
        self.connect("media-configure", self.on_configure)

    def do_create_element(self, url: GstRtsp.RTSPUrl) -> Gst.Element:  # GObject vfunc
        """A fresh source process and the pipeline that packetises its output."""
        # The source runs on the real clock even when this server's clock is faked.
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}
        proc = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env)
        self.pending = proc
        assert proc.stdout is not None  # stdout=PIPE
        fd = proc.stdout.fileno()
        return Gst.parse_launch(
            f"( fdsrc fd={fd} ! matroskademux ! {self.payloader} name=pay0 pt=96 )")

    def on_configure(self, factory: GstRtspServer.RTSPMediaFactory,
                     media: GstRtspServer.RTSPMedia) -> None:
        """Tie the source process started for this media to the media's life."""
        proc, self.pending = self.pending, None
        media.connect("unprepared", lambda _media: stop_process(proc))


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Kill a source process and close its pipe."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def add_auth(server: GstRtspServer.RTSPServer, factory: GstRtspServer.RTSPMediaFactory,
             method: str, user: str, password: str) -> None:
    """Require ``user``/``password`` by basic or digest authentication."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    if method == "basic":
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    else:
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(user, password, token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role("viewer", "media.factory.access", True)
    permissions.add_permission_for_role("viewer", "media.factory.construct", True)
    factory.set_permissions(permissions)


def main() -> None:
    """Parse arguments, serve until signalled."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/stream")
    parser.add_argument("--codec", choices=sorted(PAYLOADERS), default="h264")
    parser.add_argument("--auth", choices=["none", "basic", "digest"], default="none")
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--transports", choices=["tcp", "udp", "both"], default="both")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = LiveFactory(command, args.codec)
    lower = GstRtsp.RTSPLowerTrans
    factory.set_protocols({"tcp": lower.TCP, "udp": lower.UDP,
                           "both": lower.TCP | lower.UDP}[args.transports])
    if args.auth != "none":
        add_auth(server, factory, args.auth, args.user, args.password)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on port {args.port}")
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    parent = os.getppid()

    def orphaned() -> bool:  # whoever started us died without stopping us: end too
        if os.getppid() != parent:
            loop.quit()
        return True

    GLib.timeout_add_seconds(1, orphaned)
    print(f"ready {args.port}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()

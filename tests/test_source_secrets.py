"""Source secrets stay secret: SRT passphrases off ffmpeg's command line and out of errors.

Model-free: a real SRT listener with a passphrase (ffmpeg), the relay PyAV reads SRT
through, and the errors a failed connect raises.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

import pytest
from streams import BOTH

from streamproc.dataplane.live.relay import FfmpegRelay, concat_script
from streamproc.dataplane.live.source import SourceError, read_frames
from streamproc.tools.broker import free_port
from streamproc.tools.mediaservers import Feed, SrtServer, piped

PASSPHRASE = "Sesame-0f-2026"  # SRT wants 10 to 79 characters


class LockedSrtServer(SrtServer):
    """An SRT listener that wants ``PASSPHRASE``."""

    def pipeline(self) -> str:
        """Camera | ffmpeg SRT listener with a passphrase."""
        return piped(self.feed, ["-f", "mpegts", "-flush_packets", "1",
                                 f"srt://127.0.0.1:{self.port}?mode=listener&"
                                 f"passphrase={PASSPHRASE}"])


def _command_lines() -> list[str]:
    """The command line of every ffmpeg this test process started."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            line = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, NotADirectoryError):
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        if parent == os.getpid() and b"ffmpeg" in line.split(b"\0")[0]:
            found.append(line.replace(b"\0", b" ").decode())
    return found


def test_the_srt_relay_keeps_the_passphrase_off_the_command_line() -> None:
    server = LockedSrtServer(Feed(BOTH))
    server.start()
    url = f"srt://127.0.0.1:{server.port}?mode=caller&passphrase={PASSPHRASE}"
    try:
        deadline, data = time.monotonic() + 20, b""
        while not data and time.monotonic() < deadline:
            with FfmpegRelay(url, {"probesize": "32768"}, 3.0) as relay:
                lines = _command_lines()
                try:
                    data = relay.read(4096)
                except TimeoutError:
                    time.sleep(0.5)  # the listener is not up yet
        assert data.startswith(b"nut/multimedia container")  # it connected: passphrase given
        assert lines and all("concat" in line for line in lines), lines
        assert not [line for line in lines if PASSPHRASE in line], lines
    finally:
        server.stop()


def test_the_relay_script_is_one_entry_with_its_options_quoted() -> None:
    script = concat_script("srt://h:1?passphrase=it's-a-secret", {"probesize": "32768",
                                                                   "protocol_whitelist": "srt"})
    assert script == ("ffconcat version 1.0\nfile 'srt://h:1?passphrase=it'\\''s-a-secret'\n"
                      "option probesize '32768'\n")
    with pytest.raises(SourceError, match="control characters"):
        concat_script("srt://h:1?x=1\nfile '/etc/passwd'", {})


@pytest.mark.e2e  # SRT is read through the system ffmpeg (a child process)
def test_a_failed_srt_connect_names_no_passphrase_even_in_its_traceback() -> None:
    url = f"srt://127.0.0.1:{free_port()}?mode=caller&passphrase={PASSPHRASE}"
    shown = "srt://127.0.0.1/?passphrase=***"
    with pytest.raises(SourceError) as err:
        for _ in read_frames(url, shown, 5, 3, 3, False):
            pass
    trace = "".join(traceback.format_exception(err.value))
    assert shown in trace
    assert PASSPHRASE not in trace  # PyAV's own error, quoting the URL, is not chained

"""The one redaction rule: credentials out of every URL shown in logs, records, responses."""

from __future__ import annotations

import pytest

from streamproc.redaction import redact, scrub


@pytest.mark.parametrize(("url", "shown"), [
    ("rtsp://admin:pw@cam:554/live", "rtsp://***:***@cam:554/live"),
    ("rtsp://admin@cam:554/live", "rtsp://***@cam:554/live"),
    ("rtsp://a:b@c@cam/live", "rtsp://***:***@cam/live"),  # the last @ ends the userinfo
    ("rtsp://:pw@cam/live", "rtsp://***:***@cam/live"),
    ("tcp://u:p@10.0.0.1:9?token=t0k&keep=1", "tcp://***:***@10.0.0.1:9?token=***&keep=1"),
    ("https://h/x.m3u8?Token=abc&q=1", "https://h/x.m3u8?Token=***&q=1"),
    ("https://h/x?a=1&b=&SIG=zz#frag", "https://h/x?a=1&b=&SIG=***#frag"),
    ("https://h/x?auth=", "https://h/x?auth=***"),
    ("https://h/x?token", "https://h/x?token=***"),
    ("rtsp://cam:554/live", "rtsp://cam:554/live"),
    ("https://h/x?q=a%20b", "https://h/x?q=a+b"),
    ("/videos/a:b@c.mp4", "/videos/a:b@c.mp4"),
    ("/videos/a b.mp4?q=a%20b&token=x", "/videos/a b.mp4?q=a%20b&token=x"),  # a path, as is
    ("/videos/rtsp://x/a.mp4?token=x", "/videos/rtsp://x/a.mp4?token=x"),  # a path all the same
    ("relative/clip.mp4?q=a%20b", "relative/clip.mp4?q=a%20b"),  # not a URL: as is
    ("no-scheme-user:pw@host", "no-scheme-user:pw@host"),
    ("", ""),
    ("http://[::1", "<unparseable url>"),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("param", ["password", "pass", "pwd", "passwd", "token",
                                   "access_token", "key", "secret", "signature", "sig",
                                   "auth", "apikey", "api_key", "passphrase"])
def test_every_secret_looking_parameter_is_hidden(param: str) -> None:
    assert redact(f"srt://h:9000?{param}=v4lue&mode=caller") == \
        f"srt://h:9000?{param}=***&mode=caller"
    assert "v4lue" not in redact(f"srt://h:9000?{param.upper()}=v4lue")


def test_scrub_replaces_the_url_and_its_password_wherever_they_appear() -> None:
    url = "rtsp://admin:hunter2@cam/live?token=abc"
    text = f"Cannot open {url}: refused (password hunter2 rejected)"
    assert scrub(text, url) == ("Cannot open rtsp://***:***@cam/live?token=***: refused "
                                "(password *** rejected)")
    assert scrub("only the password hunter2", url) == "only the password ***"


def test_scrub_leaves_text_alone_when_nothing_is_secret() -> None:
    assert scrub("Cannot open tcp://h:1: refused", "tcp://h:1") == \
        "Cannot open tcp://h:1: refused"
    assert scrub("user bob at rtsp://bob@cam/x", "rtsp://bob@cam/x") == \
        "user bob at rtsp://***@cam/x"  # a user without a password: only the URL changes
    assert scrub("at http://[::1 x", "http://[::1") == "at <unparseable url> x"

"""The one redaction rule: credentials out of every URL shown in logs, records, responses."""

from __future__ import annotations

import pytest

from streamproc.redaction import redact, scrub


@pytest.mark.parametrize(("url", "shown"), [
    ("rtsp://admin:pw@cam:554/live", "rtsp://***:***@cam:554/live"),
    ("rtsp://admin@cam:554/live", "rtsp://***@cam:554/live"),
    ("rtsp://a:b@c@cam/live", "rtsp://***:***@cam/live"),  # the last @ ends the userinfo
    ("rtsp://:pw@cam/live", "rtsp://***:***@cam/live"),
    ("tcp://u:p@10.0.0.1:9?token=t0k&keep=1", "tcp://***:***@10.0.0.1:9?token=***&keep=***"),
    ("https://h/x.m3u8?Token=abc&q=1", "https://h/x.m3u8?Token=***&q=***"),
    ("https://h/x?a=1&b=&SIG=zz#frag", "https://h/x?a=***&b=***&SIG=***#frag"),
    ("https://h/x?auth=", "https://h/x?auth=***"),
    ("https://h/x?token", "https://h/x?token=***"),
    ("rtsp://cam:554/live", "rtsp://cam:554/live"),
    ("https://h/x?q=a%20b", "https://h/x?q=***"),
    # Names no list foresees are hidden too (a camera's authtoken, a presigned URL);
    # known options are shown.
    ("rtsp://cam/live?authtoken=T&rtsp_transport=udp&channel=2",
     "rtsp://cam/live?authtoken=***&rtsp_transport=udp&channel=2"),
    ("https://b.s3/x.m3u8?X-Amz-Credential=AK&X-Amz-Signature=S&Key-Pair-Id=K",
     "https://b.s3/x.m3u8?X-Amz-Credential=***&X-Amz-Signature=***&Key-Pair-Id=***"),
    ("srt://h:9000?streamid=s3cret&latency=200", "srt://h:9000?streamid=***&latency=200"),
    ("/videos/a:b@c.mp4", "/videos/a:b@c.mp4"),
    ("/videos/a b.mp4?q=a%20b&token=x", "/videos/a b.mp4?q=a%20b&token=x"),  # a path, as is
    ("/videos/rtsp://x/a.mp4?token=x", "/videos/rtsp://x/a.mp4?token=x"),  # a path all the same
    ("relative/clip.mp4?q=a%20b", "relative/clip.mp4?q=a%20b"),  # not a URL: as is
    ("no-scheme-user:pw@host", "no-scheme-user:pw@host"),
    ("", ""),
    ("http://[::1", "<unparseable url>"),
    # RTMP: the last path element is the stream key (rtmp://host/app[/instance]/KEY).
    ("rtmp://ingest.example/live/STREAMKEY", "rtmp://ingest.example/live/***"),
    ("RTMPS://u:p@h:443/app/inst/k3y?x=1", "rtmps://***:***@h:443/app/inst/***?x=***"),
    ("rtmp://h/live/KEY/", "rtmp://h/live/***/"),
    ("rtmp://h/live/live", "rtmp://h/live/***"),  # the key, not the app of the same name
    ("rtmp://h/live", "rtmp://h/live"),  # an application alone names no key
    ("rtmp://h/", "rtmp://h/"),
    ("rtsp://cam/live/STREAMKEY", "rtsp://cam/live/STREAMKEY"),  # paths elsewhere are kept
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


@pytest.mark.parametrize(("url", "secret", "text"), [
    # The URL as FFmpeg or a re-encoding quotes it, not as it was given.
    ("srt://h:9000?mode=caller&passphrase=a%2Bb+c", "a+b c",
     "Connection to srt://10.0.0.1:9000?passphrase=a+b c&mode=caller failed"),
    ("srt://h:9000?mode=caller&passphrase=a%2Bb+c", "a%2Bb+c", "tried passphrase=a%2Bb+c"),
    ("rtsp://cam/x?token=T0K3N&rtsp_transport=udp", "T0K3N", "rtsp://1.2.3.4/x?token=T0K3N"),
    ("rtmp://h/live/STREAMKEY", "STREAMKEY", "Cannot play live/STREAMKEY: NetStream.Failed"),
    ("rtsp://u:p%40ss@cam/x", "p@ss", "auth as u with p@ss refused"),
    # Percent-encoded quotes: the secret follows %3D / %3A, whose last character is a letter.
    ("rtsp://admin:s3cretPW@cam/x?authtoken=abcDEF123", "abcDEF123",
     "GET x%3Fauthtoken%3DabcDEF123"),
    ("rtsp://admin:s3cretPW@cam/x?authtoken=abcDEF123", "s3cretPW", "as admin%3As3cretPW%40cam"),
])
def test_scrub_hides_each_secret_in_whatever_form_it_is_quoted(url: str, secret: str,
                                                                text: str) -> None:
    scrubbed = scrub(text, url)
    assert secret not in scrubbed
    assert "***" in scrubbed


def test_scrub_of_a_url_with_a_stream_key_hides_the_key() -> None:
    url = "rtmp://h:1935/live/STREAMKEY"
    assert scrub(f"Cannot open {url}: refused", url) == \
        "Cannot open rtmp://h:1935/live/***: refused"


def test_scrub_hides_the_longer_of_two_overlapping_secrets_whole() -> None:
    url = "rtsp://u:abc@cam/x?token=abcdef"
    assert scrub("sent abcdef", url) == "sent ***"  # not "***def"


def test_scrub_hides_a_short_secret_only_where_it_stands_alone() -> None:
    url = "rtmp://h:1935/live/1"
    assert scrub("port 1935 refused key 1", url) == "port 1935 refused key ***"


def test_scrub_of_a_blank_secret_leaves_the_rest_of_the_text_alone() -> None:
    url = "https://h/x?auth="
    assert scrub(f"Cannot open {url}: no", url) == "Cannot open https://h/x?auth=***: no"


def test_a_secret_inside_a_longer_one_leaves_nothing_of_the_longer() -> None:
    url = "rtsp://cam:zzzzz@h/x?token=azzzzz9"  # the password is inside the token
    shown = scrub("opening failed: token azzzzz9 refused", url)
    assert "azzzzz9" not in shown and "a***" not in shown and "9 refused" not in shown


def test_a_secret_of_exactly_four_characters_is_hidden_only_alone() -> None:
    url = "rtsp://cam:abcd@h/x"
    assert scrub("xabcdy and abcd", url) == "xabcdy and ***"


def test_a_query_secret_with_an_equals_sign_is_hidden_as_written() -> None:
    url = "rtsp://h/x?token=a=b+cdefgh"
    assert scrub("sent a=b+cdefgh", url) == "sent ***"  # all of it, not what follows the last =

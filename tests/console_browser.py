"""Headless Chromium for the web console's tests: Debian's ``chromium`` driven by Playwright.

Playwright for Python is pointed at the system browser (``executable_path``), so nothing is
downloaded (no ``playwright install``); scripts/setup.sh installs ``chromium`` from Debian.
Screenshots go under ``tests/artifacts/console/`` (ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "console"
CHROMIUM = os.environ.get("STREAMPROC_CHROMIUM", "/usr/bin/chromium")


def chromium() -> str:
    """The browser executable, or a clear failure naming how to install it."""
    found = shutil.which(CHROMIUM)
    if found is None:
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/setup.sh), "
                    "or set STREAMPROC_CHROMIUM", pytrace=False)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for the module, always closed (and Playwright stopped)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


class RecordedPage:
    """A page in a fresh context (its own cookies), with every request it makes recorded."""

    def __init__(self, browser: object, **context: object) -> None:
        self.context = browser.new_context(**context)  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))

    def hosts(self) -> set[str]:
        """The host of every URL the page requested."""
        return {urlsplit(url).hostname or url for url in self.requests}

    def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot under tests/artifacts/console/."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        """Close the context (and its page)."""
        self.context.close()


@pytest.fixture
def page(browser: object) -> Iterator[RecordedPage]:
    """A recorded page of its own for one test."""
    recorded = RecordedPage(browser)
    try:
        yield recorded
    finally:
        recorded.close()


def keyed_daemon(home: Path, keys: dict[str, str], policies: dict[str, object],
                 **overrides: object) -> Any:
    """A daemon (not started) with auth on: ``keys`` id -> secret, ``policies`` by key id."""
    from conftest import make_config

    from streamproc.daemon import Daemon

    (home / "keys.yaml").write_text(json.dumps(keys))
    (home / "policies.yaml").write_text(json.dumps(policies))
    return Daemon(make_config(home / "data", **{
        "auth.enabled": True, "auth.access_keys_file": str(home / "keys.yaml"),
        "auth.policy_file": str(home / "policies.yaml"), **overrides}))


def keyed_client(daemon: Any, key_id: str, secret: str) -> Any:
    """A boto3 Rekognition client of ``daemon`` signing with this key."""
    import boto3

    return boto3.client("rekognition", endpoint_url=daemon.endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)

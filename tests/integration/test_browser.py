"""The headless browser the web-facing tests use: Debian's Chromium under playwright-core."""

from __future__ import annotations

import pytest

from tests.support.browser import run_browser_script

pytestmark = pytest.mark.integration


def test_chromium_launches_headless(chromium: None) -> None:
    shown = run_browser_script("chromium.mjs")
    assert shown["title"] == "ok"
    assert shown["version"].split(".")[0].isdigit()

"""Pairing in a real browser: the web app's Devices page and ``/pair`` against a real
``sessionbase serve --require-auth`` (Debian's Chromium under playwright-core, scenarios in
``js/pairing.mjs``).

With ``--require-auth`` a browser on this machine is nobody until it pairs, so the second
browser context (the "phone") is as unknown to the server as a phone on the LAN: it scans
the QR code the owner's Devices page shows (its pixels, decoded), pairs, uses the app, and is
signed out when the owner revokes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_devices import Served, call
from tests.integration.test_web_app import _screenshots
from tests.support.browser import run_browser_script

pytestmark = pytest.mark.integration
DEVICES = [  # name, scopes, user agent: a few paired devices for the list to show
    ("Pixel 8", "read", "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like"
     " Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"),
    ("iPad", "read,write", "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
     " (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    ("old phone", "read", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X)"
     " AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"),
]  # fmt: skip


@pytest.fixture
def served(tmp_path: Path, chromium: None) -> Iterator[Served]:
    setup = Served(tmp_path, "--require-auth")
    setup.server.start()
    yield setup
    setup.server.stop()


def run(served: Served, scenario: str, **config: Any) -> Any:
    return run_browser_script("pairing.mjs", scenario, json.dumps({"url": served.url, **config}))


def test_a_phone_pairs_by_the_qr_code_and_is_signed_out_when_revoked(served: Served) -> None:
    admin_code = served.code("read,write,admin")
    shown = run(served, "flow", adminCode=admin_code)
    assert shown["problems"] == [], "the browsers saw errors"

    made = shown["made"]
    assert made["scanned"] == f"{served.url}/pair?code={made['code']}"
    assert made["scanned"] in made["urls"]
    assert shown["prefilled"] == made["code"]
    assert shown["phoneAt"] == "/"  # on into the app, the code gone from the address
    assert shown["stored"] == {"deviceId": shown["stored"]["deviceId"], "name": "phone",
                               "scopes": ["read", "write"], "hasSecret": True}  # fmt: skip
    assert shown["secretInUrls"] == []
    assert not shown["phoneNavHasDevices"]
    assert "not admin" in shown["forbidden"]

    listed = {d["name"]: d for d in json.loads(served.cli("devices", "--json"))}
    phone = listed["Pixel phone"]  # renamed on the owner's page
    assert phone["id"] == shown["stored"]["deviceId"]
    assert phone["revoked_at"] is not None
    assert listed["laptop"]["revoked_at"] is None
    assert shown["ownerStillIn"]

    print(f"revoke → the phone's pairing screen: {shown['endedAfterMs']} ms")
    assert shown["endedAfterMs"] < 1000, "the revoked phone's session outlived a second"
    assert "revoked" in shown["ended"]
    assert shown["forgotten"] is None

    errors = shown["errors"]
    assert "wrong, used or expired" in errors["used"]
    assert "Cannot reach the server" in errors["offline"]
    assert errors["limited"].startswith("Too many attempts")
    assert errors["buttonDisabled"]
    assert errors["button"].startswith("Try again in")
    assert errors["tooManyCodes"] == (
        "10 pairing codes are live already: use one, or wait for them to expire"
    )


def test_devices_and_pair_pages_are_clean_accessible_and_fit_a_phone(served: Served) -> None:
    for name, scopes, agent in DEVICES:
        status, paired = call(f"{served.url}/auth/pair", body={"code": served.code(scopes),
                              "name": name}, headers={"User-Agent": agent})  # fmt: skip
        assert status == 200, paired
        if name == "old phone":
            served.cli("devices", "revoke", paired["deviceId"])
    screenshots = _screenshots()
    result = run(served, "pages", adminCode=served.code("read,write,admin"),
                 screenshots=str(screenshots))  # fmt: skip
    assert result["problems"] == [], "the browsers saw errors"
    seen = {(entry["page"], entry["viewport"]) for entry in result["report"]}
    assert seen == {(p, v) for p in ("devices", "pair") for v in ("desktop", "phone")}
    for entry in result["report"]:
        where = f"{entry['page']} at {entry['viewport']}"
        overflow = entry["overflow"]
        assert overflow["scrollWidth"] <= overflow["clientWidth"], f"{where} scrolls sideways"
        serious = [v for v in entry["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{where}: {serious}"
    for name in ("devices-desktop", "devices-phone", "pair-desktop", "pair-phone"):
        assert (screenshots / f"{name}.png").stat().st_size > 0

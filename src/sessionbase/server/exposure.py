"""How the server is exposed: where it listens, the addresses a device may reach it at, TLS,
and whether loopback must authenticate too. ``serve`` records it in the data dir
(``serving.json``) so that ``pair`` and ``status`` can say it without asking the server.

Addresses a device might use: for a wildcard bind (``0.0.0.0``, ``::``), every address of this
machine's interfaces but loopback and link-local ones (Tailscale's 100.64.0.0/10 included),
the Tailscale DNS name when ``tailscale`` is installed and logged in, and the configured
public URLs (a reverse proxy); for a bind to one address, that address and the public URLs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sessionbase.files import read_limited
from sessionbase.server.loopback import is_loopback

SERVING_FILE = "serving.json"
TAILSCALE_TIMEOUT = 3.0
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Exposure:
    host: str
    port: int
    tls: bool = False
    require_auth: bool = False
    public_urls: tuple[str, ...] = ()
    addresses: tuple[str, ...] = field(default=())
    """Base URLs of this machine's own addresses a device may use (see the module doc)."""

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host.strip("[]"))

    def device_urls(self) -> list[str]:
        """Every base URL a device may reach the server at, public ones first."""
        return list(dict.fromkeys([*self.public_urls, *self.addresses]))

    def pairing_urls(self, code: str) -> list[str]:
        return [f"{base}/pair?code={code}" for base in self.device_urls()]

    def facts(self) -> dict[str, Any]:
        """What ``status`` and ``status:get`` say of it (snake_case; camelCase on the wire)."""
        return {
            "listen": f"{_url_host(self.host)}:{self.port}",
            "urls": self.device_urls(),
            "tls": self.tls,
            "require_auth": self.require_auth,
            "loopback_only": self.loopback_only,
        }


def discover(
    host: str, port: int, *, tls: bool, require_auth: bool, public_urls: tuple[str, ...]
) -> Exposure:
    """The exposure of a server bound to ``host:port``, with its addresses looked up now."""
    scheme = "https" if tls else "http"
    if host in WILDCARDS:
        hosts = [*interface_addresses(ipv6=host == "::"), *tailscale_names()]
    elif is_loopback(host.strip("[]")):
        hosts = []
    else:
        hosts = [host]
    addresses = tuple(dict.fromkeys(f"{scheme}://{_url_host(h)}:{port}" for h in hosts))
    return Exposure(host, port, tls, require_auth, public_urls, addresses)


def interface_addresses(*, ipv6: bool = True) -> list[str]:
    """This machine's addresses, IPv4 first, without loopback or link-local ones."""
    import ifaddr

    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            with contextlib.suppress(ValueError):
                address = ipaddress.ip_address(raw.split("%")[0])
                if address.is_loopback or address.is_link_local or address.is_multicast:
                    continue
                if address.version == 6 and not ipv6:
                    continue
                found.append(address)
    ordered = sorted(set(found), key=lambda a: (a.version, a.packed))
    return [str(a) for a in ordered]


def tailscale_names() -> list[str]:
    """The Tailscale DNS name of this machine (``host.tailnet.ts.net``), when ``tailscale``
    is installed and up; nothing otherwise (its addresses are interface addresses)."""
    binary = shutil.which("tailscale")
    if binary is None:
        return []
    try:
        done = subprocess.run(
            [binary, "status", "--json", "--self=true", "--peers=false"],
            capture_output=True, timeout=TAILSCALE_TIMEOUT, check=False,
        )  # fmt: skip
        status = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return []
    name = str((status.get("Self") or {}).get("DNSName") or "").rstrip(".")
    return [name] if name else []


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def record(data_dir: Path, exposure: Exposure) -> None:
    """Note in the data dir how this process serves (``pair`` and ``status`` read it)."""
    body = {"pid": os.getpid(), **asdict(exposure)}
    staged = data_dir / f".{SERVING_FILE}.{os.getpid()}"
    with contextlib.suppress(OSError):
        staged.write_text(json.dumps(body))
        os.replace(staged, data_dir / SERVING_FILE)


def forget(data_dir: Path) -> None:
    with contextlib.suppress(OSError):
        if _recorded(data_dir).get("pid") == os.getpid():
            (data_dir / SERVING_FILE).unlink()


def recorded(data_dir: Path) -> Exposure | None:
    """How a running ``serve`` of this data dir is exposed, or None when none runs."""
    body = _recorded(data_dir)
    pid = body.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    try:
        return Exposure(
            str(body["host"]), int(body["port"]), bool(body["tls"]), bool(body["require_auth"]),
            tuple(body["public_urls"]), tuple(body["addresses"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


def _recorded(data_dir: Path) -> dict[str, Any]:
    try:
        body = json.loads(read_limited(data_dir / SERVING_FILE, 64 * 1024))
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Commands for devices: pair (a one-time code, shown as a QR code) and devices (list,
revoke, rename, remove, rotate-key). They work on the database directly, so they work whether
or not ``serve`` runs: a running serve learns of every change from the commit log."""

from __future__ import annotations

import io
import re
from typing import Any

import click

from sessionbase.auth import devices as device_ops
from sessionbase.auth.keys import ensure_key, rotate_key
from sessionbase.auth.scopes import parse_scopes
from sessionbase.cli._group import cli
from sessionbase.cli._output import console_out, emit_json, fail, local_time, open_reader
from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError
from sessionbase.ingest.timestamps import iso
from sessionbase.server import exposure as exposures
from sessionbase.store import open_store

_DURATION = re.compile(r"^\s*(\d+)\s*([smh]?)\s*$")


def _seconds(text: str) -> int:
    """``90s``, ``10m``, ``1h`` or a number of seconds."""
    found = _DURATION.match(text.lower())
    if found is None:
        raise click.BadParameter(f"{text!r}: give a duration like 90s, 10m or 1h")
    return int(found[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[found[2]]


@cli.command()
@click.option("--name", help="What to call the device (it may name itself when it pairs).")
@click.option(
    "--scope",
    "scopes",
    default="read,write",
    show_default=True,
    help="What the device may do: read, write, admin, run (comma-separated).",
)
@click.option("--ttl", default="10m", show_default=True, help="How long the code lives (1m to 1h).")
@click.option("--json", "as_json", is_flag=True, help="Print {code, urls, expiresAt, scopes}.")
@click.pass_obj
def pair(settings: Settings, name: str | None, scopes: str, ttl: str, as_json: bool) -> None:
    """Pair a phone or another computer: print a one-time code and its QR code.

    Open the URL (scan the QR code) on the device, or type the code into its pairing page;
    the device then holds its own secret with exactly these scopes. A code works once and
    expires; guesses are rate-limited. The URLs name every address the device might reach
    this machine at: LAN addresses, the Tailscale name, and public_urls.
    """
    try:
        granted = parse_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None
    seconds = _seconds(ttl)
    try:
        key = ensure_key(settings.data_dir)
        with open_store(settings.database_url) as store:
            code = device_ops.create_pairing(store, key, name, granted, seconds, "cli")
    except (SessionbaseError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    running = exposures.recorded(settings.data_dir)
    exposure = running or exposures.discover(
        "0.0.0.0", 7788, tls=False, require_auth=settings.require_auth,
        public_urls=settings.public_urls,
    )  # fmt: skip
    urls = exposure.pairing_urls(code.code)
    if as_json:
        emit_json({"code": code.code, "urls": urls, "expiresAt": iso(code.expires_at),
                   "scopes": list(code.scopes)})  # fmt: skip
        return
    out = console_out()
    if urls:
        import segno

        drawing = io.StringIO()
        segno.make(urls[0], error="m").terminal(out=drawing, compact=True)
        click.echo(drawing.getvalue())
    out.print(f"code     [bold]{code.code}[/bold]  (expires {local_time(code.expires_at)})")
    out.print(f"scopes   {', '.join(code.scopes)}")
    for url in urls:
        out.print(f"open     {url}", markup=False, soft_wrap=True)
    if running is None:
        out.print(
            "[yellow]no serve is running on this data dir:[/yellow] these URLs assume"
            " `sessionbase serve --host 0.0.0.0 --port 7788`",
            soft_wrap=False,  # a sentence: wrapped to the terminal, unlike the URLs above
        )
    elif running.loopback_only and not settings.public_urls:
        out.print(
            "[yellow]serve listens on loopback only:[/yellow] no other device can reach it."
            " Restart it with --host 0.0.0.0 (or a Tailscale address), or put it behind a"
            " proxy and set public_urls",
            soft_wrap=False,
        )


@cli.command()
@click.argument(
    "action",
    required=False,
    type=click.Choice(["list", "revoke", "rename", "remove", "rotate-key", "log"]),
)
@click.argument("device_id", required=False)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def devices(
    settings: Settings, action: str | None, device_id: str | None, name: str | None, as_json: bool
) -> None:
    """Paired devices: list them, revoke, rename or remove one, rotate the signing key.

    \b
      sessionbase devices                   name, scopes, last seen and from where
      sessionbase devices revoke ID         its tokens stop working and its connections
                                            close at once, on every replica
      sessionbase devices rename ID NAME
      sessionbase devices remove ID         forget it (revoked first)
      sessionbase devices rotate-key        a new signing key: every token in use is
                                            refused and devices fetch new ones (their
                                            secrets stay valid); live pairing codes lapse
      sessionbase devices log               the audit log: pairings, tokens, revocations,
                                            refused attempts
    """
    action = action or "list"
    try:
        if action == "list":
            _list(settings, as_json)
        elif action == "log":
            _log(settings, as_json)
        elif action == "rotate-key":
            _rotate(settings, as_json)
        else:
            _change(settings, action, device_id, name, as_json)
    except SessionbaseError as exc:
        raise fail(exc) from exc


def _list(settings: Settings, as_json: bool) -> None:
    with open_reader(settings) as store:
        paired = store.devices()
    if as_json:
        emit_json([_device_json(d) for d in paired])
        return
    if not paired:
        click.echo("no paired devices (sessionbase pair adds one)")
        return
    out = console_out()
    for d in paired:
        state = f"[red]revoked {local_time(d['revoked_at'])}[/red]" if d["revoked_at"] else ""
        seen = f"seen {local_time(d['last_seen_at'])} from {d['last_ip'] or '?'}"
        out.print(
            f"{d['id']}  [bold]{_escaped(d['name'])}[/bold]  {','.join(d['scopes'])}  {seen}"
            f"  {state}".rstrip()
        )


def _escaped(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _device_json(device: dict[str, Any]) -> dict[str, Any]:
    return {
        **device,
        **{k: iso(device[k]) for k in ("created_at", "last_seen_at", "revoked_at")},
    }


def _log(settings: Settings, as_json: bool) -> None:
    with open_reader(settings) as store:
        events = store.auth_events(200)
    if as_json:
        emit_json([{**e, "ts": iso(e["ts"])} for e in events])
        return
    for e in reversed(events):
        where = f" from {e['address']}" if e["address"] else ""
        who = f" {e['device_id']}" if e["device_id"] else ""
        click.echo(f"{local_time(e['ts'])}  {e['event']}{who}{where}  {e['detail'] or ''}")


def _rotate(settings: Settings, as_json: bool) -> None:
    key = rotate_key(settings.data_dir)
    with open_store(settings.database_url) as store:
        store.announce(["auth:key"])  # every serve reloads it and ends old tokens' sessions
        store.log_auth_event("key_rotated", detail=f"new key {key.kid} by cli")
    if as_json:
        emit_json({"kid": key.kid})
    else:
        click.echo(f"new signing key {key.kid}: tokens signed before are refused from now on")


def _change(
    settings: Settings, action: str, device_id: str | None, name: str | None, as_json: bool
) -> None:
    if not device_id:
        raise click.UsageError(f"devices {action} needs a device id (sessionbase devices)")
    if action == "rename" and not name:
        raise click.UsageError("devices rename needs the new name: devices rename ID NAME")
    with open_store(settings.database_url) as store:
        device_ops.require_device(store, device_id)
        if action == "revoke":
            change = device_ops.revoke_change(device_id, "cli")
        elif action == "rename":
            change = device_ops.rename_change(device_id, name or "", "cli")
        else:
            change = device_ops.remove_change(device_id, "cli")
        store.apply_user_changes([change], None, None)
        after = store.device(device_id)
    if as_json:
        emit_json(None if after is None else _device_json({**after, "secret_hash": None}))
        return
    click.echo({"revoke": "revoked", "rename": "renamed", "remove": "removed"}[action]
               + f" {device_id}")  # fmt: skip

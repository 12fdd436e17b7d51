"""The device tables of ``SQLiteStore``: paired devices, pairing codes and the audit log."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sessionbase.store.base import NewDevice, UserChange

AUDIT_RETENTION_MS = 180 * 86_400_000  # audit entries older than this are pruned
PAIRING_RETENTION_MS = 86_400_000  # used or expired codes are kept this long, then pruned
_DEVICE_COLUMNS = "id, name, scopes, created_at, last_seen_at, last_ip, user_agent, revoked_at"


def device_shape(row: Any) -> dict[str, Any]:
    """A device row as callers see it: scopes as a list."""
    device = dict(row)
    device["scopes"] = str(device["scopes"]).split()
    return device


class SQLiteDevices:
    """Device reads and writes of ``SQLiteStore`` (it provides the connection and commits)."""

    _db: sqlite3.Connection

    def _begin(self) -> None:
        raise NotImplementedError  # SQLiteStore's transactions

    def _finish(self, touched: list[str]) -> int:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    def device(self, device_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            f"SELECT {_DEVICE_COLUMNS}, secret_hash FROM devices WHERE id = ?", (device_id,)
        ).fetchone()
        return None if row is None else device_shape(row)

    def devices(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY created_at DESC, id"
        ).fetchall()
        return [device_shape(r) for r in rows]

    def redeem_pairing(self, code_hash: str, now: int, device: NewDevice) -> dict[str, Any] | None:
        try:
            self._begin()
            code = self._db.execute(
                "UPDATE pairing_codes SET used_at = ?, device_id = ?"
                " WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?"
                " RETURNING name, scopes",
                (now, device.id, code_hash, now),
            ).fetchone()
            if code is None:
                self._db.execute("COMMIT")
                return None
            name = device.name or code["name"] or "device"
            self._db.execute(
                "INSERT INTO devices (id, name, scopes, created_at, last_seen_at, last_ip,"
                " user_agent, secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (device.id, name, code["scopes"], now, now, device.address, device.user_agent,
                 device.secret_hash),
            )  # fmt: skip
            self._audit(now, "paired", device.id, device.address, f"{name}: {code['scopes']}")
            self._finish([f"devices:{device.id}"])
        except BaseException:
            self._rollback()
            raise
        return self._device_listed(device.id)

    def _device_listed(self, device_id: str) -> dict[str, Any] | None:
        found = self.device(device_id)
        if found is not None:
            found.pop("secret_hash")
        return found

    def live_pairing_codes(self, now: int) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM pairing_codes WHERE used_at IS NULL AND expires_at > ?", (now,)
        ).fetchone()
        return int(row[0])

    def touch_device(
        self, device_id: str, seen_at: int, address: str | None, user_agent: str | None
    ) -> None:
        self._db.execute(
            "UPDATE devices SET last_seen_at = ?, last_ip = ?,"
            " user_agent = coalesce(?, user_agent) WHERE id = ?",
            (seen_at, address, user_agent, device_id),
        )

    def log_auth_event(
        self,
        event: str,
        *,
        device_id: str | None = None,
        address: str | None = None,
        detail: str | None = None,
    ) -> None:
        now = int(time.time() * 1000)
        self._audit(now, event, device_id, address, detail)
        if self._db.execute("SELECT max(id) % 1000 FROM auth_log").fetchone()[0] == 0:
            self._db.execute("DELETE FROM auth_log WHERE ts < ?", (now - AUDIT_RETENTION_MS,))

    def auth_events(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT ts, event, device_id, address, detail FROM auth_log ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [dict(r) for r in rows]

    def _audit(
        self, ts: int, event: str, device_id: str | None, address: str | None, detail: str | None
    ) -> None:
        self._db.execute(
            "INSERT INTO auth_log (ts, event, device_id, address, detail) VALUES (?, ?, ?, ?, ?)",
            (ts, event, device_id, address, detail),
        )

    def _apply_auth_change(self, change: UserChange) -> str:
        """A device or pairing-code change inside a user-change transaction (see
        ``AUTH_ENTITIES``), audited in the same transaction."""
        now = int(time.time() * 1000)
        values = change.values
        by = values.get("by")
        if change.entity == "pairing":
            record = values["record"]
            self._db.execute(
                "DELETE FROM pairing_codes WHERE expires_at < ?", (now - PAIRING_RETENTION_MS,)
            )
            self._db.execute(
                "INSERT INTO pairing_codes (code_hash, name, scopes, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (change.id, record.get("name"), " ".join(record["scopes"]), now,
                 record["expires_at"]),
            )  # fmt: skip
            scopes = " ".join(record["scopes"])
            self._audit(now, "pairing_created", None, None, f"{scopes} by {by}")
            return "pairing:*"
        if "name" in values:
            self._db.execute(
                "UPDATE devices SET name = ? WHERE id = ?", (values["name"], change.id)
            )
            self._audit(now, "renamed", change.id, None, f"{values['name']} by {by}")
        if "revoked_at" in values:
            self._db.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                (values["revoked_at"], change.id),
            )
            self._audit(now, "revoked", change.id, None, f"by {by}")
        if values.get("removed"):
            self._db.execute("DELETE FROM devices WHERE id = ?", (change.id,))
            self._audit(now, "removed", change.id, None, f"by {by}")
        return f"devices:{change.id}"

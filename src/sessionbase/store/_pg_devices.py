"""The device tables of ``PostgresStore``: paired devices, pairing codes and the audit log.

Redeeming a code is one ``UPDATE … RETURNING`` on its row, so two replicas given the same
code at once create one device: the second finds it used."""

from __future__ import annotations

import time
from typing import Any

from sessionbase.store._pg_connection import Borrowed
from sessionbase.store._sqlite_devices import (
    AUDIT_RETENTION_MS,
    PAIRING_RETENTION_MS,
    device_shape,
)
from sessionbase.store.base import NewDevice, UserChange

_DEVICE_COLUMNS = "id, name, scopes, created_at, last_seen_at, last_ip, user_agent, revoked_at"


def _clean(value: str | None) -> str | None:
    return None if value is None else value.replace("\x00", "\ufffd")


class PgDevices:
    """Device reads and writes of ``PostgresStore`` (it provides the connection and commits)."""

    _db: Borrowed

    def _x(self, sql: str | bytes, params: Any = None) -> Any:
        raise NotImplementedError  # PostgresStore's

    def _begin(self) -> None:
        raise NotImplementedError

    def _finish(self, touched: list[str]) -> int:
        raise NotImplementedError

    def _dicts(
        self, sql: str, params: Any = None, doing: str = "query failed"
    ) -> list[dict[str, Any]]:
        raise NotImplementedError

    def device(self, device_id: str) -> dict[str, Any] | None:
        rows = self._dicts(
            f"SELECT {_DEVICE_COLUMNS}, secret_hash FROM devices WHERE id = %s",
            (device_id,),
            "cannot read the device",
        )
        return device_shape(rows[0]) if rows else None

    def devices(self) -> list[dict[str, Any]]:
        rows = self._dicts(
            f'SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY created_at DESC, id COLLATE "C"',
            None,
            "cannot list devices",
        )
        return [device_shape(r) for r in rows]

    def redeem_pairing(self, code_hash: str, now: int, device: NewDevice) -> dict[str, Any] | None:
        with self._db.errors("cannot pair the device"):
            self._begin()
            code = self._x(
                "UPDATE pairing_codes SET used_at = %s, device_id = %s"
                " WHERE code_hash = %s AND used_at IS NULL AND expires_at > %s"
                " RETURNING name, scopes",
                (now, device.id, code_hash, now),
            ).fetchone()
            if code is None:
                self._x("COMMIT")
                return None
            name = _clean(device.name) or code[0] or "device"
            self._x(
                "INSERT INTO devices (id, name, scopes, created_at, last_seen_at, last_ip,"
                " user_agent, secret_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (device.id, name, code[1], now, now, device.address, _clean(device.user_agent),
                 device.secret_hash),
            )  # fmt: skip
            self._audit(now, "paired", device.id, device.address, f"{name}: {code[1]}")
            self._finish([f"devices:{device.id}"])
        found = self.device(device.id)
        if found is not None:
            found.pop("secret_hash")
        return found

    def live_pairing_codes(self, now: int) -> int:
        with self._db.errors("cannot count pairing codes"):
            row = self._x(
                "SELECT count(*) FROM pairing_codes WHERE used_at IS NULL AND expires_at > %s",
                (now,),
            ).fetchone()
        return int(row[0])

    def touch_device(
        self, device_id: str, seen_at: int, address: str | None, user_agent: str | None
    ) -> None:
        with self._db.errors("cannot record when the device was seen"):
            self._x(
                "UPDATE devices SET last_seen_at = %s, last_ip = %s,"
                " user_agent = coalesce(%s, user_agent) WHERE id = %s",
                (seen_at, address, _clean(user_agent), device_id),
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
        with self._db.errors("cannot write the audit log"):
            self._audit(now, event, device_id, address, detail)
            if now % 1000 == 0:
                self._x("DELETE FROM auth_log WHERE ts < %s", (now - AUDIT_RETENTION_MS,))

    def auth_events(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT ts, event, device_id, address, detail FROM auth_log ORDER BY id DESC LIMIT %s",
            (limit,),
            "cannot read the audit log",
        )

    def _audit(
        self, ts: int, event: str, device_id: str | None, address: str | None, detail: str | None
    ) -> None:
        self._x(
            "INSERT INTO auth_log (ts, event, device_id, address, detail)"
            " VALUES (%s, %s, %s, %s, %s)",
            (ts, event, device_id, address, _clean(detail)),
        )

    def _apply_auth_change(self, change: UserChange) -> str:
        """As ``SQLiteDevices._apply_auth_change``."""
        now = int(time.time() * 1000)
        values = change.values
        by = values.get("by")
        if change.entity == "pairing":
            record = values["record"]
            scopes = " ".join(record["scopes"])
            self._x(
                "DELETE FROM pairing_codes WHERE expires_at < %s", (now - PAIRING_RETENTION_MS,)
            )
            self._x(
                "INSERT INTO pairing_codes (code_hash, name, scopes, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (change.id, _clean(record.get("name")), scopes, now, record["expires_at"]),
            )
            self._audit(now, "pairing_created", None, None, f"{scopes} by {by}")
            return "pairing:*"
        if "name" in values:
            self._x(
                "UPDATE devices SET name = %s WHERE id = %s", (_clean(values["name"]), change.id)
            )
            self._audit(now, "renamed", change.id, None, f"{values['name']} by {by}")
        if "revoked_at" in values:
            self._x(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s",
                (values["revoked_at"], change.id),
            )
            self._audit(now, "revoked", change.id, None, f"by {by}")
        if values.get("removed"):
            self._x("DELETE FROM devices WHERE id = %s", (change.id,))
            self._audit(now, "removed", change.id, None, f"by {by}")
        return f"devices:{change.id}"

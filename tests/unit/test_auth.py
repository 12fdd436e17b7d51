"""Tokens, keys, codes and attempt limits, each on its own (the server's use is tested in
tests/integration/test_devices.py)."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from pathlib import Path

import jwt
import pytest

from sessionbase.auth import credentials, tokens
from sessionbase.auth.keys import ensure_key, key_path, load_key, rotate_key
from sessionbase.auth.ratelimit import AttemptLimiter, Limits, address_key
from sessionbase.auth.scopes import ANONYMOUS, LOCAL, Identity, parse_scopes
from sessionbase.errors import AuthError, ConfigError, RateLimited, ScopeError


def test_the_key_file_is_created_owner_only_and_rotated_whole(tmp_path: Path) -> None:
    key = ensure_key(tmp_path)
    path = key_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_key(tmp_path) == key  # kept, not replaced
    rotated = rotate_key(tmp_path)
    assert rotated.kid != key.kid
    assert rotated.secret != key.secret
    assert load_key(path) == rotated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    ensure_key(tmp_path)
    os.chmod(key_path(tmp_path), 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key(key_path(tmp_path))


def test_a_damaged_key_is_a_clear_error(tmp_path: Path) -> None:
    path = key_path(tmp_path)
    path.write_text("not json")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="damaged"):
        load_key(path)


def token_for(tmp_path: Path, ttl: int = 60) -> tuple[str, tokens.TokenClaims]:
    key = ensure_key(tmp_path)
    claims = tokens.issue(key, "dev1", ("read",), ttl)
    return tokens.encode(key, claims), claims


def test_a_token_verifies_under_its_key(tmp_path: Path) -> None:
    token, claims = token_for(tmp_path)
    assert tokens.verify(ensure_key(tmp_path), token) == claims
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["exp"] - payload["iat"] == 60  # what the Convex client schedules from
    assert payload["sub"] == "dev1"
    assert payload["scopes"] == ["read"]
    assert payload["jti"]


def _forged(header: dict[str, object], payload: dict[str, object], signature: str = "") -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(payload)}.{signature}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda key, good: "", "malformed"),
        (lambda key, good: "not-a-token", "malformed"),
        (lambda key, good: "a.b.c", "malformed"),
        (lambda key, good: good + "x" * 5000, "malformed"),
        (
            lambda key, good: good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
            "signature",
        ),  # fmt: skip
        (
            lambda key, good: _forged(
                {"alg": "none", "kid": key.kid},
                jwt.decode(good, options={"verify_signature": False}),
            ),
            "algorithm 'none'",
        ),
        (
            lambda key, good: jwt.encode(
                jwt.decode(good, options={"verify_signature": False}),
                key.secret * 2,
                algorithm="HS512",
                headers={"kid": key.kid},
            ),
            "algorithm 'HS512'",
        ),
        (
            lambda key, good: jwt.encode(
                jwt.decode(good, options={"verify_signature": False}),
                b"another key of thirty-two bytes!",
                algorithm="HS256",
                headers={"kid": key.kid},
            ),
            "signature",
        ),
        (
            lambda key, good: jwt.encode(
                {
                    "sub": "dev1",
                    "iss": "sessionbase",
                    "iat": 1,
                    "exp": 2,
                    "jti": "j",
                    "scopes": ["read"],
                },
                key.secret,
                algorithm="HS256",
                headers={"kid": key.kid},
            ),  # fmt: skip
            "expired",
        ),
        (
            lambda key, good: jwt.encode(
                {
                    "sub": "dev1",
                    "iss": "sessionbase",
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 60,
                    "jti": "j",
                    "scopes": "admin",
                },
                key.secret,
                algorithm="HS256",
                headers={"kid": key.kid},
            ),  # fmt: skip
            "scopes",
        ),
        (
            lambda key, good: jwt.encode(
                {"sub": "dev1", "iat": int(time.time()), "exp": int(time.time()) + 60},
                key.secret,
                algorithm="HS256",
                headers={"kid": key.kid},
            ),  # fmt: skip
            "not valid",
        ),
    ],
    ids=[
        "empty",
        "garbage",
        "three-dots",
        "huge",
        "bad-signature",
        "alg-none",
        "hs512",
        "wrong-key",
        "expired",
        "bad-scopes",
        "missing-claims",
    ],  # fmt: skip
)
def test_every_bad_token_is_a_clean_auth_error(tmp_path: Path, make: object, reason: str) -> None:
    good, _ = token_for(tmp_path)
    key = ensure_key(tmp_path)
    bad = make(key, good)  # type: ignore[operator]
    with pytest.raises(AuthError, match=reason):
        tokens.verify(key, bad)


def test_a_rotated_key_refuses_old_tokens(tmp_path: Path) -> None:
    good, _ = token_for(tmp_path)
    fresh = rotate_key(tmp_path)
    with pytest.raises(AuthError, match="another key"):
        tokens.verify(fresh, good)


def test_the_verifier_remembers_tokens_but_not_past_a_rotation_or_expiry(tmp_path: Path) -> None:
    good, claims = token_for(tmp_path, ttl=60)
    key = ensure_key(tmp_path)
    now = [time.time()]
    verifier = tokens.Verifier(size=2, clock=lambda: now[0])
    assert verifier.verify(key, good) == claims
    assert verifier.verify(key, good) == claims  # remembered
    with pytest.raises(AuthError, match="signature"):
        verifier.verify(key, good + "x")  # another string: verified afresh
    now[0] = claims.expires_at + tokens.LEEWAY
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(key, good)
    now[0] = time.time()
    assert verifier.verify(key, good) == claims  # PyJWT's own answer: still valid now
    fresh = rotate_key(tmp_path)
    with pytest.raises(AuthError, match="another key"):
        verifier.verify(fresh, good)
    others = [tokens.encode(fresh, tokens.issue(fresh, f"d{n}", ("read",), 60)) for n in range(3)]
    for token in others:
        verifier.verify(fresh, token)
    assert len(verifier) == 2


def test_codes_forgive_what_people_type() -> None:
    code = credentials.new_code()
    assert len(code) == 9
    assert code[4] == "-"
    assert credentials.normalize_code(code) == code.replace("-", "")
    assert credentials.normalize_code(" ab0i-lo1u ") == "AB01101V"
    assert credentials.normalize_code("ABCD-EFG") is None
    assert credentials.normalize_code("ABCD-EFG!") is None
    assert credentials.normalize_code("x" * 1000) is None
    assert credentials.CODE_SPACE == 2**40


def test_secrets_name_their_device_and_compare_by_hash() -> None:
    secret = credentials.new_device_secret("abc123")
    assert credentials.secret_device_id(secret) == "abc123"
    assert credentials.secret_matches(secret, credentials.secret_hash(secret))
    assert not credentials.secret_matches(secret + "x", credentials.secret_hash(secret))
    for bad in ("", "sbd", "sbd.abc", "Bearer x", "sbd.abc.short", "jwt.like.token"):
        with pytest.raises(AuthError):
            credentials.secret_device_id(bad)


def test_scopes_parse_and_check() -> None:
    assert parse_scopes("write,read") == ("read", "write")
    assert parse_scopes(["admin"]) == ("admin",)
    with pytest.raises(ValueError, match="unknown scope root"):
        parse_scopes("read,root")
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes("")
    LOCAL.require("admin", "pairing:create")
    with pytest.raises(AuthError, match="needs authentication") as anonymous:
        ANONYMOUS.require("read", "threads:recent")
    assert not isinstance(anonymous.value, ScopeError)
    reader = Identity("device", frozenset({"read"}), "d1")
    reader.require("read", "threads:recent")
    with pytest.raises(ScopeError, match="'write' scope"):
        reader.require("write", "threads:rename")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_attempts_are_limited_per_address_and_overall() -> None:
    clock = Clock()
    limits = Limits(per_address=5, address_refill=12, overall=20, overall_refill=3)
    limiter = AttemptLimiter(limits, clock)
    for _ in range(5):
        limiter.take("198.51.100.1")
    with pytest.raises(RateLimited) as refused:
        limiter.take("198.51.100.1")
    assert refused.value.retry_after == pytest.approx(12)
    limiter.take("198.51.100.2")  # another address still may
    clock.now += 12
    limiter.take("198.51.100.1")  # one more after the refill
    limiter = AttemptLimiter(limits, clock)
    for n in range(20):
        limiter.take(f"203.0.113.{n}")
    with pytest.raises(RateLimited, match="right now"):
        limiter.take("192.0.2.99")  # everyone together: 20 spent
    assert limits.guesses_within(600) == 220


def test_memory_is_bounded_and_ipv6_counts_by_prefix() -> None:
    limiter = AttemptLimiter(Limits(overall=10**9, max_addresses=100), Clock())
    for n in range(10_000):
        limiter.take(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert limiter.tracked == 100
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "?"

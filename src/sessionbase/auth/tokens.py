"""Short-lived signed tokens (JWT, HS256, PyJWT) that a device secret buys at ``/auth/token``.

Claims: ``iss`` sessionbase, ``sub`` the device id, ``scopes``, ``iat`` and ``exp`` (whole
seconds: the Convex browser client schedules its refresh at ``exp - iat`` minus 10 s, so the
lifetime must be well above that), and ``jti``. The header names the key (``kid``). Only HS256
under the current key verifies: ``alg: none``, another algorithm, another key, a bad signature,
an expired token or a damaged one is an AuthError that says which.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from sessionbase.auth.keys import SigningKey
from sessionbase.errors import AuthError

ISSUER = "sessionbase"
ALGORITHM = "HS256"
DEFAULT_TTL = 900  # seconds
MIN_TTL = 15  # the Convex client refreshes 10 s before expiry, and at once if less is left
MAX_TTL = 86_400
MAX_TOKEN_CHARS = 4096
LEEWAY = 5  # seconds of clock difference between replicas
REMEMBERED = 4096  # verified tokens kept by a ``Verifier``


@dataclass(frozen=True)
class TokenClaims:
    device_id: str
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int  # seconds since the epoch
    token_id: str
    kid: str


def issue(key: SigningKey, device_id: str, scopes: tuple[str, ...], ttl: int) -> TokenClaims:
    """New claims for a device (signed by ``encode``)."""
    now = int(time.time())
    return TokenClaims(device_id, scopes, now, now + ttl, secrets.token_hex(8), key.kid)


def encode(key: SigningKey, claims: TokenClaims) -> str:
    payload = {
        "iss": ISSUER,
        "sub": claims.device_id,
        "scopes": list(claims.scopes),
        "iat": claims.issued_at,
        "exp": claims.expires_at,
        "jti": claims.token_id,
    }
    return jwt.encode(payload, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})


def verify(key: SigningKey, token: str) -> TokenClaims:
    """The claims of a token this key signed, still valid; AuthError otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise AuthError("the token is not a sessionbase token (malformed)")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise AuthError("the token is not a sessionbase token (malformed)") from None
    if header.get("alg") != ALGORITHM:
        raise AuthError(f"the token's algorithm {header.get('alg')!r} is not accepted")
    if header.get("kid") != key.kid:
        raise AuthError(
            "the token was signed with another key (rotated, or another server's): fetch a new"
            " one at /auth/token"
        )
    try:
        payload = jwt.decode(
            token,
            key.secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "sub", "jti", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the token has expired: fetch a new one at /auth/token") from None
    except jwt.InvalidSignatureError:
        raise AuthError("the token's signature does not verify") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"the token is not valid: {exc}") from None
    scopes = payload.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise AuthError("the token is not valid: bad scopes claim")
    if not isinstance(payload["sub"], str):
        raise AuthError("the token is not valid: bad subject")
    return TokenClaims(
        payload["sub"],
        tuple(scopes),
        int(payload["iat"]),
        int(payload["exp"]),
        str(payload["jti"]),
        key.kid,
    )


class Verifier:
    """``verify`` that remembers the tokens it has verified: a client sends the same token with
    every request until it fetches the next one, and PyJWT's decoding costs about 100 µs
    each time. A remembered token is checked again for the key (a rotation refuses it) and
    for expiry, exactly as ``verify`` would; the least recently used are forgotten beyond
    ``size``. Whether its device still stands is the caller's to check, every time."""

    def __init__(self, size: int = REMEMBERED, clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self.clock = clock
        self._claims: OrderedDict[str, TokenClaims] = OrderedDict()

    def __len__(self) -> int:
        return len(self._claims)

    def verify(self, key: SigningKey, token: str) -> TokenClaims:
        claims = self._claims.get(token)
        if claims is None or claims.kid != key.kid:
            self._claims.pop(token, None)
            claims = verify(key, token)
            self._claims[token] = claims
            while len(self._claims) > self.size:
                self._claims.popitem(last=False)
            return claims
        if claims.expires_at <= self.clock() - LEEWAY:  # as PyJWT decides it
            del self._claims[token]
            raise AuthError("the token has expired: fetch a new one at /auth/token")
        self._claims.move_to_end(token)
        return claims

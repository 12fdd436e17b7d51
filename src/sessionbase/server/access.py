"""Who is asking, and may they use this route: the identity half of the request guard.

Every route declares what it needs (``declare``): ``public`` (anyone: health, the web app's
files, pairing, the token exchange, the sync socket, whose messages authenticate on their own),
``function`` (the live engine checks the scope of the function called), or a scope. The
guard resolves the caller once per request, puts it in ``scope["state"]["identity"]``, and
refuses a route's scope here; nothing after it decides again.

The caller is:
- a device, when the request carries ``Authorization: Bearer <token>`` (a bad one is a 401
  however the request arrived);
- the local owner (every scope), when the TCP peer is a loopback address, no proxy left its
  mark (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``, ``Via``, ``Tailscale-User-Login`` …)
  and ``Host`` names loopback, unless ``require_auth`` is set: a reverse proxy on the same
  machine (``tailscale serve``, Caddy) connects from loopback, but relays someone else;
- otherwise nobody known.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import Scope as AsgiScope

from sessionbase.auth.authority import Authority
from sessionbase.auth.scopes import ANONYMOUS, LOCAL, Identity, Scope
from sessionbase.errors import AuthError
from sessionbase.server.loopback import host_name, is_loopback

Access = Literal["public", "function"] | Scope
R = TypeVar("R", bound=BaseRoute)
ACCESS_ATTRIBUTE = "sessionbase_access"
PROXY_HEADERS = (
    "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port",
    "forwarded", "x-real-ip", "via", "true-client-ip", "cf-connecting-ip",
    "tailscale-user-login", "tailscale-user-name", "tailscale-user-profile-pic",
)  # fmt: skip


def declare(route: R, access: Access) -> R:
    """Mark what ``route`` needs; every route of the app must be marked."""
    setattr(route, ACCESS_ATTRIBUTE, access)
    return route


def access_of(route: BaseRoute) -> Access:
    access: Access | None = getattr(route, ACCESS_ATTRIBUTE, None)
    if access is None:
        raise TypeError(f"route {route!r} declares no access (server.access.declare)")
    return access


def is_local(scope: AsgiScope, headers: Headers) -> bool:
    """A request from this machine's owner: loopback peer, loopback Host, no proxy marks."""
    client = scope.get("client")
    if not client or not is_loopback(str(client[0])):
        return False
    if any(name in headers for name in PROXY_HEADERS):
        return False
    return is_loopback(host_name(headers.get("host", "").lower()))


class Gate:
    """Resolve the caller and apply each route's declared access."""

    def __init__(
        self, authority: Authority, routes: list[BaseRoute], *, require_auth: bool
    ) -> None:
        self.authority = authority
        self.routes = routes
        self.require_auth = require_auth
        for route in routes:
            access_of(route)  # fail at start, not on the first request

    def access(self, scope: AsgiScope) -> Access:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return access_of(route)
        return "public"  # the router answers 404

    def base_identity(self, scope: AsgiScope, headers: Headers) -> Identity:
        """Who the connection is before any token: the local owner or nobody."""
        if not self.require_auth and is_local(scope, headers):
            return LOCAL
        return ANONYMOUS

    async def admit(self, scope: AsgiScope, headers: Headers) -> Identity:
        """The caller, or AuthError / ScopeError when the route needs what it lacks."""
        access = self.access(scope)
        if access == "public":
            identity = self.base_identity(scope, headers)
        else:
            identity = await self.identify(scope, headers)
            if access != "function":
                identity.require(access, scope.get("path", "this route"))
        scope.setdefault("state", {})["identity"] = identity
        return identity

    async def identify(self, scope: AsgiScope, headers: Headers) -> Identity:
        authorization = headers.get("authorization")
        if authorization is None:
            return self.base_identity(scope, headers)
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise AuthError("Authorization must be `Bearer <token>` (a token from /auth/token)")
        identity = await self.authority.identify(token.strip())
        client = scope.get("client")
        self.authority.seen(identity, client[0] if client else None, headers.get("user-agent"))
        return identity


def identity_of(scope: AsgiScope) -> Identity:
    """The caller the gate resolved for this request (nobody, should it not have run)."""
    identity: Identity = scope.get("state", {}).get("identity", ANONYMOUS)
    return identity


def peer_address(scope: AsgiScope) -> str | None:
    """The TCP peer's address: never a header's claim."""
    client = scope.get("client")
    return str(client[0]) if client else None

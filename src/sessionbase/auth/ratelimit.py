"""Attempt limits for guessing pairing codes and secrets: per address and for everyone.

Token buckets: each address may try ``per_address`` times in a burst, then once every
``address_refill`` seconds; everyone together ``overall`` times, then once every
``overall_refill`` seconds. An IPv6 address counts by its /64 (one host usually holds the whole
prefix). The address is the TCP peer's, never a header: a forged ``X-Forwarded-For`` changes
nothing. Memory is bounded: at most ``max_addresses`` buckets are kept, the least recently
used ones dropped first (a dropped bucket forgets its address, which the overall bucket still
limits).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sessionbase.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass(frozen=True)
class Limits:
    per_address: int = 5
    address_refill: float = 12.0  # seconds per attempt: 5 a minute
    overall: int = 20
    overall_refill: float = 3.0  # 20 a minute
    max_addresses: int = 4096

    def guesses_within(self, seconds: float) -> int:
        """The most attempts everyone together can make in ``seconds``."""
        return self.overall + math.floor(seconds / self.overall_refill)


class AttemptLimiter:
    """``take(address)`` spends one attempt or raises RateLimited with when to retry."""

    def __init__(self, limits: Limits = Limits(), clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self.clock = clock
        self._addresses: OrderedDict[str, _Bucket] = OrderedDict()
        self._overall = _Bucket(float(limits.overall), clock())
        self.refused = 0

    def take(self, address: str | None) -> None:
        now = self.clock()
        key = address_key(address)
        bucket = self._addresses.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.limits.per_address), now)
            self._addresses[key] = bucket
            while len(self._addresses) > self.limits.max_addresses:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(key)
        mine = _refill(bucket, now, self.limits.per_address, self.limits.address_refill)
        if mine < 1:
            self.refused += 1
            raise RateLimited(
                "too many attempts from this address: try again later",
                retry_after=(1 - mine) * self.limits.address_refill,
            )
        everyone = _refill(self._overall, now, self.limits.overall, self.limits.overall_refill)
        if everyone < 1:
            self.refused += 1
            raise RateLimited(
                "too many attempts right now: try again later",
                retry_after=(1 - everyone) * self.limits.overall_refill,
            )
        bucket.tokens -= 1
        self._overall.tokens -= 1

    @property
    def tracked(self) -> int:
        """How many addresses it remembers (at most ``max_addresses``)."""
        return len(self._addresses)


def _refill(bucket: _Bucket, now: float, capacity: int, seconds_per_token: float) -> float:
    bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) / seconds_per_token)
    bucket.stamp = now
    return bucket.tokens


def address_key(address: str | None) -> str:
    """What an address counts as: itself, or its /64 for IPv6."""
    if not address:
        return "?"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)

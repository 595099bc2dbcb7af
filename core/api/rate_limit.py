"""Per-key rate limits for customer API keys: an in-process token bucket per key.

Each key may make ``METERLINE_CUSTOMER_KEY_RATE_PER_MINUTE`` requests a minute (default 600): its
bucket holds that many tokens, refills continuously at rate / 60 per second, and a request takes
one. An empty bucket answers how long until the next token, which the API sends as a 429 with
``Retry-After`` (whole seconds, rounded up). The buckets live in the process: N server processes
allow up to N times the rate, like the authorize reservations (README, "Customer API keys").
The clock is injectable (``monotonic``) so tests step time instead of sleeping.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from core.errors import ValidationError

RATE_SETTING = "METERLINE_CUSTOMER_KEY_RATE_PER_MINUTE"
DEFAULT_RATE_PER_MINUTE = 600
MAX_RATE_PER_MINUTE = 1_000_000
MAX_BUCKETS = 100_000  # keys remembered at once; the least recently used bucket goes (it was full anyway)


def rate_per_minute() -> int:
    """Requests a minute per customer key (the setting, default 600)."""
    raw = os.environ.get(RATE_SETTING, "").strip()
    if not raw:
        return DEFAULT_RATE_PER_MINUTE
    try:
        rate = int(raw)
    except ValueError:
        rate = 0
    if not 1 <= rate <= MAX_RATE_PER_MINUTE:
        raise ValidationError(
            f"{RATE_SETTING} must be whole requests from 1 to {MAX_RATE_PER_MINUTE:,}, not {raw!r}",
            code="bad_setting",
            field=RATE_SETTING,
        )
    return rate


@dataclass
class _Bucket:
    tokens: float
    at: float  # monotonic seconds of the last refill


class TokenBucketLimiter:
    """``take(key)``: None when the request may go, else the seconds until it could (thread-safe)."""

    def __init__(
        self,
        per_minute: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ):
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._monotonic = monotonic
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float | None:
        with self._lock:
            now = self._monotonic()
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(self._capacity, now)
            else:
                bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.at) * self._per_second)
                bucket.at = now
            self._buckets[key] = bucket  # most recently used last
            if len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0 - 1e-9:  # a refill of exactly one token may land a hair below 1.0
                bucket.tokens = max(0.0, bucket.tokens - 1.0)
                return None
            return (1.0 - bucket.tokens) / self._per_second


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` in whole seconds, rounded up and at least 1."""
    return str(max(1, math.ceil(wait_s)))

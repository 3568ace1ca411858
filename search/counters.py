"""Counters in the shared cache, for the rate limits of logins (views.accounts) and API tokens (services.tokens)."""

from __future__ import annotations

import contextlib

from django.core.cache import cache


def cache_count(key: str, window: int) -> int:
    """Count one under `key` (atomically: parallel requests never all slip under a limit), kept for two windows;
    the count so far, this one included."""
    cache.add(key, 0, 2 * window)
    try:
        taken = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, 2 * window)
        taken = 1
    cache.touch(key, 2 * window)  # the file cache's incr rewrites the entry with the default timeout
    return int(taken)


def cache_uncount(key: str) -> None:
    """Give one back (a refused attempt does not count)."""
    with contextlib.suppress(ValueError):  # gone already
        cache.decr(key)

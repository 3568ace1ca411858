"""Django's Redis cache with JSON values instead of pickles.

Django's `RedisCache` pickles every value but an int, and unpickles whatever it reads back: anyone who can
write to Redis could run code on every web and worker process. Fanout only caches JSON-shaped values (the
pilot's figures, the login counters), so this serializer stores JSON and refuses anything else, and a value
that does not parse as JSON (a pickle planted in the key space) reads as a miss, never as code.

Ints stay raw, as in Django's own serializer, so `incr`/`decr` stay atomic in Redis.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)


class JSONSerializer:
    """The `serializer` option of `django.core.cache.backends.redis.RedisCache` (OPTIONS)."""

    def dumps(self, obj: Any) -> int | bytes:
        if type(obj) is int:  # not bool: True must come back as True
            return obj
        return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()

    def loads(self, data: bytes) -> Any:
        try:
            return int(data)
        except ValueError:
            pass
        try:
            return json.loads(data)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError: not written by Fanout
            log.warning("cache: ignored a value that is not JSON (%d bytes)", len(bytes(data)))
            return None

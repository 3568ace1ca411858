"""The shared cache keeps JSON, never pickles: a value planted in Redis is never run (project/cache.py)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from project.cache import JSONSerializer
from project.cluster import ROOT


class Planted:
    """What an attacker with write access to Redis would store: unpickling it creates a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def through_redis(value: Any) -> Any:
    """What reading `value` back gives: Redis stores bytes, and an int as its decimal digits."""
    serializer = JSONSerializer()
    raw = serializer.dumps(value)
    return serializer.loads(raw if isinstance(raw, bytes) else str(raw).encode())


def test_the_serializer_keeps_json_values_and_raw_ints() -> None:
    pilot = {"per_cost": 0.25, "lower_bound": False, "per_fit": None, "fits": 4, "error": "boom"}
    assert through_redis(pilot) == pilot
    assert JSONSerializer().dumps(7) == 7 and through_redis(7) == 7  # raw, so Redis's INCR stays atomic
    assert through_redis(True) is True and through_redis("12") == "12" and through_redis(1.5) == 1.5
    assert through_redis(["fanout:stat", "x"]) == ["fanout:stat", "x"]
    serializer = JSONSerializer()
    assert serializer.dumps({"a": 1}) == b'{"a":1}'  # plain JSON bytes in Redis


def test_the_serializer_refuses_to_store_what_json_cannot_say(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        JSONSerializer().dumps(Planted(tmp_path / "x"))


def test_a_planted_pickle_is_read_as_a_miss_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Planted(marker), protocol=pickle.HIGHEST_PROTOCOL)
    assert JSONSerializer().loads(payload) is None
    assert not marker.exists()


def test_scaled_out_the_cache_is_configured_with_the_json_serializer() -> None:
    code = "import json, project.settings as s; print(json.dumps(s.CACHES['default']))"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SECRET_KEY": "x", "REDIS_URL": "redis://h:6379/0"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    config = json.loads(out.stdout)
    assert config["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert config["OPTIONS"]["serializer"] == "project.cache.JSONSerializer"


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the scale-out run)")
def test_a_pickle_planted_in_redis_is_never_run(tmp_path: Path) -> None:
    from django.core.cache import cache

    marker = tmp_path / "pwned"
    key = f"fanout-test-planted:{os.getpid()}"
    redis = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # the raw redis-py client
    try:
        redis.set(cache.make_key(key), pickle.dumps(Planted(marker), protocol=pickle.HIGHEST_PROTOCOL))
        assert cache.get(key) is None
        assert cache.get_many([key]) == {key: None}
        assert not marker.exists()
        cache.set(key, {"per_cost": 0.5, "error": None})
        assert json.loads(redis.get(cache.make_key(key))) == {"per_cost": 0.5, "error": None}  # JSON in Redis
        assert cache.get(key) == {"per_cost": 0.5, "error": None}
        cache.set(key, 1)
        assert cache.incr(key) == 2 and cache.get(key) == 2
    finally:
        cache.delete(key)

"""Small typed readers for settings from the environment; they fail loudly on a bad value.

Every variable read through these helpers is recorded in `READ`, and a test checks that each one is
documented in `.env.example`.
"""

from __future__ import annotations

import os

READ: set[str] = set()


class EnvError(ValueError):
    pass


def env_str(name: str, default: str = "") -> str:
    READ.add(name)
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise EnvError(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int) -> int:
    raw = env_str(name, "").strip()
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise EnvError(f"{name}={raw!r}: expected an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name, "").strip()
    return [part.strip() for part in raw.split(",") if part.strip()] if raw else default

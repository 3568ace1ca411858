"""The machine's processes, read from /proc: pure Python, for the cluster's stop, the runner pool and tests."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    zombie: bool


def processes() -> dict[int, Proc]:
    """Every process of the machine, from /proc (empty where there is no /proc)."""
    found: dict[int, Proc] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[-1].split()
            except OSError:
                continue  # it just ended
            found[int(entry)] = Proc(int(entry), int(fields[1]), int(fields[2]), fields[0] == "Z")
    return found

"""The one error of a spec that cannot run, shared by the modules that parse and check one."""

from __future__ import annotations


class SpecError(ValueError):
    """A spec that cannot run. `field` is a dotted path such as `param_grid[1].C`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

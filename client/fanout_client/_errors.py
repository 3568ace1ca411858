"""The client's exceptions: what the server answered, and what could not be sent to it."""

from __future__ import annotations


class FanoutError(Exception):
    """An error answered by the Fanout server: its HTTP `status`, its `detail` and the `field` at fault
    (the spec key, form field or query parameter; None when none is)."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.field = field
        where = f"{field}: " if field else ""
        super().__init__(f"{where}{detail} (HTTP {status})")


class FanoutSpecError(FanoutError, ValueError):
    """The server refused a search or a data set (HTTP 400); the message names the field at fault, so
    `pytest.raises(ValueError)` catches it as it catches scikit-learn's own parameter errors."""


class NotSendableError(ValueError, TypeError):
    """Something `fit` cannot send to Fanout (a custom class, a callable, an object as a parameter value…),
    raised before anything is uploaded. Both a ValueError and a TypeError, as scikit-learn raises either
    for the same kinds of mistake."""

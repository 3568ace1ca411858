"""Uploads refused by size before they are read: the request's Content-Length first, then the file bytes as
they arrive (a request may declare a small body and still carry a file over the limit within it)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

# What a legitimate upload form adds to its file (boundaries, part headers, the target, name and CSRF fields).
FORM_ALLOWANCE = 1024 * 1024


def human_size(n_bytes: int) -> str:
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def max_upload_bytes() -> int:
    return int(settings.FANOUT_MAX_UPLOAD_MB) * 1024 * 1024


def declared_length(request: HttpRequest) -> int:
    """The body size the client declared (Django reads no more than this; 0 when absent or malformed)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


class UploadLimit(FileUploadHandler):
    """First in `request.upload_handlers`: counts the file bytes of a multipart body as they are parsed and
    stops reading the request (StopUpload, connection reset: the rest is never read) once they pass
    `limit`. The view asks `exceeded` after parsing and refuses the file; nothing of it is kept."""

    def __init__(self, limit: int, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False
        self.file_name = ""

    def _stop(self) -> None:
        self.exceeded = True
        raise StopUpload(connection_reset=True)

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.file_name = str(self.file_name or "")
        if self.content_length is not None and self.received + self.content_length > self.limit:
            self._stop()  # the part says its own size

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self._stop()
        return raw_data  # on to the next handler, which keeps the file

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler makes the file object


def declared_over_limit(request: HttpRequest) -> str | None:
    """Why an upload whose declared body is over the limit is refused before one byte of it is read; None when
    the declared size is within it (the body is then guarded as it streams in: `guard_upload`)."""
    sent = declared_length(request)
    if sent <= max_upload_bytes() + FORM_ALLOWANCE:
        return None
    return (
        f"This upload is {human_size(sent)} ({sent} bytes); the limit is {settings.FANOUT_MAX_UPLOAD_MB} MB "
        "(FANOUT_MAX_UPLOAD_MB). Nothing was read or stored."
    )


def guard_upload(request: HttpRequest) -> UploadLimit:
    """Put an `UploadLimit` first among the request's upload handlers (before its body is parsed)."""
    guard = UploadLimit(max_upload_bytes(), request)
    request.upload_handlers.insert(0, guard)
    return guard


def over_limit(guard: UploadLimit) -> str:
    """Why a file that passed the limit as it streamed in was refused."""
    return (
        f"{guard.file_name!r} is over the limit: reading stopped at {human_size(guard.received)} "
        f"({guard.received} bytes); the limit is {settings.FANOUT_MAX_UPLOAD_MB} MB (FANOUT_MAX_UPLOAD_MB). "
        "Nothing was stored."
    )

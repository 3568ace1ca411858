"""A stored file handed out as a download: streamed from its storage, never read whole into memory."""

from __future__ import annotations

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404


def stored_download(stored: FieldFile, filename: str, content_type: str = "application/octet-stream") -> FileResponse:
    """`stored` as an attachment named `filename`; 404 when its storage has lost it."""
    if not stored:
        raise Http404("no such file")
    try:
        handle = stored.open("rb")
    except FileNotFoundError:
        raise Http404(f"the file {stored.name} is missing from its storage") from None
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)

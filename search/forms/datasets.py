"""The upload form for a CSV file or a NumPy .npz: `clean()` parses the file so every problem lands on the field
it is about."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from search.engine import datasets
from search.uploads import human_size, max_upload_bytes

# Browsers label CSV files inconsistently (Excel on Windows says application/vnd.ms-excel); anything else
# that is not text/* is refused. The real check is that the bytes parse as UTF-8 CSV.
TEXT_LIKE_TYPES = {
    "",
    "application/csv",
    "application/x-csv",
    "application/vnd.ms-excel",
    "application/octet-stream",
}
# What browsers send an .npz as (a zip archive); the real check is that it reads as one (engine.datasets.read_npz).
ZIP_LIKE_TYPES = {"", "application/octet-stream", "application/zip", "application/x-zip-compressed"}


class DatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Optional; defaults to the file name.", strip=True)
    file = forms.FileField(
        label="CSV or .npz file",
        allow_empty_file=True,  # an empty file gets read_csv's message, which says what is needed
        error_messages={"required": "no file came in; choose a .csv file with a header row or an .npz archive"},
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,.npz"}),
    )
    target = forms.CharField(
        max_length=200,
        required=False,  # for a CSV only: its clean() says when it is missing
        label="Target column",
        help_text="CSV only: the header name of the column to predict; every other column must be numeric. An .npz "
        "holds arrays X, y and optionally groups, so it has none.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.FANOUT_MAX_UPLOAD_MB
        file_field = self.fields["file"]
        file_field.help_text = (
            f"A UTF-8 .csv file with a header row, or a NumPy .npz (np.savez(file, X=X, y=y), optionally "
            f"groups=groups), at most {limit} MB."
        )
        file_field.widget.attrs["data-max-bytes"] = str(max_upload_bytes())

    @classmethod
    def refused(cls, message: str) -> DatasetUploadForm:
        """An empty form showing why an upload was refused before it was read (on the file field)."""
        form = cls()
        form.cleaned_data = {}
        form.add_error("file", message)
        return form

    def clean_file(self) -> UploadedFile[bytes]:
        uploaded: UploadedFile[bytes] = self.cleaned_data["file"]
        filename = uploaded.name or ""
        content_type = (uploaded.content_type or "").split(";")[0].strip().lower()
        if filename.lower().endswith(".npz"):
            if content_type not in ZIP_LIKE_TYPES:
                raise forms.ValidationError(f"{filename!r} was sent as {content_type!r}; expected an .npz archive")
        elif not filename.lower().endswith(".csv"):
            raise forms.ValidationError(
                f"{filename!r} does not end in .csv or .npz; expected a .csv file or a NumPy .npz archive"
            )
        elif not (content_type.startswith("text/") or content_type in TEXT_LIKE_TYPES):
            raise forms.ValidationError(f"{filename!r} was sent as {content_type!r}, not text; expected a .csv file")
        size = uploaded.size or 0
        if size > max_upload_bytes():
            raise forms.ValidationError(
                f"{filename!r} is {human_size(size)} ({size} bytes); "
                f"the limit is {settings.FANOUT_MAX_UPLOAD_MB} MB (FANOUT_MAX_UPLOAD_MB)"
            )
        return uploaded

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        uploaded: UploadedFile[bytes] | None = cleaned.get("file")
        if uploaded is None:  # missing or refused above: nothing to parse
            return cleaned
        target: str = cleaned.get("target") or ""
        uploaded.seek(0)
        content = b"".join(uploaded.chunks())
        npz = (uploaded.name or "").lower().endswith(".npz")
        if npz and target:
            self.add_error("target", "target is for CSV files; an .npz names its target array y")
            return cleaned
        if not npz and not target:
            self.add_error("target", "no target column came in; give the header name of the column to predict")
        try:
            # Without a target the file's own problems (encoding, empty) are still reported.
            data = datasets.read_npz(content) if npz else datasets.read_csv(content, target)
        except datasets.DatasetError as exc:
            message = str(exc)
            if message.startswith("target column"):
                if target:  # else the target field already says it is missing
                    self.add_error("target", message)
            else:
                self.add_error("file", f"{uploaded.name}: {message}")
            return cleaned
        if self.errors:
            return cleaned
        cleaned["content"] = content
        cleaned["data"] = data
        cleaned["filename"] = uploaded.name or ""
        cleaned["name"] = cleaned.get("name") or cleaned["filename"]
        return cleaned

    def upload_args(self) -> dict[str, Any]:
        """Keyword arguments for `services.datasets.dataset_upload_file` (call after `is_valid()`)."""
        data = self.cleaned_data
        keys = ("name", "content", "target", "filename", "data")
        return {k: data[k] for k in keys}

"""Data set rows: from a spec's `dataset` (bundled, generated, a CSV file read now, or `{"id": N}`: one the
owner uploaded), from an upload (a CSV file or a NumPy .npz), and their deletion while no search uses them.

A CSV's key is its bytes and its target column (`csv_key`), so a search on the same bytes and target finds
the uploaded row; an .npz's key is the sha256 of its bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import ProtectedError

from search.engine import datasets
from search.engine import spec as spec_mod
from search.engine.run import load_data
from search.engine.spec import SpecError
from search.models import Dataset
from search.selectors.datasets import owner_dataset


def _key(payload: Any) -> str:
    return datasets.sha256(json.dumps(payload, sort_keys=True).encode())


def dataset_key(ds: spec_mod.DatasetSpec) -> str:
    """The key of a bundled or generated data set (CSV keys hash the file's bytes instead)."""
    return _key({"name": ds.name, "options": dict(ds.options)})


def dataset_get_or_create(*, ds: spec_mod.DatasetSpec, owner: Any = None, base_dir: Path | None = None) -> Dataset:
    """The Dataset row for a spec's `dataset`; a CSV path is read now and its bytes stored."""
    return dataset_with_data(ds, owner, base_dir)[0]


@dataclass(frozen=True)
class LoadedData:
    """A spec's data read, parsed or generated, and what its Dataset row is made of; nothing stored yet
    (`dataset`: the existing row a spec's `{"id": N}` named)."""

    data: datasets.Data
    key: str
    name: str
    kind: str
    source: dict[str, Any]
    content: bytes | None = None  # a CSV file's bytes
    dataset: Dataset | None = None


def _load_row(dataset: Dataset) -> LoadedData:
    try:
        data = load_data(dataset.data_source())
    except (datasets.DatasetError, OSError) as exc:  # a row stored by an older version, or a cache unwritable
        raise SpecError("dataset.id", f"data set {dataset.pk} ({dataset.name}) cannot be loaded: {exc}") from None
    return LoadedData(
        data=data, key=dataset.key, name=dataset.name, kind=dataset.kind, source=dict(dataset.source), dataset=dataset
    )


def dataset_load(ds: spec_mod.DatasetSpec, base_dir: Path | None, owner: Any = None) -> LoadedData:
    """Read a CSV file (or load bundled data, or generate it, or load the owner's data set a spec's `{"id": N}`
    names) and parse it, without writing to the database: the slow part of a search's creation, run before any
    transaction takes the write lock (docs/traps.md, sqlite locking). Raises SpecError naming the field."""
    if ds.id is not None:
        return _load_row(owner_dataset(owner=owner, dataset_id=ds.id))
    if ds.csv is not None:
        path = Path(ds.csv)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            content = _read_csv_bytes(path)
        except OSError as exc:
            raise SpecError("dataset.csv", f"cannot read {str(path)!r}: {exc.strerror}") from None
        try:
            data = datasets.read_csv(content, ds.target or "")
        except datasets.DatasetError as exc:
            raise SpecError("dataset.csv", f"{path.name}: {exc}") from None
        return LoadedData(
            data=data, key=csv_key(content, ds.target or ""), name=path.name, kind=Dataset.Kind.CSV,
            source={"target": ds.target, "filename": path.name}, content=content,
        )  # fmt: skip
    kind = Dataset.Kind.BUILTIN if ds.name in datasets.BUILTIN else Dataset.Kind.GENERATOR
    source = {"name": ds.name, "options": dict(ds.options)}
    try:
        data = load_data({"kind": kind, **source})
    except datasets.DatasetError as exc:  # a generator's own check of its options (n_samples=-1, …)
        raise SpecError("dataset.options", str(exc)) from None
    label = str(ds.name) if not ds.options else f"{ds.name}({', '.join(f'{k}={v}' for k, v in ds.options.items())})"
    return LoadedData(data=data, key=dataset_key(ds), name=label[:200], kind=kind, source=source)


def dataset_store(loaded: LoadedData, owner: Any) -> Dataset:
    """The owner's row for loaded data: the existing one with its key, or a new one. A short write (call it
    inside the transaction that stores what uses the row); never loads an existing row's CSV bytes. A row named by
    id is that row, never a copy."""
    if loaded.dataset is not None:
        return loaded.dataset
    found = Dataset.objects.filter(key=loaded.key, owner=owner).defer("content").first()
    if found:
        return found
    return Dataset.objects.create(
        name=loaded.name, kind=loaded.kind, source=loaded.source, content=loaded.content, key=loaded.key,
        n_samples=loaded.data.n_samples, n_features=loaded.data.n_features, owner=owner,
    )  # fmt: skip


def dataset_with_data(ds: spec_mod.DatasetSpec, owner: Any, base_dir: Path | None) -> tuple[Dataset, datasets.Data]:
    """The row and its rows, built once (a 200 MB generator is not generated twice per search)."""
    loaded = dataset_load(ds, base_dir, owner=owner)
    return dataset_store(loaded, owner), loaded.data


def _read_csv_bytes(path: Path) -> bytes:
    """A CSV named in a spec file, under the upload limit too; read no further than the limit, and only
    from a regular file (a FIFO, /dev/zero or /dev/stdin would hang the command or fill its memory)."""
    if path.exists() and not path.is_file():
        raise SpecError("dataset.csv", f"{str(path)!r} is not a regular file; give the path of a .csv file")
    limit_mb = settings.FANOUT_MAX_UPLOAD_MB
    with path.open("rb") as f:
        content = f.read(limit_mb * 1024 * 1024 + 1)
    if len(content) > limit_mb * 1024 * 1024:
        raise SpecError(
            "dataset.csv", f"{path.name} is over {limit_mb} MB; the limit is {limit_mb} MB (FANOUT_MAX_UPLOAD_MB)"
        )
    return content


class DatasetInUse(Exception):
    """A data set that searches still reference (`Search.dataset` is PROTECT); the message names them."""

    def __init__(self, dataset: Dataset, search_ids: list[int]) -> None:
        self.dataset = dataset
        self.search_ids = search_ids
        n = len(search_ids)
        ids = ", ".join(str(i) for i in search_ids)
        super().__init__(
            f"{dataset.name!r} is used by {n} search{'es' if n != 1 else ''} (id{'s' if n != 1 else ''} {ids}); "
            "delete those searches first"
        )


def csv_key(content: bytes, target: str) -> str:
    """The key of a CSV data set: its bytes and its target column (as in `dataset_get_or_create`)."""
    return datasets.sha256(content + b"\0" + target.encode())


def dataset_upload(
    *, owner: Any, name: str, content: bytes, target: str, filename: str = "", data: datasets.Data | None = None
) -> tuple[Dataset, bool]:
    """The Dataset row for uploaded CSV bytes, and whether it is new (False: this user already has that key).

    `data` is `read_csv(content, target)` when the caller has parsed it already (the upload form has).
    Raises `datasets.DatasetError` when the bytes do not parse with that target column.
    """
    if data is None:
        data = datasets.read_csv(content, target)
    key = csv_key(content, target)
    found = Dataset.objects.filter(key=key, owner=owner).defer("content").order_by("created_at", "id").first()
    if found is not None:
        return found, False
    dataset = Dataset.objects.create(
        name=(name or filename or "upload.csv")[:200],
        kind=Dataset.Kind.CSV,
        source={"target": target, "filename": filename or name},
        content=content,
        key=key,
        n_samples=data.n_samples,
        n_features=data.n_features,
        owner=owner,
    )
    return dataset, True


class TargetRefused(datasets.DatasetError):
    """A `target` that does not go with the file: none for a CSV file, or one for an .npz."""


def dataset_upload_file(
    *, owner: Any, name: str, content: bytes, filename: str, target: str = "", data: datasets.Data | None = None
) -> tuple[Dataset, bool]:
    """The Dataset row for an uploaded file, and whether it is new: a CSV file (by its name's suffix, with the
    `target` column: `dataset_upload`) or a NumPy .npz of arrays X, y and optionally groups (no target: its
    target is the array y). Deduplicated per owner by key, as `dataset_upload` does (an .npz's key is the sha256
    of its bytes). `data` is the file already parsed by the caller (the upload form has).
    Raises `TargetRefused` (a `datasets.DatasetError`) for a missing or unneeded target, and `datasets.DatasetError`
    for another suffix or bytes that do not parse."""
    suffix = Path(filename or name).suffix.lower()
    if suffix == ".csv":
        if not target:
            raise TargetRefused("a CSV file needs its target column (the header name of the column to predict)")
        return dataset_upload(owner=owner, name=name, content=content, target=target, filename=filename, data=data)
    if suffix != ".npz":
        raise datasets.DatasetError(
            f"{filename or name!r} is neither a .csv nor an .npz file; upload a CSV file with a header row, or a "
            "NumPy .npz archive (np.savez(file, X=X, y=y))"
        )
    if target:
        raise TargetRefused("target is for CSV files; an .npz names its target array y")
    if data is None:
        data = datasets.read_npz(content)
    key = datasets.sha256(content)
    found = Dataset.objects.filter(key=key, owner=owner).defer("content").order_by("created_at", "id").first()
    if found is not None:
        return found, False
    dataset = Dataset.objects.create(
        name=(name or filename or "upload.npz")[:200], kind=Dataset.Kind.NPZ,
        source={"filename": filename or name, "groups": data.groups is not None}, content=content, key=key,
        n_samples=data.n_samples, n_features=data.n_features, owner=owner,
    )  # fmt: skip
    return dataset, True


def dataset_create_from_upload(*, owner: Any, name: str, content: bytes, target: str) -> Dataset:
    """A CSV data set from uploaded bytes; the existing row if this user already has the same bytes + target."""
    dataset, _ = dataset_upload(owner=owner, name=name, content=content, target=target, filename=name)
    return dataset


def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a data set; raises `DatasetInUse` when a search references it."""
    with transaction.atomic():
        search_ids = sorted(dataset.searches.values_list("pk", flat=True))
        if search_ids:
            raise DatasetInUse(dataset, search_ids)
        try:
            dataset.delete()
        except ProtectedError:  # a search was created in between
            raise DatasetInUse(dataset, sorted(dataset.searches.values_list("pk", flat=True))) from None

"""Data set rows: uploads of a CSV file or an .npz, and a spec's `{"id": N}` resolved to the owner's row only."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User

from search.engine import datasets
from search.engine.spec import DatasetSpec, SpecError
from search.models import Dataset, Search
from search.services.datasets import csv_key, dataset_load, dataset_upload_file
from search.services.estimates import estimate_plan
from search.services.searches import plan_check_data, plan_search, search_create
from tests.conftest import create_search

pytestmark = pytest.mark.django_db

CSV = b"a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"


def npz_bytes(**arrays: Any) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


NPZ = npz_bytes(X=np.arange(20.0).reshape(10, 2), y=np.array([0, 1] * 5), groups=np.repeat(np.arange(5), 2))
SPEC = {"estimator": "LogisticRegression", "cv": 2}


def upload_npz(owner: User, content: bytes = NPZ, name: str = "") -> Dataset:
    return dataset_upload_file(owner=owner, name=name, content=content, filename="arrays.npz")[0]


def test_an_npz_upload_is_stored_with_its_shape_groups_and_content_key(owner: User) -> None:
    dataset, created = dataset_upload_file(owner=owner, name="", content=NPZ, filename="arrays.npz")
    assert created and dataset.kind == Dataset.Kind.NPZ and dataset.name == "arrays.npz"
    assert (dataset.n_samples, dataset.n_features, dataset.key) == (10, 2, datasets.sha256(NPZ))
    assert dataset.source == {"filename": "arrays.npz", "groups": True} and dataset.has_groups
    assert bytes(dataset.content or b"") == NPZ
    source = dataset.data_source()
    assert source["kind"] == "npz" and source["path"].endswith(f"{dataset.key}.npz")
    again, created_again = dataset_upload_file(owner=owner, name="again", content=NPZ, filename="copy.npz")
    assert again == dataset and not created_again  # the same bytes: the row this user has


def test_the_same_npz_of_two_users_is_two_rows(owner: User, other: User) -> None:
    assert upload_npz(owner) != upload_npz(other)
    assert Dataset.objects.count() == 2


def test_a_csv_upload_goes_through_the_csv_path(owner: User) -> None:
    dataset, created = dataset_upload_file(owner=owner, name="pts", content=CSV, filename="pts.CSV", target="y")
    assert created and dataset.kind == Dataset.Kind.CSV and dataset.key == csv_key(CSV, "y")
    assert dataset.source == {"target": "y", "filename": "pts.CSV"} and not dataset.has_groups


@pytest.mark.parametrize(
    ("filename", "content", "target", "message"),
    [
        ("data.txt", CSV, "y", "'data.txt' is neither a .csv nor an .npz file"),
        ("data", CSV, "y", "is neither a .csv nor an .npz file"),
        ("data.npz", NPZ, "y", "target is for CSV files; an .npz names its target array y"),
        ("data.csv", CSV, "", "a CSV file needs its target column"),
        ("data.csv", CSV, "label", "target column 'label' not in the header"),
        ("data.npz", CSV, "", "not an .npz archive"),
        ("data.npz", npz_bytes(X=np.zeros((2, 2)), y=np.array([1, None], dtype=object)), "", "Python objects"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(
    owner: User, filename: str, content: bytes, target: str, message: str
) -> None:
    with pytest.raises(datasets.DatasetError, match=message):
        dataset_upload_file(owner=owner, name="", content=content, filename=filename, target=target)
    assert not Dataset.objects.exists()


def test_an_id_loads_the_owners_row(owner: User) -> None:
    dataset = upload_npz(owner)
    loaded = dataset_load(DatasetSpec(id=dataset.pk), None, owner=owner)
    assert loaded.dataset == dataset and loaded.key == dataset.key and loaded.kind == "npz"
    assert loaded.data.groups is not None and loaded.data.n_samples == 10


def test_another_users_id_reads_as_an_unknown_one(owner: User, other: User) -> None:
    theirs = upload_npz(other)
    missing = theirs.pk + 100
    messages = []
    for dataset_id in (theirs.pk, missing):
        with pytest.raises(SpecError) as info:
            create_search({**SPEC, "dataset": {"id": dataset_id}}, owner=owner)
        assert info.value.field == "dataset.id"
        messages.append(info.value.message.replace(str(dataset_id), "N"))
    assert messages[0] == messages[1] == "no data set N among yours"  # the same words: nothing about the other row
    assert not Search.objects.exists() and Dataset.objects.count() == 1


def test_an_id_without_an_owner_is_refused_with_how_to_give_one(other: User) -> None:
    theirs = upload_npz(other)
    with pytest.raises(SpecError) as info:
        create_search({**SPEC, "dataset": {"id": theirs.pk}})
    assert info.value.field == "dataset.id" and "--owner USERNAME" in info.value.message


def test_a_search_by_id_uses_the_row_itself(owner: User) -> None:
    dataset = upload_npz(owner)
    search = create_search({**SPEC, "dataset": {"id": dataset.pk}, "cv": {"n_splits": 5, "groups": True}}, owner=owner)
    assert search.dataset_id == dataset.pk and Dataset.objects.count() == 1
    assert search.spec["dataset"] == {"id": dataset.pk} and search.stored.cv.groups
    assert search.n_splits == 5 and search.n_fits == 5


def test_group_folds_on_a_data_set_without_groups_are_refused_when_it_is_loaded(owner: User) -> None:
    plain = upload_npz(owner, npz_bytes(X=np.zeros((6, 1)), y=np.array([0, 1] * 3)))
    assert not plain.has_groups
    with pytest.raises(SpecError) as info:
        create_search({**SPEC, "dataset": {"id": plain.pk}, "cv": {"n_splits": 2, "groups": True}}, owner=owner)
    assert info.value.field == "cv.groups"
    with pytest.raises(SpecError) as builtin:
        create_search({**SPEC, "dataset": "iris", "cv": {"n_splits": 2, "groups": True}})
    assert builtin.value.field == "cv.groups" and not Search.objects.exists()


def test_splits_out_of_range_for_the_data_set_are_refused_on_cv_splits(owner: User) -> None:
    dataset = upload_npz(owner)
    spec = {**SPEC, "dataset": {"id": dataset.pk}, "cv": {"splits": [[[0, 1, 2, 3], [10]]]}}
    with pytest.raises(SpecError) as info:
        create_search(spec, owner=owner)
    assert info.value.field == "cv.splits" and "fold 0 names row 10" in info.value.message


def test_the_live_check_and_the_estimate_resolve_the_id_for_its_owner_only(owner: User, other: User) -> None:
    dataset = upload_npz(owner)
    plan = plan_search({**SPEC, "dataset": {"id": dataset.pk}, "cv": {"n_splits": 6, "groups": True}})
    with pytest.raises(SpecError) as info:  # 5 groups for 6 folds, found before anything is stored
        plan_check_data(plan, owner=owner)
    assert info.value.field == "cv.n_splits" and "the data set has 5" in info.value.message
    with pytest.raises(SpecError) as theirs:
        plan_check_data(plan, owner=other)
    assert theirs.value.message == f"no data set {dataset.pk} among yours"
    good = plan_search({**SPEC, "dataset": {"id": dataset.pk}, "cv": {"n_splits": 5, "groups": True}})
    checked = plan_check_data(good, owner=owner)
    assert checked is not None and checked.n_samples == 10
    assert estimate_plan(plan=good, owner=owner, data_plan=checked).fits == 5
    assert estimate_plan(plan=good, owner=other).fits == 5  # no row of theirs: estimated without it, no error
    assert estimate_plan(plan=good).fits == 5


def test_search_create_with_an_id_never_takes_another_users_row_even_by_key(owner: User, other: User) -> None:
    mine, theirs = upload_npz(owner), upload_npz(other)
    assert mine.key == theirs.key
    search = search_create(plan=plan_search({**SPEC, "dataset": {"id": mine.pk}}), owner=owner, enqueue=False)
    assert search.dataset_id == mine.pk

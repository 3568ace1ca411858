"""Fit keys only for fits that repeat: every `random_state` pinned to an integer, a seeded split and
subsample, and the path-reuse setting part of the key. No database."""

from __future__ import annotations

from typing import Any

import pytest

from search.engine import registry
from search.engine.reuse import fit_keys, reproducible


def steps(*names: str) -> list[tuple[str, str]]:
    return [(name, registry.lookup(name).module) for name in names]


def job(names: tuple[str, ...], fixed: dict[str, Any], grid: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "steps": [list(s) for s in steps(*names)], "params": fixed,
        "data": {"kind": "builtin", "name": "iris", "key": "abc"},
        "cv": {"n_splits": 2, "shuffle": False, "random_state": None}, "scoring": None, "n_jobs": -1,
        "return_train_score": False, "cells": [[c, f, p] for c, p in enumerate(grid) for f in range(2)],
        "cluster_workers": 1, "subsample": None, "path_reuse": True,
    }  # fmt: skip
    out.update(changes)
    return out


@pytest.mark.parametrize(
    ("names", "params", "expected"),
    [
        (("ExtraTreesClassifier",), {}, False),  # random_state=None: a fresh fit differs
        (("ExtraTreesClassifier",), {"random_state": None}, False),
        (("ExtraTreesClassifier",), {"random_state": True}, False),  # a bool is not a seed
        (("ExtraTreesClassifier",), {"random_state": 0}, True),
        (("ExtraTreesClassifier",), {"random_state": 7, "n_estimators": 5}, True),
        (("KNeighborsClassifier",), {}, True),  # no random_state at all: deterministic
        (("LogisticRegression",), {}, False),  # has random_state (sag, saga, liblinear): it must be pinned
        (("LogisticRegression",), {"random_state": 0}, True),
        (("StandardScaler", "LogisticRegression"), {}, False),
        (("StandardScaler", "LogisticRegression"), {"logisticregression__random_state": 0}, True),
        (("PCA", "ExtraTreesClassifier"), {"extratreesclassifier__random_state": 0}, False),  # PCA's is not
        (("PCA", "ExtraTreesClassifier"), {"pca__random_state": 1, "extratreesclassifier__random_state": 0}, True),
        (("BaggingClassifier",), {"random_state": 0}, True),  # its default trees take their seeds from it
        (("ExtraTreesClassifier",), {"no_such_parameter": 1}, False),  # cannot be built: nothing to vouch for
    ],
)
def test_reproducible_only_when_every_random_state_is_an_integer(
    names: tuple[str, ...], params: dict[str, Any], expected: bool
) -> None:
    assert reproducible(steps(*names), params) is expected


def test_unseeded_random_estimators_have_no_fit_keys() -> None:
    grid = [{"n_estimators": 3}, {"n_estimators": 5}]
    assert fit_keys(job(("ExtraTreesClassifier",), {}, grid)) == {}
    seeded = fit_keys(job(("ExtraTreesClassifier",), {"random_state": 0}, grid))
    assert sorted(seeded) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # the seed may come from the candidate: only the seeded candidates get keys
    mixed = fit_keys(job(("ExtraTreesClassifier",), {}, [{"random_state": 0}, {"random_state": None}]))
    assert sorted(mixed) == [(0, 0), (0, 1)]
    # a candidate cannot unpin the fixed seed and keep its key
    unpinned = fit_keys(
        job(("ExtraTreesClassifier",), {"random_state": 0}, [{"n_estimators": 3, "random_state": None}])
    )
    assert unpinned == {}
    # deterministic estimators keep their keys without any seed
    assert len(fit_keys(job(("KNeighborsClassifier",), {}, [{"n_neighbors": 3}, {"n_neighbors": 5}]))) == 4


def test_an_unseeded_shuffled_split_or_subsample_has_no_fit_keys() -> None:
    seeded = ("ExtraTreesClassifier",), {"random_state": 0}, [{"n_estimators": 3}]
    assert len(fit_keys(job(*seeded))) == 2
    assert fit_keys(job(*seeded, cv={"n_splits": 2, "shuffle": True, "random_state": None})) == {}
    assert len(fit_keys(job(*seeded, cv={"n_splits": 2, "shuffle": True, "random_state": 3}))) == 2
    assert fit_keys(job(*seeded, subsample={"fraction": 0.5, "random_state": None})) == {}
    assert len(fit_keys(job(*seeded, subsample={"fraction": 0.5, "random_state": 0}))) == 2


def test_the_path_reuse_setting_is_part_of_the_key() -> None:
    spec = ("RandomForestClassifier",), {"random_state": 0}, [{"n_estimators": 3}, {"n_estimators": 7}]
    grown = fit_keys(job(*spec))
    alone = fit_keys(job(*spec, path_reuse=False))
    assert len(grown) == len(alone) == 4
    assert not set(grown.values()) & set(alone.values())
    assert fit_keys(job(*spec, path_reuse=False)) == alone

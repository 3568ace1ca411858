"""The model of a search: the refit's files kept in the "models" storage with a JSON card, stored once.

The runner writes the refitted model as a skops file and a joblib file into a local directory
(engine.refit); this module moves them into the storage (files under FANOUT_MODEL_DIR by default, or any
Django storage such as an S3 bucket: settings.STORAGES["models"]), builds the card, and records the model,
the refit time and the held-out scores in one transaction, only while the refit's attempt still holds its unit.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from search.models import Candidate, FittedModel, Search, Status, WorkUnit, model_storage

LOAD_HINT = "skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path)) after checking that list"


def model_card(
    *, search: Search, candidate: Candidate, refit: dict[str, Any], holdout: dict[str, Any] | None
) -> dict[str, Any]:
    """What the model is: estimator and parameters, data set and its hash, CV and held-out scores, versions,
    size. Written beside the model files and kept on the row."""
    spec = search.stored
    dataset = search.dataset
    return {
        "search": search.pk,
        "name": search.name,
        "estimator": search.estimator,
        "steps": search.steps,
        "task": search.task,
        "candidate": candidate.index,
        "params": {**spec.params, **candidate.params},
        "dataset": {
            "id": dataset.pk,
            "name": dataset.name,
            "kind": dataset.kind,
            "sha256": dataset.key,
            "n_samples": dataset.n_samples,
            "feature_names": refit["feature_names"],
            "target": refit["target_name"],
        },
        "classes": refit["classes"],
        "cv": {
            "n_splits": search.n_splits,
            "refit_metric": search.refit_metric,
            "mean_test": candidate.mean_test,
            "std_test": candidate.std_test,
            "rank_test": candidate.rank_test,
        },
        "holdout": holdout,
        "n_train": refit["n_train"],
        "refit_time": refit["refit_time"],
        "versions": refit["versions"],
        "format": "skops",
        "size": refit["skops_size"],
        "sha256": refit["skops_sha256"],
        "joblib_size": refit["joblib_size"],
        "load": LOAD_HINT,
        "created_at": timezone.now().isoformat(),
    }


def _save(name: str, path: Path) -> str:
    with path.open("rb") as fh:
        return model_storage().save(name, File(fh, name=path.name))


def model_store(*, unit: WorkUnit, candidate: Candidate, refit: dict[str, Any]) -> bool:
    """Keep the refit's files and card, and close the refit unit, once. False (and nothing kept) when the
    attempt no longer holds the unit: cancelled, or taken over after its lease ran out."""
    search = unit.search  # as claimed: with its data set, whose bytes (up to FANOUT_MAX_UPLOAD_MB) stay unread
    holdout = {**search.holdout, "scores": refit["holdout_scores"]} if search.holdout else None
    if holdout is not None and refit["holdout_error"]:
        holdout["error"] = refit["holdout_error"]
    card = model_card(search=search, candidate=candidate, refit=refit, holdout=holdout)
    # The files first, outside any transaction (a slow store must not hold SQLite's write lock), under a fresh
    # prefix, so a second attempt never overwrites the first's files.
    prefix = f"models/search-{search.pk}/{uuid.uuid4().hex[:12]}"
    storage = model_storage()
    names = [
        _save(f"{prefix}/model.skops", Path(refit["skops_path"])),
        _save(f"{prefix}/model.joblib", Path(refit["joblib_path"])),
        storage.save(f"{prefix}/card.json", ContentFile(json.dumps(card, indent=2, allow_nan=False).encode())),
    ]
    with transaction.atomic():
        held = WorkUnit.objects.held(unit).update(status=Status.DONE, finished_at=Now(), lease_until=None, error="")
        if held and not FittedModel.objects.filter(search=search).exists():
            FittedModel.objects.create(
                search=search, skops_file=names[0], joblib_file=names[1], card_file=names[2], card=card,
                size=refit["skops_size"],
            )  # fmt: skip
            Search.objects.filter(pk=search.pk).update(refit_time=refit["refit_time"], holdout=holdout, refit_error="")
            return True
    for name in names:
        storage.delete(name)
    return bool(held)

"""Predictions with a search's model: an uploaded CSV file predicted on the cluster, or a local file in the CLI.

The web request only checks the upload's first line (`engine.predict.check_header`) and stores the file; the
rows are read, predicted and written a chunk at a time by `prediction_run` in a django-q2 worker, never in a
web request. A prediction is claimed with one conditional UPDATE (queued → running) and finished with another
that only the claiming attempt can make, so a duplicate delivery does nothing and finished rows are never
rewritten.

Bounded time: the task is sent with django-q2's `timeout` set to FANOUT_PREDICT_TIMEOUT, so the cluster stops a
worker that takes longer; `predictions_reconcile` then fails the row that stayed running. It fails it rather
than queueing it again: a file that took longer than the limit once, or killed its worker, would do it again.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from sklearn.base import BaseEstimator

from search.engine import artifacts
from search.engine.fits import machine_name
from search.engine.predict import PredictError, check_header, predict_csv
from search.models import FittedModel, Prediction, Search, Status, model_storage
from search.selectors.models import model_of, no_model_reason
from search.services.searches import messages_missing

log = logging.getLogger(__name__)

# The upload's first line is looked for in this many bytes; a header longer than this is refused.
HEADER_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


class PredictionRefused(Exception):
    """A prediction that cannot be made for a reason other than the file's content (no model, say)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def prediction_create(*, search: Search, upload: UploadedFile[bytes]) -> Prediction:
    """Store `upload` and queue its prediction on the cluster (sent once the row is committed).

    Only the first line is read here: a search without a model raises `PredictionRefused`; an empty file, a
    header without one of the model's feature columns (or a first line over HEADER_BYTES) raises `PredictError`.
    The data rows are checked by `prediction_run`."""
    fitted = _fitted(search)
    check_header(_first_line(upload), features_of(fitted))
    upload.seek(0)
    name = model_storage().save(f"predictions/search-{search.pk}/{uuid.uuid4().hex}/input.csv", upload)
    try:
        with transaction.atomic():
            prediction = Prediction.objects.create(
                search=search, input_name=str(upload.name or "upload.csv")[:200], input_file=name
            )
            transaction.on_commit(lambda: prediction_enqueue(prediction=prediction))
    except BaseException:
        model_storage().delete(name)
        raise
    return prediction


def prediction_enqueue(*, prediction: Prediction) -> bool:
    """Send `search.tasks.run_prediction` with the id; False when the broker is unreachable (the reconciler
    sends it once it is back). django-q2 stops the task after FANOUT_PREDICT_TIMEOUT."""
    from django_q.tasks import async_task

    try:
        async_task(
            "search.tasks.run_prediction",
            prediction.pk,
            task_name=f"search-{prediction.search_id}-prediction-{prediction.pk}",
            group=f"search-{prediction.search_id}",
            timeout=settings.FANOUT_PREDICT_TIMEOUT,
        )
    except Exception:  # noqa: BLE001 - broker unreachable: the reconciler sends it once it is back
        log.warning("could not enqueue prediction %s; the reconciler will resend it", prediction.pk)
        return False
    return True


def prediction_claim(*, prediction_id: int) -> Prediction | None:
    """Take a queued prediction for this process with one conditional UPDATE; None if it is not queued."""
    claimed = Prediction.objects.filter(pk=prediction_id, status=Status.QUEUED).update(
        status=Status.RUNNING, attempt=F("attempt") + 1, host=machine_name(), started_at=Now(), error=""
    )
    if not claimed:
        return None
    return Prediction.objects.select_related("search").get(pk=prediction_id)


def prediction_run(*, prediction_id: int) -> str:
    """Predict a queued prediction's file (in a django-q2 worker) and store `output.csv` beside its input.

    Returns "done", "failed" (the row says why, in one line), or "skipped" when the prediction was not queued
    (a duplicate delivery, or already finished). The row is never left running by an exception."""
    prediction = prediction_claim(prediction_id=prediction_id)
    if prediction is None:
        return "skipped"
    try:
        n_rows, output = _predict_stored(prediction)
    except (PredictError, PredictionRefused) as exc:
        return _finish(prediction, status=Status.FAILED, error=exc.message)
    except Exception as exc:
        log.exception("prediction %s failed", prediction.pk)
        return _finish(prediction, status=Status.FAILED, error=one_line(exc))
    except BaseException as exc:  # the worker is stopping: say so rather than leave the row running
        _finish(prediction, status=Status.FAILED, error=f"the worker stopped mid-prediction ({type(exc).__name__})")
        raise
    status = _finish(prediction, status=Status.DONE, n_rows=n_rows, output_file=output)
    if status != Status.DONE:
        model_storage().delete(output)  # the reconciler failed this attempt meanwhile: keep nothing of it
    return status


def predictions_reconcile() -> int:
    """Fail predictions running for longer than FANOUT_PREDICT_TIMEOUT (their worker died, hung or was stopped
    by the cluster's timeout), and send again queued ones whose message the broker lost (waiting for more than
    FANOUT_RESEND_SECONDS while the broker holds fewer messages than there is queued work). Returns how many
    rows it failed or sent again. Called by `services.reconcile.units_reconcile`; every change is a
    conditional UPDATE, so several machines may run it at once."""
    limit = settings.FANOUT_PREDICT_TIMEOUT
    failed = 0
    stale = Prediction.objects.filter(status=Status.RUNNING, started_at__lt=Now() - timedelta(seconds=limit))
    for prediction in stale:
        failed += Prediction.objects.filter(pk=prediction.pk, status=Status.RUNNING, attempt=prediction.attempt).update(
            status=Status.FAILED,
            finished_at=Now(),
            error=f"no answer from the worker on {prediction.host or 'an unknown machine'} within "
            f"FANOUT_PREDICT_TIMEOUT ({limit} s): it died, hung or the file takes longer; upload it again, "
            "split it, or raise FANOUT_PREDICT_TIMEOUT",
        )
    return failed + _resend_lost()


def _resend_lost() -> int:
    """Queued predictions waiting longest, as many as the broker is short of messages for queued work (units
    and predictions). A duplicate costs nothing: the second claim finds the row taken."""
    before = timezone.now() - timedelta(seconds=settings.FANOUT_RESEND_SECONDS)
    waiting = Prediction.objects.filter(status=Status.QUEUED, created_at__lt=before)
    if not waiting.exists():
        return 0
    oldest = waiting.order_by("created_at", "pk")[: max(0, messages_missing())]
    return sum(prediction_enqueue(prediction=p) for p in oldest)


def model_predict_file(*, search: Search, src: Path, dst: Path) -> int:
    """Predict the CSV file `src` with the search's model in this process (streamed) and write `dst`; return the
    number of rows. `dst` is written only on success (a temporary file beside it, renamed). Raises
    `PredictionRefused` (no model), `PredictError` (the file: unreadable, empty, a missing column, a bad cell)
    and `OSError` (`dst` cannot be written)."""
    fitted = _fitted(search)
    try:
        source = src.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise PredictError("file", f"cannot read the file: {exc.strerror or exc}") from None
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp")  # beside dst: the rename is atomic
    with source:
        model = _load_model(fitted)
        try:
            with tmp.open("x", encoding="utf-8", newline="") as out:
                n_rows = predict_csv(model, features_of(fitted), source, out)
            tmp.replace(dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return n_rows


def features_of(fitted: FittedModel) -> list[str]:
    """The model's feature columns, in the order it was fitted with."""
    return [str(name) for name in fitted.card["dataset"]["feature_names"]]


def one_line(exc: BaseException) -> str:
    """An exception as one line of at most 500 characters (for an error column)."""
    text = " ".join(str(exc).split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:500]


def _fitted(search: Search) -> FittedModel:
    fitted = model_of(search)
    if fitted is None:
        raise PredictionRefused(no_model_reason(search))
    return fitted


def _first_line(upload: UploadedFile[bytes]) -> str:
    """The upload's first non-blank line, read from at most HEADER_BYTES of it ("" for an empty file)."""
    upload.seek(0)
    head: bytes = upload.read(HEADER_BYTES + 1)
    upload.seek(0)
    lines = head.splitlines(keepends=True)
    if len(head) > HEADER_BYTES:
        lines = lines[:-1]  # the last one may be cut off
    for line in lines:
        if line.strip(b" \t\r\n,"):
            try:
                return line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PredictError(
                    "file", f"the file is not UTF-8 text (byte {exc.start} of its first line cannot be decoded)"
                ) from None
    if len(head) > HEADER_BYTES:
        raise PredictError("file", f"the file's first line is longer than {HEADER_BYTES // 1024} KB; is it CSV?")
    return ""


def _load_model(fitted: FittedModel) -> BaseEstimator:
    try:
        with fitted.skops_file.open("rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise PredictionRefused(f"the model file {fitted.skops_file.name} is missing from the model storage") from None
    try:
        return artifacts.load(data)
    except artifacts.ArtifactError as exc:
        raise PredictionRefused(f"the stored model cannot be loaded: {exc}") from None


def _predict_stored(prediction: Prediction) -> tuple[int, str]:
    """Copy the input from the storage to a local file, stream it through the model into another, and store that
    as `output.csv` beside the input; return (rows, the output's storage name)."""
    fitted = _fitted(prediction.search)
    model = _load_model(fitted)
    storage, input_name = model_storage(), str(prediction.input_file.name)
    with tempfile.TemporaryDirectory(prefix="fanout-predict-") as tmp:
        local_in, local_out = Path(tmp) / "input.csv", Path(tmp) / "output.csv"
        try:
            source = storage.open(input_name, "rb")
        except FileNotFoundError:
            raise PredictionRefused("the uploaded file is missing from the model storage") from None
        with source, local_in.open("wb") as dst:
            shutil.copyfileobj(source, dst, _CHUNK)
        with (
            local_in.open(encoding="utf-8", newline="") as src_text,
            local_out.open("w", encoding="utf-8", newline="") as dst_text,
        ):
            n_rows = predict_csv(model, features_of(fitted), src_text, dst_text)
        name = posixpath.join(posixpath.dirname(input_name), "output.csv")
        with local_out.open("rb") as fh:
            return n_rows, storage.save(name, File(fh, name="output.csv"))


def _finish(prediction: Prediction, *, status: str, **fields: Any) -> str:
    """End this attempt, if it still holds the row; return the row's status afterwards."""
    held = Q(pk=prediction.pk, status=Status.RUNNING, attempt=prediction.attempt)
    Prediction.objects.filter(held).update(status=status, finished_at=Now(), **fields)
    return str(Prediction.objects.filter(pk=prediction.pk).values_list("status", flat=True).first() or "missing")

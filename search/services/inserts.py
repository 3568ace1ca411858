"""Many rows of one model inserted with one `executemany`, a row that breaks a unique constraint skipped, as
`bulk_create(rows, ignore_conflicts=True)` does, without its per-value compilation (docs/performance.md,
storing fits).

Django's bulk insert compiles every value of every row through the field's `pre_save` and `get_db_prep_save`
and builds one statement per batch of 50 rows on SQLite (its limit of 999 parameters): a fit row cost 74 µs
through `results_write` that way, 50 µs this way. The statement is the same for every row, so it is built once
per model and connection vendor, and each column's adapter once per call; the values still go through the
database backend's own adapters (`adapt_json_value`, `adapt_datetimefield_value`), so the stored bytes are those
of `bulk_create` (tests/services/test_inserts.py compares them column by column on SQLite and PostgreSQL)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models
from django.db.models.constants import OnConflict

Adapter = Callable[[Any], Any]


def _adapter(field: models.Field[Any, Any]) -> Adapter | None:
    """How a Python value of `field` becomes a driver parameter on this thread's connection, for the fields whose
    values need it; None when the value is passed as it is (numbers, text, booleans, foreign keys' ids)."""
    ops = connection.ops
    if isinstance(field, models.JSONField):
        encoder = field.encoder
        return lambda value: None if value is None else ops.adapt_json_value(value, encoder)
    if isinstance(field, models.DateTimeField):
        return ops.adapt_datetimefield_value
    if isinstance(field, (models.DateField, models.TimeField, models.DecimalField, models.UUIDField)):
        return functools.partial(field.get_db_prep_save, connection=connection)
    return None


@functools.cache
def _plan(model: type[models.Model], vendor: str) -> tuple[str, list[models.Field[Any, Any]]]:
    """The statement and its fields in column order: every concrete field but the automatic primary key."""
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    ops = connection.ops
    columns = ", ".join(ops.quote_name(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = (
        f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {ops.quote_name(model._meta.db_table)} "
        f"({columns}) VALUES ({marks}) {ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)}"
    )
    return sql.strip(), fields


def insert_ignoring_conflicts(rows: Sequence[models.Model]) -> None:
    """Insert `rows` (all of one model, primary keys unset) in one `executemany`; a row whose unique fields are
    already stored is left out, as `bulk_create(rows, ignore_conflicts=True)` leaves it. Call it inside the
    caller's transaction: it counts nothing (see `services.finalize.results_insert`)."""
    if not rows:
        return
    sql, fields = _plan(type(rows[0]), connection.vendor)
    pairs = [(f.attname, _adapter(f)) for f in fields]
    params = [
        [getattr(row, name) if adapt is None else adapt(getattr(row, name)) for name, adapt in pairs] for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)

"""`python manage.py runsearch SPEC.json [SPEC.json …]`: batch searches from JSON files.

Every spec in every file is validated before anything is stored or enqueued; a bad one exits with
status 2 and one line naming the file and the field.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Max, Min

from search.engine.spec import SpecError
from search.models import Result, Search, Status, WorkUnit
from search.selectors.studies import AXES, study_label, study_table
from search.services.estimates import estimate_plan, search_pilot_enqueue
from search.services.runners import runners_kept
from search.services.scaling import study_advance, study_create
from search.services.searches import plan_search, search_create
from search.services.units import unit_run

POLL_SECONDS = 0.1
# --timings: the phases of a run in order; client-side ones are taken here, the others read from stored timestamps.
PHASES = ("process start", "django ready", "spec validated", "estimated", "data checked", "search stored",
          "first unit claimed", "first fit started", "last fit ended", "refit claimed", "refit ended",
          "search done", "summary printed")  # fmt: skip


def _load_specs(path: Path) -> list[tuple[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror}", returncode=2) from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text", returncode=2) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", returncode=2
        ) from None
    except (ValueError, RecursionError) as exc:  # a number of 4,300+ digits, lists nested thousands deep
        raise CommandError(f"{path}: unreadable JSON: {exc or 'nested too deeply'}", returncode=2) from None
    if isinstance(data, list):
        if not data:
            raise CommandError(f"{path}: the list of specs is empty", returncode=2)
        return [(f"{path}[{i}]", d) for i, d in enumerate(data)]
    return [(str(path), data)]


def _process_started() -> float | None:
    """Unix time this process started (Linux: from /proc), for --timings; None where that cannot be read."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime, in ticks since boot
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def _stored_phases(search_ids: list[int]) -> dict[str, float | None]:
    """When the cluster's phases of these searches happened (unix s), from the rows' own timestamps."""
    units = WorkUnit.objects.filter(search_id__in=search_ids)
    cv = units.filter(kind=WorkUnit.Kind.CV).aggregate(claimed=Min("started_at"))
    refit = units.filter(kind=WorkUnit.Kind.REFIT).aggregate(claimed=Max("started_at"), ended=Max("finished_at"))
    fits = Result.objects.filter(search_id__in=search_ids).aggregate(first=Min("started_at"), last=Max("finished_at"))
    created = Search.objects.filter(pk__in=search_ids).aggregate(last=Max("created_at"))
    found = {
        "data checked": created["last"], "first unit claimed": cv["claimed"], "first fit started": fits["first"],
        "last fit ended": fits["last"], "refit claimed": refit["claimed"], "refit ended": refit["ended"],
    }  # fmt: skip
    return {name: at.timestamp() if at else None for name, at in found.items()}


def _metric_label(search: Search) -> str:
    """`score` is scikit-learn's key for a single scorer; show which scorer it is."""
    scoring = search.stored.scoring_label
    return scoring if search.refit_metric == "score" and scoring else search.refit_metric


def _exit_now(code: object) -> None:
    """Leave the process once its output is flushed, without tearing down every module: for a client that
    imported scikit-learn, SciPy and pandas that teardown alone took 0.43-0.55 s (docs/performance.md)."""
    if code is None:
        code = 0
    elif not isinstance(code, int):  # SystemExit("message") prints the message and exits 1, as Python does
        sys.stderr.write(f"{code}\n")
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(code)


class Command(BaseCommand):
    help = "Run one or more searches defined in JSON spec files (see README: spec format)."
    # A batch client on the critical path of every search: Django's system checks (0.1 s here) are run by
    # `migrate`, `serve` and `check`, as Django's own `shell` and `dbshell` leave them out.
    requires_system_checks: list[str] = []

    def run_from_argv(self, argv: list[str]) -> None:
        """As Django's, then a fast exit once the connections are closed (not with --local, whose fits ran
        here: joblib's pools and temporary folders are cleaned up by the normal exit)."""
        self._fast_exit = False
        try:
            super().run_from_argv(argv)
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
        if not self._fast_exit:
            sys.exit(code)
        _exit_now(code)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("specs", nargs="+", type=Path, help="JSON files, each one spec or a list of specs")
        parser.add_argument(
            "--scaling", action="store_true",
            help="after each search, measure it again at 1..N processes and print the speedup (needs a cluster)",
        )  # fmt: skip
        parser.add_argument(
            "--scaling-axis", choices=AXES, default="processes",
            help="with --scaling: processes on one machine, or machines (1..M clusters attached, n_jobs=-1)",
        )  # fmt: skip
        parser.add_argument(
            "--owner",
            help="user name that owns the searches (they then show in that user's pages); a spec's dataset "
            '{"id": N} names one of this user\'s uploaded data sets',
        )
        parser.add_argument(
            "--timings", action="store_true",
            help="at the end, print on stderr when each phase of the run happened (start-up, validation, fits, refit)",
        )  # fmt: skip
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--no-wait", action="store_true", help="enqueue and return at once")
        mode.add_argument("--local", action="store_true", help="run the fits in this process (no qcluster needed)")

    def handle(self, *args: Any, **opts: Any) -> None:
        self._fast_exit = not opts["local"]
        self._marks: dict[str, float | None] = {"process start": _process_started(), "django ready": time.time()}
        try:
            self._handle(**opts)
        finally:
            if opts.get("timings"):
                self._print_timings()

    def _mark(self, phase: str) -> None:
        self._marks[phase] = time.time()

    def _print_timings(self) -> None:
        """Every phase on stderr: seconds from the process's start and from the phase before (n/a: did not
        happen), then the same as one JSON line of unix times for scripts (bench/short_grid.py)."""
        ids = getattr(self, "_search_ids", [])
        marks = {**self._marks, **(_stored_phases(ids) if ids else {})}
        at = {name: marks.get(name) for name in PHASES}
        origin = at["process start"] or at["django ready"] or 0.0
        self.stderr.write("timings (s from the process start, + from the phase before):")
        previous = origin
        for name, t in at.items():
            if t is None:
                self.stderr.write(f"  {name:<20} n/a")
                continue
            self.stderr.write(f"  {name:<20} {t - origin:7.3f}  +{t - previous:.3f}")
            previous = t
        self.stderr.write(json.dumps({"timings": at}))

    def _handle(self, **opts: Any) -> None:
        logging.getLogger("django-q").setLevel(logging.WARNING)  # no "Enqueued …" lines between ours
        owner = None
        if opts["owner"]:
            owner = get_user_model().objects.filter(username=opts["owner"]).first()
            if owner is None:
                raise CommandError(f"--owner: no user named {opts['owner']!r}", returncode=2)
        entries = [entry for path in opts["specs"] for entry in _load_specs(path)]
        plans = []
        for where, data in entries:
            try:
                plans.append((where, plan_search(data)))
            except SpecError as exc:
                raise CommandError(f"{where}: {exc}", returncode=2) from None
        self._mark("spec validated")
        # From past fits (or a pilot that already ran) only: no pilot on the batch's critical path.
        estimates = {id(plan): estimate_plan(plan=plan, owner=owner).line() for _, plan in plans}
        self._mark("estimated")
        searches: list[Search] = []
        with transaction.atomic():  # all or nothing: one bad data set stores none of them
            for where, plan in plans:
                base_dir = Path(where.split("[")[0]).resolve().parent
                try:
                    searches.append(search_create(plan=plan, owner=owner, base_dir=base_dir, enqueue=not opts["local"]))
                except SpecError as exc:
                    raise CommandError(f"{where}: {exc}", returncode=2) from None
            for s in searches if not opts["local"] else []:  # after every unit: a pilot never delays one
                transaction.on_commit(functools.partial(search_pilot_enqueue, search_id=s.pk))
        self._mark("search stored")  # and its units sent, on commit
        self._search_ids = [s.pk for s in searches]
        for s, (_, plan) in zip(searches, plans, strict=True):
            self.stdout.write(f"search {s.pk}")
            self.stdout.write(f"  estimate: {estimates[id(plan)]}")
        self.stdout.flush()
        if opts["no_wait"]:
            return
        worker = None
        if opts["local"]:
            worker = threading.Thread(target=self._run_local, args=([s.pk for s in searches],), daemon=True)
            worker.start()
        self._wait([s.pk for s in searches], expect_cluster=not opts["local"])
        if worker:
            worker.join()
        self._mark("search done")
        try:
            self._summarise(searches, scaling_after=opts["scaling"] and not opts["local"], axis=opts["scaling_axis"])
        finally:
            self._mark("summary printed")

    def _run_local(self, search_ids: list[int]) -> None:
        """Every unit here, including those that appear as others end (a halving round, the refit)."""
        seen: set[int] = set()
        try:
            with runners_kept():  # its units one after another in one warm runner (the refit too)
                while todo := [
                    pk
                    for pk in WorkUnit.objects.filter(search_id__in=search_ids)
                    .order_by("search_id", "index")
                    .values_list("pk", flat=True)
                    if pk not in seen
                ]:
                    for unit_id in todo:
                        seen.add(unit_id)
                        unit_run(unit_id=unit_id)
        finally:
            connection.close()

    def _wait(self, search_ids: list[int], expect_cluster: bool) -> None:
        """A progress line until every search has finished (redrawn on a terminal, else every few s)."""
        from django_q.status import Stat

        started = time.monotonic()
        warned = False
        tty = sys.stderr.isatty()
        last_counts, last_print = "", 0.0
        while True:
            rows = list(Search.objects.filter(pk__in=search_ids).values_list("status", "n_fits_done", "n_fits"))
            done = sum(r[1] for r in rows)
            total = sum(r[2] for r in rows)
            finished = sum(r[0] in Status.FINISHED for r in rows)
            elapsed = time.monotonic() - started
            counts = f"{done}/{total} fits ({100 * done / total:.0f}%), {finished}/{len(rows)} searches finished"
            if tty:
                self.stderr.write(f"\r{counts}, {elapsed:.1f} s", ending="")
            elif counts != last_counts and time.monotonic() - last_print > 2:
                self.stderr.write(f"{counts}, {elapsed:.1f} s")
                last_counts, last_print = counts, time.monotonic()
            if finished == len(rows):
                if tty:
                    self.stderr.write("")
                return
            if expect_cluster and not warned and elapsed > 5 and done == 0 and not Stat.get_all():
                self.stderr.write(
                    "\nno qcluster is running: start one with `python manage.py qcluster`, "
                    "or stop this and rerun with --local"
                )
                warned = True
            time.sleep(POLL_SECONDS)

    def _summarise(self, searches: list[Search], scaling_after: bool = False, axis: str = "processes") -> None:
        failed = False
        for s in searches:
            s.refresh_from_db()
            wall = f"{s.wall_time:.2f} s" if s.wall_time is not None else "n/a"
            self.stdout.write(
                f"search {s.pk}{f' ({s.name})' if s.name else ''}: {s.status} in {wall}, "
                f"{s.n_fits_done}/{s.n_fits} fits ({s.n_fits_failed} failed), cores used {s.cores_used or 'n/a'}"
            )
            if s.speedup is not None and s.efficiency is not None:
                self.stdout.write(
                    f"  speedup {s.speedup:.2f}x on {s.cores_used} cores (efficiency {s.efficiency:.0%}), "
                    f"busy {s.busy_time:.2f} s"
                )
            for warning in s.warnings:
                self.stdout.write(f"  warning: {warning}")
            if s.status == Status.DONE and s.best_index is not None:
                std = s.candidates.get(index=s.best_index).std_test or {}
                spread = f" ± {std.get(s.refit_metric):.4f}" if std.get(s.refit_metric) is not None else ""
                self.stdout.write(
                    f"  best {_metric_label(s)} {s.best_score:.4f}{spread} with {json.dumps(s.best_params)}"
                )
            else:
                failed = True
                self.stdout.write(f"  {s.error}")
        if failed:
            raise CommandError("some searches did not finish", returncode=1)
        for s in searches if scaling_after else []:
            self._scaling(s, axis)

    def _scaling(self, search: Search, axis: str = "processes") -> None:
        try:
            study = study_create(search=search, axis=axis)
        except ValueError as exc:
            raise CommandError(f"--scaling-axis {axis}: {exc}", returncode=1) from None
        self.stdout.write(
            f"scaling study {study.pk} of search {search.pk}: {study.n_candidates} candidates at {study_label(study)}"
        )
        self._wait(list(study.runs.values_list("pk", flat=True)), expect_cluster=True)
        table = study_table(study_advance(study_id=study.pk))
        self.stdout.write(f"  {table['unit']:>9}  wall (s)  speedup  efficiency")
        for row in table["rows"]:
            if row["speedup"] is None:
                self.stdout.write(f"  {row['width']:>9}  {row['status']}")
                continue
            self.stdout.write(
                f"  {row['width']:>9}  {row['wall']:>8.2f}  {row['speedup']:>6.2f}x  {row['efficiency']:>10.2f}"
            )
        if table["serial_fraction"] is not None:
            projected = ", ".join(f"{v:.1f}x at {n}" for n, v in table["projections"].items())
            self.stdout.write(f"  Amdahl serial fraction {table['serial_fraction']:.3f}; projected {projected}")
        for warning in table["warnings"]:
            self.stdout.write(f"  warning: {warning}")

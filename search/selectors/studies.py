"""Scaling studies read back: the counts measured, their labels, the measured points and the table."""

from __future__ import annotations

from typing import Any

import joblib

from search.engine import speedup
from search.models import ScalingStudy, Search, Status
from search.selectors.cluster import live_clusters

AXES = ("processes", "machines")


def default_n_jobs(search: Search) -> list[int]:
    cores = max([u for u in search.units.values_list("cpu_count", flat=True) if u] or [joblib.cpu_count()])
    return list(range(1, cores + 1))


def study_axes() -> list[str]:
    """The axes a study can take now: machines only while more than one cluster is attached."""
    return list(AXES) if live_clusters() > 1 else ["processes"]


def study_counts(study: ScalingStudy) -> list[int]:
    """The process or machine counts measured, in order."""
    return list(study.n_machines_list) if study.axis == "machines" else list(study.n_jobs_list)


def study_label(study: ScalingStudy) -> str:
    """The counts measured and their unit: "1, 2 processes" or "1, 2 machines"."""
    return f"{', '.join(map(str, study_counts(study)))} {study.axis}"


def run_width(study: ScalingStudy, run: Search) -> int | None:
    return run.max_machines if study.axis == "machines" else run.study_n_jobs


def study_runs(study: ScalingStudy) -> list[Search]:
    return list(study.runs.order_by("max_machines", "study_n_jobs", "pk"))


def study_points(study: ScalingStudy) -> list[tuple[int, float]]:
    """(processes or machines, measured speedup over the 1-process or 1-machine run) for every finished run."""
    walls = {
        run_width(study, r): (r.accounting or {}).get("wall") for r in study_runs(study) if r.status == Status.DONE
    }
    base = walls.get(1)
    if not base:
        return []
    return [(n, base / wall) for n, wall in sorted((n, w) for n, w in walls.items() if n) if wall]


def study_table(study: ScalingStudy) -> dict[str, Any]:
    """Everything the page and the CLI show: runs, measured speedups, Amdahl fit and projections.

    Each row's `width` is its process or machine count (`axis` says which); `processes` is kept for the
    processes axis, and `machines` lists the machines whose fits the run stored."""
    points = dict(study_points(study))
    rows: list[dict[str, Any]] = []
    for r in study_runs(study):
        width = run_width(study, r) or 0
        rows.append({
            "search": r.pk, "width": width, "processes": r.study_n_jobs, "status": r.status,
            "machines": sorted((r.accounting or {}).get("machines") or {}),
            "wall": (r.accounting or {}).get("wall"), "speedup": points.get(width),
            "efficiency": points[width] / width if width in points else None,
        })  # fmt: skip
    s = study.serial_fraction
    counts = study_counts(study)
    short = [  # a machine left (or never came) between runs: that point measured fewer machines than asked
        f"run {row['search']} was given {row['width']} machines but ran on {len(row['machines'])}"
        for row in rows
        if study.axis == "machines" and row["status"] == Status.DONE and len(row["machines"]) < row["width"]
    ]
    return {
        "study": study.pk, "status": study.status, "n_candidates": study.n_candidates, "rows": rows,
        "axis": study.axis, "unit": "machines" if study.axis == "machines" else "processes",
        "serial_fraction": s, "error": study.error, "warnings": short,
        "projections": {str(n): v for n, v in speedup.projections(s, max(counts)).items()} if s is not None else {},
    }  # fmt: skip

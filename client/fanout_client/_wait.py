"""Waiting for a search: poll `GET /searches/{id}` with a progress bar until it is over."""

from __future__ import annotations

import time
from typing import Any

from ._http import Session

FIRST_POLL = 0.5  # seconds; each wait is 1.5 times the last, up to LAST_POLL
LAST_POLL = 2.0


def is_over(search: dict[str, Any]) -> bool:
    """Over when `progress.finished` is true and `progress.refitting` is false (docs/api.md)."""
    progress = search.get("progress") or {}
    return bool(progress.get("finished")) and not progress.get("refitting")


def wait_for(session: Session, search_id: int, search: dict[str, Any] | None = None) -> dict[str, Any]:
    """The search once it is over, showing a tqdm bar (`tqdm.auto`: a widget in a notebook) of its fits.
    A KeyboardInterrupt passes through; the search keeps running on the server."""
    from tqdm.auto import tqdm  # type: ignore[import-untyped]  # tqdm ships no type information

    if search is None:
        search = session.get(f"/searches/{search_id}")
    assert search is not None
    if is_over(search):
        return search
    bar = tqdm(total=search.get("n_fits") or None, desc=f"Fanout search {search_id}", unit="fit", disable=None)
    interval = FIRST_POLL
    try:
        while True:
            progress = search.get("progress") or {}
            total = progress.get("total") or search.get("n_fits")
            if total and total != bar.total:  # halving searches add rounds as they go
                bar.total = total
                bar.refresh()
            done = int(progress.get("done") or 0)
            if done != bar.n:
                bar.update(done - bar.n)
            bar.set_postfix_str("refitting" if progress.get("refitting") else str(progress.get("status", "")))
            if is_over(search):
                return search
            time.sleep(interval)
            interval = min(interval * 1.5, LAST_POLL)
            search = session.get(f"/searches/{search_id}")
    finally:
        bar.close()

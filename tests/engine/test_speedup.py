import math

import pytest

from search.engine.speedup import (
    FitSpan,
    account,
    amdahl,
    fit_serial_fraction,
    lpt_order,
    peak_concurrency,
    projections,
    utilisation,
)


def spans() -> list[FitSpan]:
    # two processes on host a, fully busy 0..10 s, one fit of 2 s on host b
    return [
        FitSpan("a", 1, 0.0, 4.0, 4.0), FitSpan("a", 1, 4.0, 10.0, 6.0),
        FitSpan("a", 2, 0.0, 10.0, 10.0), FitSpan("b", 7, 2.0, 4.0, 2.0),
    ]  # fmt: skip


def test_account_totals_machines_and_processes() -> None:
    acc = account(spans())
    assert acc["wall"] == 10.0 and acc["busy"] == 22.0
    assert acc["speedup"] == pytest.approx(2.2)
    assert acc["processes"] == 3 and acc["efficiency"] == pytest.approx(2.2 / 3)
    assert acc["machines"]["a"]["cores"] == 2 and acc["machines"]["b"]["cores"] == 1
    assert acc["machines"]["a"]["processes"]["1"] == {"busy": 10.0, "fits": 2, "span": 10.0}
    assert account([])["speedup"] is None


def test_cores_are_peak_concurrency_not_distinct_pids() -> None:
    # a retried unit: pids 1, 2 then 3, 4 — never more than two at once
    retried = [FitSpan("a", 1, 0, 1, 1), FitSpan("a", 2, 0, 1, 1), FitSpan("a", 3, 1, 2, 1), FitSpan("a", 4, 1, 2, 1)]
    assert peak_concurrency(retried) == 2
    assert account(retried)["efficiency"] == pytest.approx(1.0)


def test_utilisation_bins() -> None:
    times, running = utilisation(spans(), bins=5)
    assert len(times) == len(running) == 5 and times[0] == pytest.approx(1.0)
    assert running == pytest.approx([2.0, 3.0, 2.0, 2.0, 2.0])


@pytest.mark.parametrize("serial", [0.0, 0.05, 0.2, 0.5, 1.0])
def test_amdahl_fit_recovers_a_known_serial_fraction(serial: float) -> None:
    points = [(n, amdahl(n, serial)) for n in (1, 2, 4, 8, 16)]
    assert fit_serial_fraction(points) == pytest.approx(serial, abs=1e-12)


def test_amdahl_fit_with_noise_and_edge_cases() -> None:
    noisy = [(1, 1.0), (2, 1.82 * 1.01), (4, 3.08 * 0.99), (8, 4.7)]
    assert fit_serial_fraction(noisy) == pytest.approx(0.1, abs=0.02)
    assert fit_serial_fraction([(1, 1.0)]) is None
    assert fit_serial_fraction([(2, 3.0)]) == 0.0  # super-linear measurement clamps to 0
    assert projections(0.1, 2) == pytest.approx({4: amdahl(4, 0.1), 8: amdahl(8, 0.1), 16: amdahl(16, 0.1)})
    assert math.isclose(amdahl(1, 0.3), 1.0)


def test_lpt_order() -> None:
    assert lpt_order([1.0, 5.0, 3.0, 5.0]) == [1, 3, 2, 0]


def test_a_fit_built_in_threads_counts_each_core_it_held() -> None:
    """Two processes each fitting a forest in 4 threads (engine.schedule) used 8 cores, not 2."""
    spans = [FitSpan("m", pid, 0.0, 1.0, 4.0, cores=4) for pid in (1, 2)]
    assert peak_concurrency(spans) == 8
    acc = account(spans)
    assert acc["processes"] == 8 and acc["speedup"] == 8.0 and acc["efficiency"] == 1.0

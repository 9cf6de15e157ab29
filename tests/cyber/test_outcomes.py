"""Percentiles that count the stations that did not settle (nearest rank, Hyndman and Fan definition 1)."""

from __future__ import annotations

import pytest

from v2gtwin.cyber.csms.outcomes import percentile_s


def test_nearest_rank_by_hand() -> None:
    times = [0.5, 0.1, 0.4, 0.2, 0.3]  # sorted 0.1 .. 0.5, n = 5
    assert percentile_s(times, 0.5) == 0.3  # rank ceil(2.5) = 3
    assert percentile_s(times, 0.99) == 0.5  # rank ceil(4.95) = 5
    assert percentile_s(times, 0.2) == 0.1  # rank ceil(1.0) = 1
    hundred = [k / 100 for k in range(1, 101)]
    assert percentile_s(hundred, 0.99) == 0.99  # rank 99 of 100, not the maximum


def test_a_station_that_did_not_settle_counts_above_every_time() -> None:
    # 100 stations, 1 timed out: p99 is rank 99, still a time; 2 timed out: rank 99 falls on a timeout.
    one_lost = [k / 100 for k in range(1, 100)] + [None]
    assert percentile_s(one_lost, 0.99) == 0.99
    two_lost = [k / 100 for k in range(1, 99)] + [None, None]
    assert percentile_s(two_lost, 0.99) is None
    assert percentile_s(two_lost, 0.5) == 0.5  # rank 50
    # Dropping the lost stations instead would have reported 0.98 for p99 (rank 98 of 98).
    assert percentile_s([None, None], 0.5) is None and percentile_s([], 0.5) is None


def test_q_out_of_range() -> None:
    with pytest.raises(ValueError, match="q: in"):
        percentile_s([1.0], 0.0)

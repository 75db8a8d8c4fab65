"""The Redis driver's warning about leases found lost on renewal (rate-limited)."""

from __future__ import annotations

import pytest

from asynctasq.drivers.redis import LostLeaseLog


def test_leases_found_lost_on_renewal_are_logged_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = LostLeaseLog("extend")
    with caplog.at_level("WARNING", logger="asynctasq.drivers.redis"):
        for _ in range(15):  # a lost lease found on every tick of the lease loop
            log.note(1, 4)
        monkeypatch.setattr("asynctasq.drivers.redis.LOST_LEASE_LOG_SECONDS", 0.0)
        log.note(2, 4)
    assert [r.getMessage() for r in caplog.records] == [
        "extend: 1 of 4 leases were already lost (their tasks may run again elsewhere)",
        "extend: 16 of 60 leases were already lost (their tasks may run again elsewhere)",
    ]

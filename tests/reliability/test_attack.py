"""The attack driver, short (python -m reliability.attack, figures in docs/reliability.md):
a few seconds of each attack without a key, at a small scale against small limits, while a
legitimate client keeps being served."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability.attack import parser, run, verdicts


@pytest.mark.slow
async def test_a_legitimate_client_is_served_through_every_attack(
    fresh_db: str, tmp_path: Path
) -> None:
    """Slow clients past the connection cap, 1 MiB keys at 20 a second, idle anonymous
    streams past their cap: the client keeps at least 90% success on GET /v1/state and POST
    /v1/events in each, and each attack is shed the way the guard says (slow clients
    closed, oversized heads refused with 431, streams over the cap refused with 503), with
    the service's memory flat under the oversized keys."""
    args = parser().parse_args(
        [
            "--seconds", "3", "--rate", "10", "--pause", "0.5",
            "--slow", "300", "--key-rate", "20", "--key-mib", "1", "--streams", "120",
            "--service-env", "FRONTLINE_MAX_CONNECTIONS=200",
            "--service-env", "FRONTLINE_HEADER_TIMEOUT=2",
            "--service-env", "FRONTLINE_ANONYMOUS_STREAMS=40",
        ]
    )  # fmt: skip
    results = {r["phase"]: r for r in await run(fresh_db, tmp_path, args)}
    assert list(results) == ["quiet", "slow", "keys", "streams", "quiet after"]
    for name, result in results.items():
        assert result["state_success"] >= 0.9, (name, result)
        assert result["post_success"] >= 0.9, (name, result)
    slow = results["slow"]["attacker"]
    assert slow["most_open"] >= 200
    assert slow["closed_by_server"] > 0
    keys = results["keys"]["attacker"]
    assert set(keys["statuses"]) <= {"431", "reset"}, keys
    assert keys["statuses"].get("431", 0) > 0
    assert results["keys"]["service_rss_mib"] - results["quiet"]["service_rss_mib"] < 50
    streams = results["streams"]["attacker"]
    assert streams["statuses"]["200"] == 40
    assert streams["statuses"]["503"] > 0
    # The p99 goal (under 5x the quiet one) is checked on the full run, not on 3 noisy
    # seconds on a shared machine; a miss there would be listed here.
    assert all("success" not in line for line in verdicts(list(results.values())))

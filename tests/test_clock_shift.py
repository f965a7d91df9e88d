"""The suite passes at any hour (issue 11, item 15).

The workshop's zone is Asia/Shanghai (UTC+8) while machines run in UTC, so the risky instants are
local midnight (16:00 UTC) and a month's last evening in UTC (already the next month locally).
This test re-runs the date-sensitive test files under libfaketime (Debian's `faketime`) started
just before and after those instants; the clock keeps running, so a run crosses the boundary.
Both the test process and the servers it starts see the shifted clock (LD_PRELOAD is inherited).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from tests.conftest import IN_CI, ROOT

INSTANTS = [
    "2026-11-30 15:59:45",  # 23:59:45 local on a month's last day: midnight and month roll over
    "2026-12-31 16:00:05",  # 00:00:05 local on New Year's day; still 31 December in UTC
    "2026-11-30 20:30:00",  # a month's last evening in UTC: 1 December 04:30 locally
]
FILES = ["tests/test_backup.py", "tests/test_public.py", "tests/test_receipt_window.py",
         "tests/test_notify.py", "tests/test_bad_input.py"]
SHIFTED = "SUGGESTBOX_CLOCK_SHIFTED"


@pytest.mark.skipif(os.environ.get(SHIFTED) == "1", reason="already inside a shifted run")
@pytest.mark.parametrize("instant", INSTANTS)
def test_date_sensitive_tests_pass_at_risky_instants(instant: str) -> None:
    if shutil.which("faketime") is None:
        if IN_CI:
            pytest.fail("faketime is missing (apt-get install faketime), and CI=true needs it")
        pytest.skip("faketime not installed (apt-get install faketime)")
    # A relative offset, not a start time: every process (this pytest and the servers it starts
    # later) then agrees on the time. "@start" would start each process's clock afresh.
    offset = (datetime.fromisoformat(instant).replace(tzinfo=UTC) - datetime.now(UTC))
    env = {**os.environ, SHIFTED: "1", "TZ": "UTC", "FAKETIME": f"{offset.total_seconds():+.0f}s",
           "FAKETIME_NO_CACHE": "1"}
    # SQLite only: PostgreSQL's server clock cannot be shifted, and the SQLite half covers
    # every date the application computes.
    cmd = ["faketime", "-f", env["FAKETIME"], sys.executable, "-m", "pytest", "-q", "-x",
           "-p", "no:cacheprovider", "-k", "not postgres", *FILES]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    tail = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, f"at {instant} UTC:\n{tail}"
    assert " passed" in done.stdout

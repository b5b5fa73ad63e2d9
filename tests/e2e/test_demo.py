"""`evse-agent demo` plays a whole session and exits 0 (DESIGN.md: command line)."""

from __future__ import annotations

import subprocess
import sys
import time


def test_demo_plays_a_full_session_quickly() -> None:
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "evse_agent", "demo"], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for needle in (
        "-> BootNotification PowerUp",
        "<- BootNotificationResponse Accepted",
        "-> Authorize",
        "TransactionEvent Started seq=0",
        "trigger=MeterValuePeriodic",
        "TransactionEvent Ended",
        "session complete",
    ):
        assert needle in out, out
    assert "Traceback" not in result.stderr
    assert took < 30

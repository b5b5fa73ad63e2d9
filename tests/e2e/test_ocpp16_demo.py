"""`evse-agent demo --ocpp 1.6` plays the same session as the 2.0.1 demo, in 1.6 words."""

from __future__ import annotations

import subprocess
import sys


def test_demo_on_1_6() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "evse_agent", "demo", "--ocpp", "1.6"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for needle in (
        "-> BootNotification",
        "<- BootNotificationResponse Accepted",
        "-> StatusNotification connector 0 Available",
        "-> Authorize 04A2B3C4D5E6F7",
        "-> StartTransaction connector=1",
        "<- StartTransactionResponse Accepted transactionId=1",
        "-> StatusNotification connector 1 Charging",
        "-> MeterValues transactionId=1 energy=",
        "-> StopTransaction transactionId=1 reason=EVDisconnected",
        "session complete",
    ):
        assert needle in out, out
    assert "TransactionEvent" not in out
    assert "Traceback" not in result.stderr


def test_demo_refuses_an_unknown_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "evse_agent", "demo", "--ocpp", "1.5"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "invalid choice: '1.5'" in result.stderr

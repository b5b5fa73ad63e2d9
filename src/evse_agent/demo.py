"""`evse-agent demo [--ocpp 1.6]`: the development CSMS and a mock station in one
process, playing a whole charging session on OCPP 2.0.1 (or 1.6) and printing it as a
timeline."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from .agent import Agent
from .config import parse
from .csms import DevCsms

STATION = "DEMO-STATION"
CARD = "04A2B3C4D5E6F7"


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self._calls: dict[str, str] = {}

    def line(self, who: str, text: str) -> None:
        print(f"{time.monotonic() - self.start:6.2f}s  {who:<8} {text}", flush=True)

    def frame(self, station_id: str, direction: str, raw: str) -> None:
        msg = json.loads(raw)
        sender, arrow = ("station", "->") if direction == "<-" else ("CSMS", "<-")
        if msg[0] == 2:
            self._calls[msg[1]] = msg[2]
            self.line(sender, f"{arrow} {msg[2]} {_brief(msg[2], msg[3])}")
        elif msg[0] == 3 and msg[2]:
            action = self._calls.pop(msg[1], "?")
            info = msg[2].get("idTokenInfo") or msg[2].get("idTagInfo") or {}
            status = msg[2].get("status") or info.get("status")
            if status:
                tx_id = msg[2].get("transactionId")  # 1.6: the CSMS names the transaction
                extra = f" transactionId={tx_id}" if tx_id is not None else ""
                self.line(sender, f"{arrow} {action}Response {status}{extra}")


def _brief(action: str, p: dict[str, Any]) -> str:
    if action == "TransactionEvent":
        info = p["transactionInfo"]
        parts = [p["eventType"], f"seq={p['seqNo']}", f"trigger={p['triggerReason']}"]
        if "chargingState" in info:
            parts.append(f"state={info['chargingState']}")
        if "stoppedReason" in info:
            parts.append(f"reason={info['stoppedReason']}")
        for mv in p.get("meterValue", []):
            for s in mv["sampledValue"]:
                if s.get("measurand", "Energy.Active.Import.Register").startswith("Energy"):
                    parts.append(f"energy={s['value']} Wh")
        return " ".join(parts)
    if action == "StatusNotification" and "evseId" in p:
        return f"EVSE {p['evseId']} {p['connectorStatus']}"
    if action == "Authorize" and "idToken" in p:
        return p["idToken"]["idToken"]
    if action == "BootNotification":  # 1.6 gives no reason: say who boots
        return p.get("reason") or f"{p['chargePointVendor']} {p['chargePointModel']}"
    return _brief16(action, p)


def _brief16(action: str, p: dict[str, Any]) -> str:
    """The same session in 1.6 words (StartTransaction / MeterValues / StopTransaction)."""
    if action == "StatusNotification":
        return f"connector {p['connectorId']} {p['status']}"
    if action == "Authorize":
        return str(p["idTag"])
    if action == "StartTransaction":
        return f"connector={p['connectorId']} idTag={p['idTag']} meterStart={p['meterStart']} Wh"
    if action == "MeterValues":
        parts = [f"transactionId={p['transactionId']}"] if "transactionId" in p else []
        for mv in p["meterValue"]:
            for s in mv["sampledValue"]:
                if s.get("measurand", "Energy.Active.Import.Register").startswith("Energy"):
                    parts.append(f"energy={s['value']} Wh")
        return " ".join(parts)
    if action == "StopTransaction":
        return (f"transactionId={p['transactionId']} reason={p.get('reason', 'Local')}"
                f" meterStop={p['meterStop']} Wh")
    return ""


# What the demo waits for, per version: (action, predicate) for the EV charging, a
# periodic meter sample, and the end of the transaction.
MILESTONES: dict[str, dict[str, tuple[str, Any]]] = {
    "2.0.1": {
        "ready": ("StatusNotification", None),
        "charging": ("TransactionEvent",
                     lambda p: p["transactionInfo"].get("chargingState") == "Charging"),
        "sample": ("TransactionEvent", lambda p: p["triggerReason"] == "MeterValuePeriodic"),
        "ended": ("TransactionEvent", lambda p: p["eventType"] == "Ended"),
    },
    "1.6": {
        "ready": ("StatusNotification", lambda p: p["connectorId"] == 1),  # after connector 0
        "charging": ("StatusNotification", lambda p: p["status"] == "Charging"),
        "sample": ("MeterValues", lambda p: "transactionId" in p),
        "ended": ("StopTransaction", None),
    },
}


class _StationLog(logging.Handler):
    def __init__(self, timeline: Timeline, connectors: bool = True) -> None:
        super().__init__(logging.INFO)
        self.timeline = timeline
        # The agent logs connector status in 2.0.1 names; on 1.6 the timeline shows
        # the 1.6 StatusNotifications instead.
        self.words = ("contactor", "connector") if connectors else ("contactor",)

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.name == "evse_agent" and any(word in text for word in self.words):
            self.timeline.line("hardware" if "contactor" in text else "station", text)


async def play(data_dir: Path, version: str = "2.0.1") -> int:
    timeline = Timeline()
    milestones = MILESTONES[version]
    csms = DevCsms()
    csms.on_frame.append(timeline.frame)
    port = await csms.start("127.0.0.1", 0)
    timeline.line("demo", f"development CSMS on ws://127.0.0.1:{port}")
    cfg = parse(
        {
            "station": {"id": STATION, "evse_count": 1, "data_dir": str(data_dir)},
            "ocpp": {"csms_url": f"ws://127.0.0.1:{port}/ocpp", "version": version},
            "sim": {"listen": "127.0.0.1:0"},
            "device_model": {
                "SampledDataCtrlr": {"TxUpdatedInterval": 2},
                "OCPPCommCtrlr": {"RetryBackOffWaitMinimum": 1, "RetryBackOffRandomRange": 0},
            },
        },
        data_dir / "demo.toml",
    )
    agent = Agent(cfg)
    logging.getLogger("evse_agent").addHandler(_StationLog(timeline, version == "2.0.1"))
    runner = asyncio.ensure_future(agent.run())
    mock = agent.hw.mock
    assert mock is not None
    try:
        await csms.wait_for(STATION, *milestones["ready"], timeout=10)
        timeline.line("driver", f"taps card {CARD}")
        mock.tap(CARD)
        await csms.wait_for(STATION, "Authorize", timeout=10)
        await asyncio.sleep(0.3)
        timeline.line("driver", "plugs in the EV (16 A, 3 phases)")
        mock.plug(1, max_current_a=16)
        await csms.wait_for(STATION, *milestones["charging"], timeout=10)
        mark = len(csms.received)
        for _ in range(2):
            await csms.wait_for(STATION, *milestones["sample"], timeout=10, since=mark)
            mark = len(csms.received)
        timeline.line("driver", "unplugs the EV")
        mock.unplug(1)
        await csms.wait_for(STATION, *milestones["ended"], timeout=10)
        await asyncio.sleep(0.2)
        timeline.line("demo", "session complete")
        return 0
    except TimeoutError:
        timeline.line("demo", "FAILED: the expected message did not arrive")
        return 1
    finally:
        agent.stop()
        await runner
        await csms.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="evse-agent demo", description="play a charging session against the development CSMS"
    )
    parser.add_argument("--ocpp", choices=sorted(MILESTONES), default="2.0.1",
                        help="the OCPP version to play it on (default 2.0.1)")
    try:
        args = parser.parse_args(argv or [])
    except SystemExit as stop:  # argparse printed one line of usage and the problem
        return int(stop.code or 0)
    logging.getLogger("evse_agent").setLevel(logging.INFO)
    logging.getLogger().handlers.clear()  # the timeline replaces the log
    logging.getLogger().addHandler(logging.NullHandler())
    with tempfile.TemporaryDirectory(prefix="evse-agent-demo-") as tmp:
        return asyncio.run(play(Path(tmp), args.ocpp))

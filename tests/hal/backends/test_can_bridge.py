"""The CAN link to the EV-communication module (driver "can"), on python-can's `virtual`
bus: the test plays the module on a second Bus object, with frames encoded by the same
DBC through cantools and long payloads over its own ISO-TP stack. Issue 7 item 4;
pilot duty per IEC 61851-1 annex A.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.resources
import itertools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import can
import cantools
import isotp
import pytest
from evse_hal.backends import OptionError
from evse_hal.backends.board_messages import DataKind
from evse_hal.backends.can_bridge import create
from evse_hal.clock import SystemClock
from evse_hal.interfaces import (
    CertificateStatusRequested,
    ContactorChanged,
    ContractCertificatePresented,
    DeviceError,
    DeviceFault,
    EvCertificateRequested,
    HalEvent,
    OcspRequestData,
    PilotChanged,
)

DBC = importlib.resources.files("evse_hal") / "data" / "evse-bridge.dbc"
DB = cantools.database.load_string(DBC.read_text(encoding="utf-8"), database_format="dbc")
_channels = itertools.count(1)
FAST = {"heartbeat_interval_s": 0.05, "heartbeat_timeout_s": 0.4}


def channel_name() -> str:
    return f"ev-bridge-test-{time.monotonic_ns()}-{next(_channels)}"


async def until(condition: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class SimulatedModule:
    """The EV-communication module's side of the bus."""

    def __init__(self, channel: str, base: int = 0x300) -> None:
        self.base = base
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.notifier = can.Notifier(self.bus, [self._on_frame], timeout=0.05)
        self.stack = isotp.NotifierBasedCanStack(
            self.bus, self.notifier,
            address=isotp.Address(isotp.AddressingMode.Normal_11bits,
                                  rxid=base + 0x0F, txid=base + 0x0E),
            params={"max_frame_size": 100_000, "blocksize": 16, "stmin": 0},
        )
        self.stack.start()
        self.counter = 0
        self.cyclic_status: dict[str, Any] | None = None  # PilotStatus sent with each beat
        self._beats: asyncio.Task[None] | None = None

    def _on_frame(self, frame: can.Message) -> None:
        offset = frame.arbitration_id - self.base
        if not 0 <= offset < 0x0E:
            return
        message = DB.get_message_by_frame_id(0x300 + offset)
        with self._lock:
            self.received.append((message.name, message.decode(frame.data, decode_choices=False)))

    def frames(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [v for n, v in self.received if n == name]

    def last(self, name: str) -> dict[str, Any] | None:
        found = self.frames(name)
        return found[-1] if found else None

    def send(self, name: str, **signals: Any) -> None:
        message = DB.get_message_by_name(name)
        values = {s.name: 0 for s in message.signals} | signals
        self.bus.send(can.Message(arbitration_id=message.frame_id - 0x300 + self.base,
                                  is_extended_id=False, data=message.encode(values)))

    def status(self, state: int, **signals: Any) -> None:
        self.send("PilotStatus", PilotState=state, PwmDuty=100, **signals)

    def heartbeat(self) -> None:
        self.counter = (self.counter + 1) % 256
        self.send("ModuleHeartbeat", Counter=self.counter, ProtocolVersion=1)

    def start_heartbeats(self, interval: float = 0.05, stuck: bool = False) -> None:
        async def beat() -> None:
            while True:
                if stuck:
                    self.send("ModuleHeartbeat", Counter=self.counter, ProtocolVersion=1)
                else:
                    self.heartbeat()
                if self.cyclic_status is not None:
                    self.send("PilotStatus", **self.cyclic_status)
                await asyncio.sleep(interval)

        self.stop_heartbeats()
        self._beats = asyncio.create_task(beat())

    def stop_heartbeats(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
            self._beats = None

    def close(self) -> None:
        self.stop_heartbeats()
        self.stack.stop()
        self.notifier.stop()
        self.bus.shutdown()


class Rig:
    def __init__(self, **options: Any) -> None:
        self.channel = channel_name()
        self.module = SimulatedModule(self.channel, options.get("base_id", 0x300))
        self.bridge = create({"interface": "virtual", "channel": self.channel, **FAST,
                              **options}, 1, SystemClock())
        self.pilot = self.bridge.pilot
        self.events: list[HalEvent] = []
        self.sinks: list[Callable[[HalEvent], None]] = []

    def emit(self, event: HalEvent) -> None:
        self.events.append(event)
        for sink in self.sinks:
            sink(event)

    async def start(self) -> None:
        await self.bridge.start(self.emit)
        await self.pilot.start(self.emit)
        if self.bridge.contactor is not None:
            await self.bridge.contactor.start(self.emit)

    async def stop(self) -> None:
        async def bridge() -> None:
            for device in (self.pilot, self.bridge.contactor, self.bridge):
                if device is not None and device.started:
                    await device.stop()

        self.module.stop_heartbeats()
        await asyncio.gather(bridge(), asyncio.to_thread(self.module.close))

    def faults(self) -> list[DeviceFault]:
        return [e for e in self.events if isinstance(e, DeviceFault)]

    def pilot_states(self) -> list[str]:
        return [e.state for e in self.events if isinstance(e, PilotChanged)]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    await r.start()
    r.module.start_heartbeats()
    try:
        yield r
    finally:
        await r.stop()


def test_the_dbc_ships_as_package_data() -> None:
    assert DBC.is_file()
    names = {m.name for m in DB.messages}
    assert {"PilotCommand", "PilotStatus", "ControllerHeartbeat", "ModuleHeartbeat",
            "EvStatus", "EvccId", "Telemetry"} <= names
    assert DB.get_message_by_name("PilotStatus").comment  # documented in the DBC


async def test_pilot_states_a_b_c_are_reported(rig: Rig) -> None:
    rig.module.status(0)
    rig.module.status(1, ProximityAmpacity=32)
    await until(lambda: rig.pilot.state == "B")
    assert rig.bridge.ev_info()["plugged"] is True
    rig.module.status(2, ProximityAmpacity=32, PowerOn=0)
    await until(lambda: rig.pilot.state == "C")
    assert rig.pilot_states() == ["B", "C"]
    assert all(isinstance(e, PilotChanged) and e.evse_id == 1 for e in rig.events)
    rig.module.status(0)
    await until(lambda: rig.pilot.state == "A")
    assert rig.bridge.ev_info()["plugged"] is False


async def test_16_amps_is_26_6_percent_duty_on_the_bus(rig: Rig) -> None:
    """IEC 61851-1 table A.7: 16 A / 0.6 = 26.67 %, down to the 0.1 % step (never more
    than asked)."""
    await rig.pilot.set_offered_current(16)
    cmd = await until(lambda: (c := rig.module.last("PilotCommand")) and not c["ForceX1"] and c)
    assert cmd["PwmDuty"] == pytest.approx(26.6)
    assert (cmd["Enable"], cmd["ForceX1"], cmd["ForceStateF"]) == (1, 0, 0)
    assert cmd["MaxCurrent"] == pytest.approx(16.0)
    assert rig.pilot.offered_current_a == 16.0
    await rig.pilot.set_offered_current(0)
    cmd = await until(lambda: (c := rig.module.last("PilotCommand")) and c["ForceX1"] and c)
    assert cmd["PwmDuty"] == pytest.approx(100.0)  # state X1: no PWM
    assert rig.pilot.offered_current_a == 0.0


@pytest.mark.parametrize(("amps", "duty"), [(63, 89.2), (80, 96.0), (100, 96.0), (32, 53.3)])
async def test_high_current_formula_on_the_bus(rig: Rig, amps: float, duty: float) -> None:
    """Above 51 A: duty = I / 2.5 + 64 (63 A -> 89.2 %, 80 A -> 96 %), clamped at 80 A."""
    await rig.pilot.set_offered_current(amps)
    cmd = await until(lambda: (c := rig.module.last("PilotCommand")) and not c["ForceX1"] and c)
    assert cmd["PwmDuty"] == pytest.approx(duty)


async def test_offer_is_limited_by_the_cable_ampacity(rig: Rig) -> None:
    rig.module.status(1, ProximityAmpacity=20)
    await until(lambda: rig.pilot.state == "B")
    await rig.pilot.set_offered_current(32)
    cmd = await until(lambda: (c := rig.module.last("PilotCommand")) and not c["ForceX1"] and c)
    assert cmd["PwmDuty"] == pytest.approx(33.3)  # 20 A cable
    assert rig.pilot.offered_current_a == 20.0


async def test_iso15118_session_offers_with_5_percent_and_reports_the_ev(rig: Rig) -> None:
    rig.module.status(1)
    rig.module.send("EvStatus", EvMaxCurrent=32, EvSoc=41, HlcActive=1, EvErrorCode=0,
                    EvEnergyRequest=655350, EvBatteryCapacity=77000)
    rig.module.send("EvccId", EvccId=int.from_bytes(bytes.fromhex("0a1b2c3d4e5f"), "little"))
    await until(lambda: rig.bridge.ev_info()["iso15118"])
    await rig.pilot.set_offered_current(16)
    cmd = await until(lambda: (c := rig.module.last("PilotCommand")) and not c["ForceX1"] and c)
    assert cmd["PwmDuty"] == pytest.approx(5.0)
    assert cmd["MaxCurrent"] == pytest.approx(16.0)
    info = rig.bridge.ev_info()
    assert info == {"plugged": True, "iso15118": True, "soc_percent": 41.0,
                    "max_current_a": 32.0, "battery_wh": 77000.0, "energy_request_wh": None}
    await until(lambda: rig.bridge.evccid == "0A1B2C3D4E5F")


async def test_long_payloads_over_iso_tp_arrive_intact(rig: Rig) -> None:
    """Multi-frame ISO-TP: an EXI blob of several kB (12-bit length) and one above
    4095 bytes (32-bit length escape), plus EVCCID and charging needs."""
    rig.module.status(1)
    await until(lambda: rig.pilot.state == "B")
    exi = bytes((i * 7 + 3) % 256 for i in range(3000))
    big = bytes((i * 13 + 1) % 251 for i in range(9000))
    needs = json.dumps({"energy_request_wh": 24000, "departure_time": "2026-01-01T18:00:00Z"})
    rig.module.stack.send(bytes([DataKind.EXI]) + exi)
    await until(lambda: rig.bridge.iso15118_data(DataKind.EXI) == exi, timeout=5)
    rig.module.stack.send(bytes([DataKind.CERTIFICATE_HASH_DATA]) + big)
    await until(lambda: rig.bridge.iso15118_data(DataKind.CERTIFICATE_HASH_DATA), timeout=5)
    assert rig.bridge.iso15118_data(DataKind.CERTIFICATE_HASH_DATA) == big
    rig.module.stack.send(bytes([DataKind.EVCCID]) + b"WMIV1234567890ABCDEF")
    rig.module.stack.send(bytes([DataKind.CHARGING_NEEDS]) + needs.encode())
    await until(lambda: rig.bridge.ev_info()["energy_request_wh"] == 24000.0, timeout=5)
    assert rig.bridge.evccid == "WMIV1234567890ABCDEF"


async def test_long_payload_to_the_module(rig: Rig) -> None:
    blob = bytes(range(256)) * 20  # 5120 bytes: the 32-bit length escape
    await rig.bridge.send_iso15118_data(DataKind.EXI, blob)
    got = await asyncio.to_thread(rig.module.stack.recv, True, 5.0)
    assert got is not None and bytes(got) == bytes([DataKind.EXI]) + blob


async def test_our_heartbeat_is_on_the_bus_and_the_command_repeats(rig: Rig) -> None:
    await until(lambda: len(rig.module.frames("ControllerHeartbeat")) >= 4)
    counters = [f["Counter"] for f in rig.module.frames("ControllerHeartbeat")]
    assert all(b == (a + 1) % 256 for a, b in itertools.pairwise(counters))
    assert {f["ProtocolVersion"] for f in rig.module.frames("ControllerHeartbeat")} == {1}
    assert len(rig.module.frames("PilotCommand")) >= 4  # repeated with every heartbeat


async def test_lost_heartbeat_is_a_fault_and_pilot_f_then_clears(rig: Rig) -> None:
    rig.module.status(2)
    await until(lambda: rig.pilot.state == "C")
    rig.module.stop_heartbeats()
    lost = DeviceFault("pilot", 1, "HeartbeatLost", True)
    await until(lambda: lost in rig.events, timeout=2)
    assert rig.pilot.state == "F"
    assert rig.pilot_states()[-1] == "F"
    assert rig.bridge.ev_info()["plugged"] is False
    # Heartbeats return, the module reports again: cleared, the pilot reads the EV.
    rig.module.start_heartbeats()
    await until(lambda: DeviceFault("pilot", 1, "HeartbeatLost", False) in rig.events)
    assert rig.pilot.state == "F"  # nothing fresh yet
    rig.module.status(1)
    await until(lambda: rig.pilot.state == "B")
    assert rig.pilot_states()[-2:] == ["F", "B"]


async def test_a_module_repeating_one_counter_counts_as_lost(rig: Rig) -> None:
    rig.module.start_heartbeats(stuck=True)
    await until(lambda: DeviceFault("pilot", 1, "HeartbeatLost", True) in rig.events, timeout=2)


async def test_a_silent_module_after_start_is_lost() -> None:
    r = Rig()
    await r.start()
    try:
        await until(lambda: r.faults() == [DeviceFault("pilot", 1, "HeartbeatLost", True)], 2)
        assert r.pilot.state == "F"
    finally:
        await r.stop()


async def test_lost_heartbeat_stops_charging_in_the_station() -> None:
    """The events the bridge reports make the core end the session, offer nothing and
    open the contactor (the station's rules, fed with this backend's events)."""
    from evse_agent.core import messages as m
    from evse_agent.core.station import Station
    from evse_agent.device_model.model import DeviceModel, VariableKey

    dm = DeviceModel()
    dm.load_standard()
    # Free charging: plugging in authorizes, so the test needs no CSMS round trip.
    assert dm.set_from_csms(VariableKey("AuthCtrlr", "Enabled"), "false") == "Accepted"
    station = Station(1, dm, lambda: "tx-1")
    now = SystemClock().now()
    station.handle(m.ConnectionChanged(True), now)
    r = Rig()
    actions: list[m.Action] = []
    r.sinks.append(lambda e: actions.extend(station.handle(e, now)))
    await r.start()
    r.module.start_heartbeats()
    try:
        r.module.status(1)
        await until(lambda: any(isinstance(a, m.OfferCurrent) and a.amps > 0 for a in actions))
        r.module.status(2)
        await until(lambda: any(isinstance(a, m.CloseContactor) for a in actions))
        r.module.stop_heartbeats()
        await until(lambda: any(isinstance(a, m.OpenContactor) for a in actions), timeout=2)
        assert any(isinstance(a, m.OfferCurrent) and a.amps == 0 for a in actions)
        ended = [a for a in actions if isinstance(a, m.TransactionEventAction)
                 and a.event_type == "Ended"]
        assert ended and ended[0].trigger_reason == "EVCommunicationLost"
        assert station.evses[1].connector_status() == "Faulted"
    finally:
        await r.stop()


async def test_module_error_flags_become_device_faults(rig: Rig) -> None:
    rig.module.status(1, ErrDiodeFault=1, ErrRelayWelded=1)
    await until(lambda: len(rig.faults()) == 2)
    assert set(rig.faults()) == {DeviceFault("pilot", 1, "diode_fault", True),
                                 DeviceFault("contactor", 1, "welded", True)}
    rig.module.status(1, ErrRelayWelded=1)
    await until(lambda: DeviceFault("pilot", 1, "diode_fault", False) in rig.events)


async def test_module_switching_power_is_a_contactor() -> None:
    r = Rig(power_switching=True, power_confirm_timeout_s=0.2)
    await r.start()
    r.module.start_heartbeats()
    contactor = r.bridge.contactor
    assert contactor is not None
    try:
        await contactor.close()
        await until(lambda: (c := r.module.last("PilotCommand")) and c["AllowPowerOn"])
        r.module.status(2, PowerOn=1)
        await until(lambda: ContactorChanged(1, True) in r.events)
        assert contactor.closed
        await contactor.open()
        await until(lambda: (c := r.module.last("PilotCommand")) and not c["AllowPowerOn"])
        # The mirror contact stays closed: welded after the confirm timeout.
        await until(lambda: DeviceFault("contactor", 1, "welded", True) in r.events, 2)
    finally:
        await r.stop()


async def test_stop_disables_the_port() -> None:
    r = Rig()
    await r.start()
    await r.pilot.set_offered_current(16)
    await r.pilot.stop()
    cmd = await until(lambda: (c := r.module.last("PilotCommand")) and not c["Enable"] and c)
    assert (cmd["ForceX1"], cmd["AllowPowerOn"]) == (1, 0)
    await r.stop()


async def test_a_late_ev_status_or_unplug_after_stop_does_not_enable_the_pwm() -> None:
    """Hardware.stop stops the pilot before the bridge: frames the module sends in
    between (an ISO 15118 session ending, an unplug) re-apply the offer, which must
    leave the port disabled."""
    r = Rig()
    await r.start()
    r.module.start_heartbeats()
    try:
        r.module.status(2)
        r.module.send("EvStatus", HlcActive=1, EvSoc=255, EvMaxCurrent=6553.5)
        await until(lambda: r.bridge.board.ev.hlc_active)
        await r.pilot.set_offered_current(16)
        await r.pilot.stop()
        await until(lambda: (c := r.module.last("PilotCommand")) and not c["Enable"])
        disabled = len(r.module.frames("PilotCommand"))
        r.module.send("EvStatus", HlcActive=0, EvSoc=255, EvMaxCurrent=6553.5)
        await until(lambda: not r.bridge.board.ev.hlc_active)
        r.module.send("EvStatus", HlcActive=1, EvSoc=255, EvMaxCurrent=6553.5)
        await until(lambda: r.bridge.board.ev.hlc_active)
        r.module.status(0)  # unplugged: the EV's session is forgotten, the offer re-applied
        await until(lambda: not r.bridge.board.ev.hlc_active)
        await until(lambda: len(r.module.frames("PilotCommand")) > disabled + 3)
        late = r.module.frames("PilotCommand")[disabled - 1 :]
        assert [c["Enable"] for c in late] == [0] * len(late)
    finally:
        await r.stop()


async def test_probe_reports_the_module_or_its_absence() -> None:
    r = Rig()
    r.module.cyclic_status = {"PilotState": 1, "PwmDuty": 100, "ProximityAmpacity": 32}
    r.module.start_heartbeats()
    try:
        line = await r.bridge.probe()
        assert line == "EV module protocol 1 (base id 0x300), pilot B, cable 32 A"
    finally:
        r.module.close()
    silent = create({"interface": "virtual", "channel": channel_name(), **FAST}, 1, SystemClock())
    with pytest.raises(DeviceError, match=r"^virtual ev-bridge-test-\S+: no heartbeat from"
                       r" the EV module \(base id 0x300\) within 0.4 s$"):
        await silent.probe()


async def test_an_unknown_interface_is_one_clear_error() -> None:
    bridge = create({"interface": "no-such-can", "channel": "can0"}, 1, SystemClock())
    with pytest.raises(DeviceError, match="^no-such-can can0: cannot open the CAN interface"):
        await bridge.pilot.start(lambda e: None)


async def test_base_id_moves_every_frame() -> None:
    r = Rig(base_id=0x340)
    await r.start()
    r.module.start_heartbeats()
    try:
        r.module.status(1)
        await until(lambda: r.pilot.state == "B")
        await until(lambda: r.module.frames("ControllerHeartbeat"))
    finally:
        await r.stop()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"channel": "can0"}, "interface"),
        ({"interface": "socketcan"}, "channel"),
        ({"interface": "socketcan", "channel": "can0", "bitrat": 500000}, "bitrat"),
        ({"interface": "socketcan", "channel": "can0", "heartbeat_timeout_s": 0.1}, "heartbeat_timeout_s"),
        ({"interface": "socketcan", "channel": "can0", "base_id": -1}, "base_id"),
        ({"interface": "socketcan", "channel": "can0", "power_switching": "yes"}, "power_switching"),
        ({"interface": "socketcan", "channel": "can0", "isotp_stmin_ms": 500}, "isotp_stmin_ms"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError) as err:
        create(options, 1, SystemClock())
    assert err.value.key == key


def test_default_base_id_per_evse() -> None:
    second = create({"interface": "virtual", "channel": "x"}, 2, SystemClock())
    assert "base id 0x310" in second.board.link.description  # type: ignore[attr-defined]
    assert second.evse_id == 2 and second.pilot.evse_id == 2


OCSP = {"hash_algorithm": "SHA256", "issuer_name_hash": "aa" * 32,
        "issuer_key_hash": "bb" * 32, "serial_number": "0123abcd",
        "responder_url": "http://ocsp.example.com/"}


async def test_plug_and_charge_requests_from_the_module_become_hal_events(rig: Rig) -> None:
    """ISO 15118 Plug & Charge over ISO-TP: the contract (C07), a certificate
    installation request (M01) and an OCSP status request (M06) become the HAL events
    the agent's ISO 15118 service handles."""
    chain = "-----BEGIN CERTIFICATE-----\n" + "A" * 4000 + "\n-----END CERTIFICATE-----\n"
    contract = {"emaid": "DE*ABC*C12345678*9", "ocsp_request_data": [OCSP],
                "certificate_chain_pem": chain}
    rig.module.stack.send(bytes([DataKind.CERTIFICATE_HASH_DATA]) + json.dumps(contract).encode())
    presented = await until(lambda: [e for e in rig.events
                                     if isinstance(e, ContractCertificatePresented)], timeout=5)
    assert presented == [ContractCertificatePresented(
        1, "DE*ABC*C12345678*9", (OcspRequestData(**OCSP),), chain)]
    exi = base64.b64encode(bytes(range(256)) * 12).decode()
    request = {"action": "Install", "iso15118_schema_version": "urn:iso:15118:2:2013:MsgDef",
               "exi_request": exi}
    rig.module.stack.send(bytes([DataKind.EV_CERTIFICATE_REQUEST]) + json.dumps(request).encode())
    wanted = EvCertificateRequested(1, "Install", "urn:iso:15118:2:2013:MsgDef", exi)
    await until(lambda: wanted in rig.events, timeout=5)
    rig.module.stack.send(bytes([DataKind.CERTIFICATE_STATUS_REQUEST])
                          + json.dumps({"ocsp_request_data": OCSP}).encode())
    await until(lambda: CertificateStatusRequested(1, OcspRequestData(**OCSP)) in rig.events)
    # A malformed request is dropped (and logged), the link carries on.
    rig.module.stack.send(bytes([DataKind.EV_CERTIFICATE_REQUEST]) + b'{"action": "Explode"}')
    rig.module.status(1)
    await until(lambda: rig.pilot.state == "B")
    assert sum(isinstance(e, EvCertificateRequested) for e in rig.events) == 1


async def test_plug_and_charge_answers_go_to_the_module(rig: Rig) -> None:
    exi = base64.b64encode(bytes(range(256)) * 30).decode()  # about 10 kB of JSON
    rig.bridge.ev_certificate_response("Accepted", exi)
    got = await asyncio.to_thread(rig.module.stack.recv, True, 5.0)
    assert got is not None and got[0] == DataKind.EV_CERTIFICATE_RESPONSE
    assert json.loads(bytes(got[1:])) == {"status": "Accepted", "exi_response": exi}
    rig.bridge.contract_authorization("Accepted", None)
    got = await asyncio.to_thread(rig.module.stack.recv, True, 5.0)
    assert got is not None and got[0] == DataKind.CONTRACT_AUTHORIZATION
    assert json.loads(bytes(got[1:])) == {"status": "Accepted", "certificate_status": None}
    rig.bridge.certificate_status_response(OcspRequestData(**OCSP), "Failed", None)
    got = await asyncio.to_thread(rig.module.stack.recv, True, 5.0)
    assert got is not None and got[0] == DataKind.CERTIFICATE_STATUS_RESPONSE
    assert json.loads(bytes(got[1:])) == {"ocsp_request_data": OCSP, "status": "Failed",
                                          "ocsp_result": None}


async def test_stop_ends_plug_and_charge_sends_before_closing_the_link() -> None:
    """A Plug & Charge answer still going out (the module gives no flow control) is
    ended by the stop, not left writing to a closed link."""
    r = Rig()
    await r.start()
    await asyncio.to_thread(r.module.stack.stop)  # no flow control: the send waits
    try:
        exi = base64.b64encode(bytes(range(256)) * 30).decode()
        r.bridge.ev_certificate_response("Accepted", exi)
        sending = list(r.bridge.board._tasks)
        await asyncio.sleep(0.05)
        assert sending and not any(t.done() for t in sending)
        link = r.bridge.board.link
        close = link.close
        at_close: list[bool] = []

        async def closing() -> None:
            at_close.append(all(t.done() for t in sending))
            await close()

        link.close = closing  # type: ignore[method-assign]
        for device in (r.pilot, r.bridge):
            await device.stop()
        assert at_close == [True] and not r.bridge.board._tasks
    finally:
        await r.stop()


async def test_telemetry_is_decoded(rig: Rig) -> None:
    rig.module.send("Telemetry", CpVoltageHigh=8.95, CpVoltageLow=-11.9, Temperature=41,
                    Supply12V=12.1)
    await until(lambda: rig.bridge.board.telemetry)
    t = rig.bridge.board.telemetry
    assert t["CpVoltageHigh"] == pytest.approx(8.95)
    assert t["CpVoltageLow"] == pytest.approx(-11.9)
    assert t["Temperature"] == pytest.approx(41)


def test_every_module_error_flag_is_decoded_and_mapped_to_a_fault() -> None:
    from evse_hal.backends.board_messages import ERROR_FLAGS
    from evse_hal.backends.board_support import ERROR_FAULTS
    from evse_hal.backends.can_bridge import ERROR_SIGNALS

    status = DB.get_message_by_name("PilotStatus")
    assert set(ERROR_SIGNALS) == {s.name for s in status.signals if s.name.startswith("Err")}
    assert set(ERROR_SIGNALS.values()) == ERROR_FLAGS == set(ERROR_FAULTS)


async def test_failing_sends_are_logged_once_and_their_recovery_once(
    rig: Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """can0 down (ENETDOWN, bus-off): every heartbeat send fails; the journal gets one
    line for the outage and one when sending works again, not one per heartbeat."""
    import can

    bus = rig.bridge.board.link._bus  # type: ignore[attr-defined]
    attempts = 0

    def down(frame: Any, timeout: float | None = None) -> None:
        nonlocal attempts
        attempts += 1
        raise can.CanOperationError("Network is down [Error Code 100]")

    caplog.set_level(logging.DEBUG, logger="evse_hal")
    monkeypatch.setattr(bus, "send", down)
    await until(lambda: attempts >= 6)
    monkeypatch.undo()
    await until(lambda: any("sending on" in r.getMessage() for r in caplog.records))
    errors = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.ERROR and "cannot send" in r.getMessage()]
    assert len(errors) == 1 and "Network is down" in errors[0], errors
    back = [r for r in caplog.records if "sending on" in r.getMessage()]
    assert len(back) == 1 and back[0].levelno == logging.WARNING


async def test_sends_never_wait_on_the_event_loop(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands and heartbeats go out from the event loop: a full transmit queue must
    fail the send at once (logged once, as any failed send), not block the loop."""
    bus = rig.bridge.board.link._bus  # type: ignore[attr-defined]
    send = bus.send
    timeouts: list[float | None] = []

    def spy(frame: Any, timeout: float | None = None) -> None:
        timeouts.append(timeout)
        send(frame, timeout)

    monkeypatch.setattr(bus, "send", spy)
    await rig.pilot.set_offered_current(16)
    await until(lambda: len(timeouts) >= 4)
    assert set(timeouts) == {0}

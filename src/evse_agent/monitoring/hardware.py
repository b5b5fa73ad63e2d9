"""Hard-wired monitors: the hardware problems the HAL reports as DeviceFault events,
turned into monitors the CSMS can list (N02) but neither change (N04.FR.18) nor clear
(N06.FR.03), whose trips are NotifyEvents with eventNotificationType HardWiredMonitor.

A fault lands where the device model puts it (device_model.physical / live): on the
Problem variable of the device's component (DEVICE_COMPONENTS: contactor ->
PowerContactor, meter -> FiscalMetering, rfid -> TokenReader, pilot ->
CPPWMController, lock -> ConnectorPlugRetentionLock, ...) at the fault's EVSE (every
connector of it for per-connector components), and for the faults that need a person
(TRIPPING_FAULTS: a welded contactor) also on Tripped. A device the model does not
describe lands on ChargingStation.Problem.

Severities (0 Danger .. 9 Debug, see SetMonitoringLevelRequest), by judgement:
- Tripped (welded contactor): 0 Danger - the outlet may stay live after the session.
- contactor, meter, lock: 1 Hardware Failure - this EVSE cannot charge (no switching,
  no billable readings, G05.FR.01 no charging without the lock).
- rfid, controller, unknown devices: 2 System Failure - the station works on, with
  less (remote start and plug-and-charge still authorize).
- pilot: 3 Critical - usually the EV's pilot circuit (missing diode); no charging.
- ev, display: 4 Error - the EV's own report, or a screen; charging continues.

Hard-wired monitors are listed as type Delta, value 1: they watch a boolean and fire
on every change of it. Their events carry trigger Alerting (a fault is an alert with
a return to normal, reported with cleared = true), techCode = the HAL's fault name,
techInfo = device, fault and EVSE. They fire from `fault()`, not from device-model
changes, so the fault name is known; the device model's own Problem / Tripped values
come from device_model.live.
"""

from __future__ import annotations

from ..device_model.live import TRIPPING_FAULTS
from ..device_model.model import DeviceModel, VariableKey
from ..device_model.physical import DEVICE_COMPONENTS
from .monitors import DELTA, HARD_WIRED, Monitor

# Ids of hard-wired monitors: the same after every boot, far above the ids handed out
# to the CSMS's monitors.
HARD_WIRED_BASE = 1_000_000
PROBLEM_SEVERITY = {
    "contactor": 1, "meter": 1, "lock": 1, "rfid": 2, "controller": 2, "pilot": 3, "ev": 4,
    "display": 4,
}
TRIPPED_SEVERITY = 0
OTHER_SEVERITY = 2
STATION = "ChargingStation"
_DEVICES = sorted(DEVICE_COMPONENTS)


def monitor_id(device: str, key: VariableKey) -> int:
    """Fixed per device, EVSE, connector and variable (Problem or Tripped)."""
    slot = _DEVICES.index(device) + 1 if device in DEVICE_COMPONENTS else 0
    return (HARD_WIRED_BASE + (key.evse_id or 0) * 10_000 + (key.connector_id or 0) * 100
            + slot * 2 + (key.variable == "Tripped"))


class HardWiredMonitors:
    """The hard-wired monitors and the faults active on each of them."""

    def __init__(self, dm: DeviceModel) -> None:
        self._dm = dm
        self.monitors: dict[int, Monitor] = {}
        self._faults: dict[int, set[str]] = {}
        # The Problem / Tripped variables the model defines on device components get
        # their monitors before any fault, so that GetMonitoringReport lists them.
        for device in _DEVICES:
            for key in self._targets(device, None, "Problem"):
                for variable in ("Problem", "Tripped"):
                    if dm.find(_with_variable(key, variable)) is not None:
                        self._monitor(device, _with_variable(key, variable))

    def fault(
        self, device: str, evse_id: int, fault: str, active: bool
    ) -> list[tuple[Monitor, bool]]:
        """Record a DeviceFault. Returns each monitor whose state changed news: True when
        a fault became active on it (each new fault is reported, also next to one that
        is active already), False when its last active fault cleared."""
        out: list[tuple[Monitor, bool]] = []
        variables = ["Problem"] + (["Tripped"] if (device, fault) in TRIPPING_FAULTS else [])
        for variable in variables:
            for key in self._targets(device, evse_id, variable):
                m = self._monitor(device, key)
                faults = self._faults.setdefault(m.id, set())
                if active and fault not in faults:
                    faults.add(fault)
                    m.tripped = True
                    out.append((m, True))
                elif not active and fault in faults:
                    faults.discard(fault)
                    if not faults:
                        m.tripped = False
                        out.append((m, False))
        return out

    def _monitor(self, device: str, key: VariableKey) -> Monitor:
        mid = monitor_id(device, key)
        m = self.monitors.get(mid)
        if m is None:
            severity = (TRIPPED_SEVERITY if key.variable == "Tripped"
                        else PROBLEM_SEVERITY.get(device, OTHER_SEVERITY))
            m = Monitor(mid, key, DELTA, 1, severity, origin=HARD_WIRED)
            self.monitors[mid] = m
        return m

    def _targets(self, device: str, evse_id: int | None, variable: str) -> list[VariableKey]:
        """The keys of `variable` on the device's components (at `evse_id`, 0 = the
        station; None = everywhere), as the device model defines them; when it defines
        none, the key the model would use."""
        name = DEVICE_COMPONENTS.get(device, STATION)
        places = [(i, e, c) for (n, i, e, c) in self._dm.components() if n == name]
        if evse_id is None:
            return [VariableKey(name, variable, i, None, e, c) for i, e, c in places]
        # At the fault's EVSE; a station-wide device reported with an EVSE id is still
        # the station's.
        here = [p for p in places if (p[1] or 0) == evse_id] or [p for p in places if not p[1]]
        if here:
            return [VariableKey(name, variable, i, None, e, c) for i, e, c in here]
        at = evse_id or None if name != STATION else None
        return [VariableKey(name, variable, evse_id=at)]


def _with_variable(key: VariableKey, variable: str) -> VariableKey:
    return VariableKey(key.component, variable, key.component_instance, None, key.evse_id,
                       key.connector_id)

"""Live values of the physical components, fed from the HAL and the core.

The agent hands every HAL event, connector status and meter reading to a LiveFeed;
it writes them into the device model with `set_live`, which tells subscribers (so
monitoring sees a Problem appear or an AvailabilityState change). Roll-ups follow
the components' own definitions: an EVSE has a Problem when any device on it has one,
the station when anything has one; an EVSE's AvailabilityState follows its
connectors, the station's follows its EVSEs.
"""

from __future__ import annotations

from collections.abc import Mapping

from evse_hal.interfaces import ContactorChanged, DeviceFault, MeterReading, PilotChanged

from .model import DeviceModel, Value, VariableKey
from .physical import DEVICE_COMPONENTS

# Faults that need a person on site: a welded contactor cannot be cleared remotely.
TRIPPING_FAULTS = frozenset({("contactor", "welded")})
# The state an EVSE shows for several connectors: the most engaged one wins.
_EVSE_ORDER = ("Occupied", "Reserved", "Available", "Unavailable", "Faulted")
# The station shows the best state any of its EVSEs offers a new driver.
_STATION_ORDER = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
EV_CONNECTED = frozenset("BCD")


class LiveFeed:
    def __init__(self, dm: DeviceModel) -> None:
        self.dm = dm
        self._faults: dict[tuple[str, int], set[str]] = {}  # (device, evse id) -> faults

    # -- from the core -----------------------------------------------------------------
    def connector_status(self, evse_id: int, connector_id: int, status: str) -> None:
        """A StatusNotification status (Available, Occupied, Reserved, Unavailable,
        Faulted) of one connector, as the core reports it."""
        at = {"evse_id": evse_id, "connector_id": connector_id}
        self._set(VariableKey("Connector", "AvailabilityState", **at), status)
        self._set(VariableKey("Connector", "Enabled", **at), status != "Unavailable")
        states = [
            self._get(VariableKey("Connector", "AvailabilityState", evse_id=evse_id,
                                  connector_id=c))
            for c in self._connectors(evse_id)
        ]
        evse_state = _first(_EVSE_ORDER, states)
        self._set(VariableKey("EVSE", "AvailabilityState", evse_id=evse_id), evse_state)
        self._set(VariableKey("EVSE", "Enabled", evse_id=evse_id), evse_state != "Unavailable")
        evse_states = [self._get(VariableKey("EVSE", "AvailabilityState", evse_id=e))
                       for e in self._evses()]
        station_state = _first(_STATION_ORDER, evse_states)
        self._set(VariableKey("ChargingStation", "AvailabilityState"), station_state)
        self._set(VariableKey("ChargingStation", "Enabled"), station_state != "Unavailable")

    def meter_reading(self, evse_id: int, reading: MeterReading) -> None:
        self._set(VariableKey("EVSE", "Power", evse_id=evse_id), float(reading.power_w))
        self._set(VariableKey("FiscalMetering", "EnergyImportRegister", evse_id=evse_id),
                  float(reading.energy_wh))

    def ev_info(self, evse_id: int, info: Mapping[str, float | bool | None]) -> None:
        """What the EV bridge says (EvBridge.ev_info()); None clears a value."""
        def num(name: str) -> float | None:
            value = info.get(name)
            return None if value is None or isinstance(value, bool) else float(value)

        ev = {"evse_id": evse_id}
        self._set(VariableKey("ConnectedEV", "Available", **ev), bool(info.get("plugged")))
        self._set(VariableKey("ConnectedEV", "StateOfCharge", **ev), num("soc_percent"))
        self._set(VariableKey("ConnectedEV", "ACCurrent", **ev), num("max_current_a"), "MaxSet")
        self._set(VariableKey("ConnectedEV", "EnergyCapacity", **ev), num("battery_wh"))
        self._set(VariableKey("ConnectedEV", "EnergyImport", **ev), num("energy_request_wh"),
                  "Target")

    def display_text(self, text: str) -> None:
        self._set(VariableKey("Display", "DataText", variable_instance="Visible"), text[:1000])

    # -- from the HAL --------------------------------------------------------------------
    def hal_event(self, event: object) -> None:
        """Any evse_hal event; the ones without a device-model meaning are ignored."""
        match event:
            case PilotChanged(evse_id=evse_id, state=state):
                at = {"evse_id": evse_id}
                self._set(VariableKey("CPPWMController", "State", **at), state)
                self._set(VariableKey("CPPWMController", "Active", **at), state in EV_CONNECTED)
                if state not in EV_CONNECTED:
                    self.ev_info(evse_id, {"plugged": False})
                else:
                    self._set(VariableKey("ConnectedEV", "Available", **at), True)
            case ContactorChanged(evse_id=evse_id, closed=closed):
                self._set(VariableKey("PowerContactor", "Active", evse_id=evse_id), closed)
            case DeviceFault():
                self.device_fault(event.device, event.evse_id, event.fault, event.active)

    def device_fault(self, device: str, evse_id: int, fault: str, active: bool = True) -> None:
        """A HAL DeviceFault: the device component's Problem (and Tripped for faults
        that need a person), then the roll-up to Connector, EVSE and station."""
        faults = self._faults.setdefault((device, evse_id), set())
        (faults.add if active else faults.discard)(fault)
        component = DEVICE_COMPONENTS.get(device)
        if component is None:
            return  # a device the model does not describe: the station roll-up still counts
        tripped = any((device, f) in TRIPPING_FAULTS for f in faults)
        for name, instance, e, c in self.dm.components():
            if name == component and (e or 0) == evse_id:
                self._set(VariableKey(name, "Problem", instance, None, e, c), bool(faults))
                self._set(VariableKey(name, "Tripped", instance, None, e, c), tripped)
        self._roll_up()

    # -- helpers -------------------------------------------------------------------------
    def _roll_up(self) -> None:
        problem: dict[int | None, bool] = {}
        tripped: dict[int | None, bool] = {}
        for (device, evse_id), faults in self._faults.items():
            if faults:
                where = evse_id or None
                problem[where] = True
                tripped[where] = tripped.get(where, False) or any(
                    (device, f) in TRIPPING_FAULTS for f in faults)
        for evse_id in self._evses():
            self._set(VariableKey("EVSE", "Problem", evse_id=evse_id), problem.get(evse_id, False))
            self._set(VariableKey("EVSE", "Tripped", evse_id=evse_id), tripped.get(evse_id, False))
            lock = {c: bool(self._get(VariableKey("ConnectorPlugRetentionLock", "Problem",
                                                  evse_id=evse_id, connector_id=c)))
                    for c in self._connectors(evse_id)}
            for c, jammed in lock.items():
                self._set(VariableKey("Connector", "Problem", evse_id=evse_id, connector_id=c),
                          jammed)
        self._set(VariableKey("ChargingStation", "Problem"), any(problem.values()))
        self._set(VariableKey("ChargingStation", "Tripped"), any(tripped.values()))

    def _evses(self) -> list[int]:
        return sorted(e for (name, _, e, _) in self.dm.components() if name == "EVSE" and e)

    def _connectors(self, evse_id: int) -> list[int]:
        return sorted(c for (name, _, e, c) in self.dm.components()
                      if name == "Connector" and e == evse_id and c)

    def _get(self, key: VariableKey) -> Value | None:
        var = self.dm.find(key)
        return None if var is None else var.value_of()

    def _set(self, key: VariableKey, value: Value | None, attribute: str = "Actual") -> None:
        # A station built without some device simply has no such variable: skip it.
        var = self.dm.find(key)
        if var is not None and var.has_attribute(attribute):
            self.dm.set_live(key, value, attribute)


def _first(order: tuple[str, ...], states: list[Value | None]) -> str:
    present = {s for s in states if isinstance(s, str)}
    return next((s for s in order if s in present), "Available")

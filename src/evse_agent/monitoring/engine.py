"""The monitoring engine (OCPP 2.0.1 functional block N, use cases N02 - N08), sans-I/O.

Plain calls in, payload dicts out; times are passed in as aware datetimes:
- CSMS requests: `set_variable_monitoring`, `clear_variable_monitoring`,
  `set_monitoring_base`, `set_monitoring_level` return the response payload;
  `monitoring_report` returns the response and the NotifyMonitoringReport requests.
- Triggers: the engine subscribes to the DeviceModel and records the changes of
  monitored variables; `drain_events(now)` evaluates them and returns eventData.
  `device_fault(...)` (HAL faults, hard-wired monitors) and `tick(now)` (Periodic,
  due at `next_wakeup(now)`) return eventData directly.
- Delivery: `notify_event_requests(events, now, online)` builds NotifyEventRequests,
  or keeps events for later while offline; `flush(now)` sends what was kept.

Durability (N07.FR.13): every change hands the full durable state, a list of dicts,
to `persist`; the list comes back as `load` at the next start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ..device_model.model import DeviceModel, Value, VariableKey
from . import settings
from .events import EventFactory
from .hardware import HardWiredMonitors
from .monitors import (
    CUSTOM,
    DELTA,
    HARD_WIRED,
    NUMERIC,
    PERIODICS,
    PRECONFIGURED,
    THRESHOLDS,
    Monitor,
    delta_reached,
    first_due,
    following_due,
    refusal,
    threshold_exceeded,
)
from .reports import CRITERIA, OfflineQueue, monitoring_report_pages, notify_event_pages, select

Persist = Callable[[list[dict[str, Any]]], None]
MONITORING_BASES = ("All", "FactoryDefault", "HardWiredOnly")
PRECONFIGURED_BASE = 500_000  # ids of preconfigured monitors: fixed, below hard-wired


class MonitoringEngine:
    def __init__(
        self,
        dm: DeviceModel,
        persist: Persist | None = None,
        load: list[dict[str, Any]] | None = None,
        *,
        preconfigured: Iterable[dict[str, Any]] = (),
        transactions: Callable[[], dict[int, str]] | None = None,
        items_per_message: int = 20,
        subscribe: bool = True,
    ) -> None:
        """Build the engine after the device model is complete (physical components
        included): hard-wired monitors are made for the device components it defines.
        `preconfigured`: the manufacturer's monitors as SetMonitoringData dicts
        (without id), active under the bases All and FactoryDefault. `transactions`:
        the ongoing transaction id per EVSE (for monitors with transaction = true and
        for eventData.transactionId). `items_per_message`: monitors per
        NotifyMonitoringReport and events per NotifyEvent."""
        self.dm = dm
        self._persist = persist
        self._transactions = transactions
        self._per_message = items_per_message
        self._hard_wired = HardWiredMonitors(dm)
        self._templates: dict[int, Monitor] = {}
        for i, data in enumerate(preconfigured):
            m = Monitor(
                PRECONFIGURED_BASE + i, self._canonical(data["component"], data["variable"]),
                data["type"], data["value"], int(data["severity"]),
                bool(data.get("transaction", False)), PRECONFIGURED,
            )
            self._templates[m.id] = m
        self._monitors: dict[int, Monitor] = dict(self._hard_wired.monitors)
        self._base = str(settings.read(dm, "ActiveMonitoringBase", default=settings.DEFAULT_BASE))
        self._level = int(settings.read(dm, "ActiveMonitoringLevel", default=settings.LEVEL))
        self._events = EventFactory(dm, self._save, transactions)
        self._changes: list[tuple[VariableKey, Value | None]] = []
        self._pending: list[dict[str, Any]] = []
        self._offline = OfflineQueue()
        self._recheck = False
        self._restore(load)
        self._publish_settings()
        if subscribe:
            dm.subscribe(self._on_change)

    # -- N04 SetVariableMonitoring -------------------------------------------------------
    def set_variable_monitoring(self, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        items = payload["setMonitoringData"]
        settings.enforce_limits(self.dm, payload, items, "SetVariableMonitoring")  # N04.FR.09
        results = [self._set_one(item, now) for item in items]  # N04.FR.01 / 02
        if any(r["status"] == "Accepted" for r in results):
            self._save()
        return {"setMonitoringResult": results}

    def _set_one(self, item: dict[str, Any], now: datetime) -> dict[str, Any]:
        result: dict[str, Any] = {
            "type": item["type"], "severity": item["severity"],
            "component": item["component"], "variable": item["variable"],
        }
        key = self._canonical(item["component"], item["variable"])
        old = self._monitors.get(item["id"]) if "id" in item else None
        var = self.dm.find(key)
        unknown = self.dm.unknown_status(key) if var is None else ""
        refused = refusal(item, key, var, unknown, old, self._monitors.values())
        result["status"] = refused[0] if refused else "Accepted"
        if refused is not None:
            result["statusInfo"] = {"reasonCode": refused[1]}
            return result
        m = Monitor(
            old.id if old is not None else self._new_id(), key, item["type"], item["value"],
            item["severity"], bool(item.get("transaction", False)), CUSTOM,  # N04.FR.15
        )
        if old is not None and old.type in THRESHOLDS and m.type in THRESHOLDS:
            m.tripped = old.tripped  # N07.FR.11: the new threshold may clear the old trip
        self._activate(m, now)
        result["id"] = m.id  # N04.FR.11
        return result

    def _new_id(self) -> int:
        taken = [i for i in self._monitors if i < PRECONFIGURED_BASE]
        new = max(taken, default=0) + 1
        while new in self._monitors or new in self._templates:
            new += 1
        return new

    def _activate(self, m: Monitor, now: datetime | None) -> None:
        self._monitors[m.id] = m
        m.reference, m.has_reference = self._current(m.key), True
        if m.type in PERIODICS:
            m.next_due = first_due(m, now) if now is not None else None
        if m.type in THRESHOLDS and now is not None:
            # N07.FR.11: a new or changed threshold is checked against the value now.
            self._pending.extend(self._threshold(m, self._current(m.key), now))

    # -- N06 ClearVariableMonitoring -----------------------------------------------------
    def clear_variable_monitoring(self, payload: dict[str, Any]) -> dict[str, Any]:
        ids = payload["id"]
        settings.enforce_limits(self.dm, payload, ids, "ClearVariableMonitoring")  # N06.FR.06/07
        results = []
        for monitor_id in ids:  # N06.FR.05: one result per id
            m = self._monitors.get(monitor_id)
            if m is None:
                results.append({"id": monitor_id, "status": "NotFound",
                                "statusInfo": {"reasonCode": "NotFound"}})  # N06.FR.02
            elif m.origin != CUSTOM:
                # N06.FR.03: hard-wired monitors cannot go; preconfigured ones leave only
                # through SetMonitoringBase HardWiredOnly, so FactoryDefault stays exact.
                results.append({"id": monitor_id, "status": "Rejected",
                                "statusInfo": {"reasonCode": "ReadOnly"}})
            else:
                del self._monitors[monitor_id]  # N07.FR.12: no cleared event on removal
                results.append({"id": monitor_id, "status": "Accepted"})  # N06.FR.01
        if any(r["status"] == "Accepted" for r in results):
            self._save()
        return {"clearMonitoringResult": results}

    # -- N03 SetMonitoringBase, N05 SetMonitoringLevel -----------------------------------
    def set_monitoring_base(self, payload: dict[str, Any]) -> dict[str, Any]:
        base = payload["monitoringBase"]
        if base not in MONITORING_BASES:
            return {"status": "NotSupported", "statusInfo": {"reasonCode": "UnsupportedParam"}}
        if base in ("FactoryDefault", "HardWiredOnly"):
            # N03.FR.04 / 05: custom monitors (overruled preconfigured ones included) go.
            self._monitors = {i: m for i, m in self._monitors.items() if m.origin == HARD_WIRED}
        if base in ("All", "FactoryDefault"):
            self._activate_templates()  # N03.FR.03 / 04
        self._base = base
        self._save()
        return {"status": "Accepted"}  # N03.FR.01

    def set_monitoring_level(self, payload: dict[str, Any]) -> dict[str, Any]:
        severity = payload["severity"]
        if not 0 <= severity <= 9:
            return {"status": "Rejected", "statusInfo": {"reasonCode": "ValueOutOfRange"}}
        self._level = severity  # N05.FR.03: applied where events are made
        self._save()
        return {"status": "Accepted"}  # N05.FR.01

    def _activate_templates(self) -> None:
        for t in self._templates.values():
            if t.id not in self._monitors:  # an overruling custom monitor stays (N03.FR.03)
                m = Monitor(t.id, t.key, t.type, t.value, t.severity, t.transaction, t.origin)
                self._activate(m, None)
                self._recheck = True

    # -- N02 GetMonitoringReport ---------------------------------------------------------
    def monitoring_report(
        self, payload: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        criteria = payload.get("monitoringCriteria")
        cvs = payload.get("componentVariable")
        if cvs:  # N02.FR.07
            settings.enforce_limits(self.dm, payload, cvs, "GetReport", "DeviceDataCtrlr")
        if criteria and any(c not in CRITERIA for c in criteria):
            return {"status": "NotSupported",
                    "statusInfo": {"reasonCode": "UnsupportedParam"}}, []  # N02.FR.02
        chosen = select(self._monitors.values(), criteria, cvs)
        if not chosen:
            return {"status": "EmptyResultSet", "statusInfo": {"reasonCode": "NotFound"}}, []
        pages = monitoring_report_pages(payload["requestId"], chosen, now, self._per_message)
        return {"status": "Accepted"}, pages  # N02.FR.01 / 03

    # -- N07 triggers --------------------------------------------------------------------
    def device_fault(
        self, device: str, evse_id: int, fault: str, active: bool, now: datetime
    ) -> list[dict[str, Any]]:
        """A DeviceFault from the HAL, as eventData of its hard-wired monitors (Problem,
        and Tripped for a fault that needs a person)."""
        where = f" on EVSE {evse_id}" if evse_id else ""
        tech = (fault, f"{device} {fault}{where}: {'active' if active else 'cleared'}")
        out = []
        for m, tripped in self._hard_wired.fault(device, evse_id, fault, active):
            self._monitors.setdefault(m.id, m)
            if self._reportable(m):  # N07.FR.15
                value = "true" if tripped else "false"
                out.append(self._events.make(m, "Alerting", value, now, not tripped, tech))
        return out

    def value_changed(
        self, key: VariableKey, value: Value | None, now: datetime
    ) -> list[dict[str, Any]]:
        """eventData for the threshold and delta monitors on `key` that fire now.
        The engine calls this itself for the changes it heard (see drain_events)."""
        out: list[dict[str, Any]] = []
        for m in sorted(self._monitors.values(), key=lambda m: m.id):
            if m.key != key or m.origin == HARD_WIRED or not self._active(m):
                continue  # hard-wired monitors fire from device_fault, with the fault
            if m.type in THRESHOLDS:
                out.extend(self._threshold(m, value, now))
            elif m.type == DELTA:
                out.extend(self._delta(m, value, now))
        return out

    def drain_events(self, now: datetime) -> list[dict[str, Any]]:
        """eventData for everything since the last drain: the device-model changes the
        engine heard, thresholds checked when set (N07.FR.11), and after a restart the
        thresholds that returned to normal meanwhile (N07.FR.14)."""
        out, self._pending = self._pending, []
        changes, self._changes = self._changes, []
        if self._recheck:
            self._recheck = False
            for m in sorted(self._monitors.values(), key=lambda m: m.id):
                if m.type in THRESHOLDS and m.origin != HARD_WIRED and self._active(m):
                    out.extend(self._threshold(m, self._current(m.key), now))
        for key, value in changes:
            out.extend(self.value_changed(key, value, now))
        return out

    def _on_change(self, key: VariableKey, value: Value) -> None:
        # Called for every device-model write, live HAL values included: keep only what
        # a monitor watches, and evaluate later when the caller supplies the time.
        if any(m.key == key and m.origin != HARD_WIRED for m in self._monitors.values()):
            self._changes.append((key, value))
            del self._changes[:-10_000]  # bounded even if nobody drains

    def _threshold(self, m: Monitor, value: Value | None, now: datetime) -> list[dict[str, Any]]:
        exceeded = threshold_exceeded(m, value)
        if exceeded is None or exceeded == m.tripped:
            return []
        m.tripped = exceeded
        self._save()  # the trip state is durable (N07.FR.14)
        if not self._reportable(m):
            return []
        # N07.FR.16 / 17 on exceeding; N07.FR.02 cleared = true on return.
        return [self._events.make(m, "Alerting", value, now, cleared=not exceeded)]

    def _delta(self, m: Monitor, value: Value | None, now: datetime) -> list[dict[str, Any]]:
        var = self.dm.find(m.key)
        data_type = var.data_type if var is not None else "string"
        if not m.has_reference or (data_type in NUMERIC and m.reference is None):
            m.reference, m.has_reference = value, True  # no baseline to measure from yet
            return []
        if not delta_reached(m, value, data_type):
            return []
        m.reference = value  # N07.FR.18: measured from the last event on
        if not self._reportable(m):
            return []
        return [self._events.make(m, "Delta", value, now)]

    # -- N08 Periodic --------------------------------------------------------------------
    def next_wakeup(self, now: datetime) -> datetime | None:
        due = []
        for m in self._monitors.values():
            if m.type in PERIODICS:
                if m.next_due is None:
                    m.next_due = first_due(m, now)  # after a restart: from now on
                due.append(m.next_due)
        return min(due) if due else None

    def tick(self, now: datetime) -> list[dict[str, Any]]:
        out = []
        for m in sorted(self._monitors.values(), key=lambda m: m.id):
            if m.type not in PERIODICS:
                continue
            if m.next_due is None:
                m.next_due = first_due(m, now)
                continue
            if now < m.next_due:
                continue
            m.next_due = following_due(m, m.next_due, now)
            if self._active(m) and self._reportable(m):  # N08.FR.05: trigger Periodic
                out.append(self._events.make(m, "Periodic", self._current(m.key), now))
        return out

    # -- delivery (N07.FR.04, N08.FR.03) -------------------------------------------------
    def notify_event_requests(
        self, event_data: list[dict[str, Any]], now: datetime, online: bool
    ) -> list[dict[str, Any]]:
        """NotifyEventRequest payloads for `event_data` (seqNo from 0, tbc, paged); while
        offline nothing is returned and the events go to `queue_offline`."""
        if not online:
            self.queue_offline(event_data)
            return []
        return notify_event_pages(event_data, now, self._per_message)

    def queue_offline(self, event_data: list[dict[str, Any]]) -> None:
        """Keep events with severity <= OfflineQueuingSeverity for `flush`; drop the
        rest. Also for events whose NotifyEvent could not be delivered."""
        limit = settings.offline_queuing_severity(self.dm)
        self._offline.add(e for e in event_data if self.severity_of(e) <= limit)

    def flush(self, now: datetime) -> list[dict[str, Any]]:
        """The NotifyEventRequests for the events kept while offline (send when back)."""
        return notify_event_pages(self._offline.take(), now, self._per_message)

    def severity_of(self, event: dict[str, Any]) -> int:
        """The severity of the monitor that made an event; 0 (keep it) when unknown."""
        return self._events.severity_of(event)

    # -- state -----------------------------------------------------------------------------
    def durable_state(self) -> list[dict[str, Any]]:
        """The durable state: monitor dicts (custom and active preconfigured ones) and
        one settings dict (base, level, reserved event ids)."""
        out = [
            m.to_dict() for m in sorted(self._monitors.values(), key=lambda m: m.id)
            if m.origin != HARD_WIRED
        ]
        out.append({"kind": "settings", "monitoringBase": self._base,
                    "monitoringLevel": self._level, "eventIdReserved": self._events.reserved})
        return out

    def _restore(self, load: list[dict[str, Any]] | None) -> None:
        if load is None:
            self._activate_templates()  # first start: the factory state
            return
        for entry in load:
            if entry.get("kind") == "settings":
                self._base = entry.get("monitoringBase", self._base)
                self._level = int(entry.get("monitoringLevel", self._level))
                self._events.restore(int(entry.get("eventIdReserved", 1)))
            elif entry.get("kind") == "monitor":
                # Kept even when the variable is unknown now: the physical components
                # may be defined later, and a dropped monitor would be persisted away.
                m = Monitor.from_dict(entry)
                m.key = self._canonical(entry["component"], entry["variable"])
                self._activate(m, None)
        if self._base != "HardWiredOnly":
            self._activate_templates()  # preconfigured monitors new in this firmware
        self._recheck = True  # N07.FR.14

    def _save(self) -> None:
        self._publish_settings()
        if self._persist is not None:
            self._persist(self.durable_state())

    def _publish_settings(self) -> None:
        # ActiveMonitoringBase / Level are ReadOnly to SetVariables; their truth lives
        # here (persisted with the monitors) and is shown in the device model as live
        # values, which also tells subscribers. MonitoringBase / MonitoringLevel are
        # the older appendix names, written when a model defines them.
        for name, value in (("ActiveMonitoringBase", self._base), ("MonitoringBase", self._base),
                            ("ActiveMonitoringLevel", self._level),
                            ("MonitoringLevel", self._level)):
            key = VariableKey(settings.CTRLR, name)
            if self.dm.find(key) is not None:
                self.dm.set_live(key, value)

    # -- helpers ---------------------------------------------------------------------------
    def _canonical(self, component: dict[str, Any], variable: dict[str, Any]) -> VariableKey:
        """The device model's own spelling of a key (names are case-insensitive), which
        is the one its change notifications use."""
        key = VariableKey.from_ocpp(component, variable)
        var = self.dm.find(key)
        return var.key if var is not None else key

    def _current(self, key: VariableKey) -> Value | None:
        var = self.dm.find(key)
        return None if var is None else var.value_of()

    def _active(self, m: Monitor) -> bool:
        """A transaction monitor watches only while its EVSE (any EVSE, for a station
        component) has a transaction."""
        if not m.transaction:
            return True
        txs = self._transactions() if self._transactions else {}
        return m.key.evse_id in txs if m.key.evse_id else bool(txs)

    def _reportable(self, m: Monitor) -> bool:
        # N07.FR.15 / N05.FR.03; MonitoringCtrlr.Enabled switches variable monitoring
        # off, while hardware faults (hard-wired) are always reported.
        if m.severity > self._level:
            return False
        return m.origin == HARD_WIRED or settings.enabled(self.dm)

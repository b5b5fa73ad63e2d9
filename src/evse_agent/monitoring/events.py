"""eventData (EventDataType of NotifyEventRequest) for monitors that fire, with event
ids that are unique and increasing across restarts, and the severity of each event
remembered for the offline queuing rule (eventData itself has no severity field).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..device_model.model import DeviceModel, Value, format_value
from ..ocpp import rpc
from . import settings
from .monitors import Monitor

EVENT_ID_BLOCK = 1000  # event ids reserved per persisted write
_SEVERITY_MEMORY = 4096  # eventId -> severity entries kept; older events count as 0


class EventFactory:
    def __init__(
        self,
        dm: DeviceModel,
        reserve: Callable[[], None],
        transactions: Callable[[], dict[int, str]] | None,
    ) -> None:
        """`reserve` is called (to persist `reserved`) before an id of a new block is
        used; `transactions` gives the ongoing transaction id per EVSE."""
        self._dm = dm
        self._reserve = reserve
        self._transactions = transactions
        self.next_id = 1
        self.reserved = 1  # ids below this may have been used (the durable part)
        self._severity: OrderedDict[int, int] = OrderedDict()

    def restore(self, reserved: int) -> None:
        self.next_id = self.reserved = reserved

    def make(
        self,
        m: Monitor,
        trigger: str,
        value: Value | None,
        now: datetime,
        cleared: bool = False,
        tech: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        var = self._dm.find(m.key)
        write_only = var is not None and var.mutability == "WriteOnly"
        text = "" if write_only else format_value(value)  # N07.FR.10
        event: dict[str, Any] = {
            "eventId": self._new_id(),
            "timestamp": rpc.timestamp(now),
            "trigger": trigger,
            "actualValue": text[: settings.actual_value_size(self._dm)],
            "cleared": cleared,
            "eventNotificationType": m.origin,
            "component": m.key.component_ocpp(),  # N07.FR.06
            "variable": m.key.variable_ocpp(),
            "variableMonitoringId": m.id,
        }
        if tech is not None:
            event["techCode"], event["techInfo"] = tech[0][:50], tech[1][:500]
        txs = self._transactions() if self._transactions else {}
        if m.key.evse_id in txs:
            event["transactionId"] = txs[m.key.evse_id]
        self._severity[event["eventId"]] = m.severity
        while len(self._severity) > _SEVERITY_MEMORY:
            self._severity.popitem(last=False)
        return event

    def severity_of(self, event: dict[str, Any]) -> int:
        """The severity of the monitor that made an event; 0 (most severe, so it is
        kept) for an event this factory no longer remembers."""
        return self._severity.get(event.get("eventId", -1), 0)

    def _new_id(self) -> int:
        if self.next_id >= self.reserved:
            # A new block is persisted before its first id is used: after a restart the
            # ids continue above every id that may have been sent.
            self.reserved = self.next_id + EVENT_ID_BLOCK
            self._reserve()
        event_id = self.next_id
        self.next_id += 1
        return event_id

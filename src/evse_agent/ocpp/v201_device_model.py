"""OCPP 2.0.1 requests about the device model (B05-B08) and monitoring (N02-N07):
the adapter's handlers for them, each answering at once and sending the report
pages (NotifyReport, NotifyMonitoringReport) after the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from ..device_model.model import DeviceModel
from ..monitoring import MonitoringEngine
from . import reports
from .connection import Reply
from .provisioning import get_variables, set_variables

SendPages = Callable[[str, list[dict[str, Any]]], Awaitable[None]]
Handler = Callable[[dict[str, Any]], Awaitable[Reply]]


class DeviceModelHandlers:
    def __init__(
        self,
        dm: DeviceModel,
        monitoring: MonitoringEngine,
        send_pages: SendPages,
        now: Callable[[], datetime],
        rearm: Callable[[], None] = lambda: None,
    ) -> None:
        self.dm = dm
        self._rearm = rearm  # a new periodic monitor changes when the station must wake
        self.monitoring = monitoring
        self._send_pages = send_pages
        self._now = now
        self._reporting = False  # pages of an earlier report are still being sent

    def handlers(self) -> dict[str, Handler]:
        return {
            "GetVariables": self._get_variables,
            "SetVariables": self._set_variables,
            "GetBaseReport": self._get_base_report,
            "GetReport": self._get_report,
            "SetVariableMonitoring": self._set_variable_monitoring,
            "ClearVariableMonitoring": self._clear_variable_monitoring,
            "SetMonitoringBase": self._set_monitoring_base,
            "SetMonitoringLevel": self._set_monitoring_level,
            "GetMonitoringReport": self._get_monitoring_report,
        }

    def _pages(self, action: str, pages: list[dict[str, Any]]) -> Callable[[], Awaitable[None]]:
        self._reporting = True

        async def send() -> None:
            try:
                await self._send_pages(action, pages)
            finally:
                self._reporting = False

        return send

    def connection_lost(self) -> None:
        self._reporting = False  # an unsent report will not be sent on the next link

    def _busy(self) -> Reply | None:
        """B07.FR.13 / B08.FR.16: one report at a time."""
        return Reply({"status": "Rejected"}) if self._reporting else None

    async def _get_variables(self, p: dict[str, Any]) -> Reply:
        return Reply({"getVariableResult": get_variables(self.dm, p["getVariableData"])})

    async def _set_variables(self, p: dict[str, Any]) -> Reply:
        return Reply({"setVariableResult": set_variables(self.dm, p["setVariableData"])})

    async def _get_base_report(self, p: dict[str, Any]) -> Reply:
        if busy := self._busy():
            return busy
        answer, pages = reports.base_report(self.dm, p["requestId"], p["reportBase"], self._now())
        return Reply(answer, self._pages("NotifyReport", pages) if pages else None)

    async def _get_report(self, p: dict[str, Any]) -> Reply:
        if busy := self._busy():
            return busy
        answer, pages = reports.custom_report(self.dm, p, self._now())
        return Reply(answer, self._pages("NotifyReport", pages) if pages else None)

    async def _set_variable_monitoring(self, p: dict[str, Any]) -> Reply:
        answer = self.monitoring.set_variable_monitoring(p, self._now())
        self._rearm()
        return Reply(answer)

    async def _clear_variable_monitoring(self, p: dict[str, Any]) -> Reply:
        answer = self.monitoring.clear_variable_monitoring(p)
        self._rearm()
        return Reply(answer)

    async def _set_monitoring_base(self, p: dict[str, Any]) -> Reply:
        answer = self.monitoring.set_monitoring_base(p)
        self._rearm()
        return Reply(answer)

    async def _set_monitoring_level(self, p: dict[str, Any]) -> Reply:
        return Reply(self.monitoring.set_monitoring_level(p))

    async def _get_monitoring_report(self, p: dict[str, Any]) -> Reply:
        if busy := self._busy():
            return busy
        answer, pages = self.monitoring.monitoring_report(p, self._now())
        return Reply(answer, self._pages("NotifyMonitoringReport", pages) if pages else None)

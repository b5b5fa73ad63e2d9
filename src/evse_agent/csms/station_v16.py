"""Permissive answers to every request an OCPP 1.6-J station may send."""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action

from .session import StationSession, utc_now
from .signing import send_signed


class StationV16(StationSession, ChargePoint):
    @on(Action.boot_notification)
    def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=utc_now(),
            interval=self.csms.boot_interval,
            status=self.csms.boot_status,
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=utc_now())

    @on(Action.authorize)
    def on_authorize(self, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=IdTagInfo(status=self.csms.authorize_status))

    @on(Action.start_transaction)
    def on_start_transaction(self, **_: Any) -> call_result.StartTransaction:
        return call_result.StartTransaction(
            transaction_id=self.csms.next_transaction_id(),
            id_tag_info=IdTagInfo(status=self.csms.authorize_status),
        )

    @on(Action.stop_transaction)
    def on_stop_transaction(
        self, id_tag: str | None = None, **_: Any
    ) -> call_result.StopTransaction:
        # idTagInfo answers a presented tag; a stop without one gets none back.
        info = IdTagInfo(status=self.csms.authorize_status) if id_tag else None
        return call_result.StopTransaction(id_tag_info=info)

    @on(Action.status_notification)
    def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="Accepted")

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(
        self, **_: Any
    ) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    # The 1.6 security whitepaper's station-initiated messages.
    @on(Action.security_event_notification)
    def on_security_event_notification(self, **_: Any) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status_notification(
        self, **_: Any
    ) -> call_result.SignedFirmwareStatusNotification:
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> call_result.LogStatusNotification:
        return call_result.LogStatusNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, **_: Any) -> call_result.SignCertificate:
        return call_result.SignCertificate(status="Accepted")

    @after(Action.sign_certificate)
    async def after_sign_certificate(self, csr: str, **_: Any) -> None:
        await send_signed(self.csms, self.id, "1.6", csr, None)

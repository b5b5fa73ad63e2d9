"""Permissive answers to every request an OCPP 2.0.1 station may send."""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.datatypes import IdTokenInfoType
from ocpp.v201.enums import Action

from .session import StationSession, utc_now
from .signing import send_signed

# Handlers take **_ because the package passes every payload field as a keyword
# and a dev CSMS only looks at a few of them.


class StationV201(StationSession, ChargePoint):
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
        return call_result.Authorize(
            id_token_info=IdTokenInfoType(status=self.csms.authorize_status)
        )

    @on(Action.transaction_event)
    def on_transaction_event(
        self, id_token: dict[str, Any] | None = None, **_: Any
    ) -> call_result.TransactionEvent:
        # idTokenInfo answers a presented token; without one the spec wants it absent.
        info = IdTokenInfoType(status=self.csms.authorize_status) if id_token else None
        return call_result.TransactionEvent(id_token_info=info)

    @on(Action.status_notification)
    def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.notify_report)
    def on_notify_report(self, **_: Any) -> call_result.NotifyReport:
        return call_result.NotifyReport()

    @on(Action.notify_event)
    def on_notify_event(self, **_: Any) -> call_result.NotifyEvent:
        return call_result.NotifyEvent()

    @on(Action.notify_monitoring_report)
    def on_notify_monitoring_report(self, **_: Any) -> call_result.NotifyMonitoringReport:
        return call_result.NotifyMonitoringReport()

    @on(Action.security_event_notification)
    def on_security_event_notification(self, **_: Any) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    @on(Action.publish_firmware_status_notification)
    def on_publish_firmware_status_notification(
        self, **_: Any
    ) -> call_result.PublishFirmwareStatusNotification:
        return call_result.PublishFirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> call_result.LogStatusNotification:
        return call_result.LogStatusNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, **_: Any) -> call_result.SignCertificate:
        return call_result.SignCertificate(status="Accepted")

    @after(Action.sign_certificate)
    async def after_sign_certificate(
        self, csr: str, certificate_type: str | None = None, **_: Any
    ) -> None:
        await send_signed(self.csms, self.id, "2.0.1", csr, certificate_type)

    @on(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="Accepted")

    @on(Action.notify_charging_limit)
    def on_notify_charging_limit(self, **_: Any) -> call_result.NotifyChargingLimit:
        return call_result.NotifyChargingLimit()

    @on(Action.cleared_charging_limit)
    def on_cleared_charging_limit(self, **_: Any) -> call_result.ClearedChargingLimit:
        return call_result.ClearedChargingLimit()

    @on(Action.report_charging_profiles)
    def on_report_charging_profiles(self, **_: Any) -> call_result.ReportChargingProfiles:
        return call_result.ReportChargingProfiles()

    @on(Action.notify_ev_charging_needs)
    def on_notify_ev_charging_needs(self, **_: Any) -> call_result.NotifyEVChargingNeeds:
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @on(Action.notify_ev_charging_schedule)
    def on_notify_ev_charging_schedule(self, **_: Any) -> call_result.NotifyEVChargingSchedule:
        return call_result.NotifyEVChargingSchedule(status="Accepted")

    @on(Action.notify_display_messages)
    def on_notify_display_messages(self, **_: Any) -> call_result.NotifyDisplayMessages:
        return call_result.NotifyDisplayMessages()

    @on(Action.notify_customer_information)
    def on_notify_customer_information(self, **_: Any) -> call_result.NotifyCustomerInformation:
        return call_result.NotifyCustomerInformation()

    @on(Action.reservation_status_update)
    def on_reservation_status_update(self, **_: Any) -> call_result.ReservationStatusUpdate:
        return call_result.ReservationStatusUpdate()

    # No PKI or OCSP responder behind a dev CSMS: "Failed" is the honest valid answer.
    @on(Action.get_certificate_status)
    def on_get_certificate_status(self, **_: Any) -> call_result.GetCertificateStatus:
        return call_result.GetCertificateStatus(status="Failed")

    @on(Action.get_15118_ev_certificate)
    def on_get_15118_ev_certificate(self, **_: Any) -> call_result.Get15118EVCertificate:
        return call_result.Get15118EVCertificate(status="Failed", exi_response="")

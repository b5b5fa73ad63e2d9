"""What a 1.6 CSMS may ask (Core and Remote Trigger profiles), answered by feeding the
same core events the 2.0.1 adapter feeds. Configuration keys are a view of the 2.0.1
device model (device_model/ocpp16_view.py), never a second store.

The Local Auth List, Reservation, Smart Charging and Firmware Management profiles
have no handler yet: the Session answers NotImplemented (SetChargingProfile:
NotSupported, errata 3.39). Section numbers: OCPP 1.6 edition 2 and its errata v4.x.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import messages as m
from ..core.evse import Evse
from ..core.metering import sample
from ..device_model.model import VariableKey
from ..device_model.ocpp16_view import change_configuration, get_configuration
from . import rpc
from . import v16_messages as msg16
from .connection import CallFailed, Reply
from .session import Handler, Session
from .v16_transactions import Transactions16

if TYPE_CHECKING:
    from .v16_firmware import FirmwareHandlers16
    from .v16_logs import LogHandlers16
    from .v16_security import CertificateHandlers16

log = logging.getLogger("evse_agent.ocpp")

DataTransferHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class RequestHandlers16(Session):
    # Set by V16Adapter.__init__ (v16.py).
    evses: Callable[[], Mapping[int, Evse]]
    transactions: Transactions16
    reset_type: str | None
    unlocking: set[str]
    data_transfer: dict[str, DataTransferHandler]
    certificates: CertificateHandlers16 | None  # security extension (v16_security.py)
    logs: LogHandlers16 | None  # GetDiagnostics, GetLog (v16_logs.py)
    firmware: FirmwareHandlers16 | None  # UpdateFirmware, SignedUpdateFirmware

    def next_remote_start_id(self) -> int:
        raise NotImplementedError

    def connector_statuses(self) -> list[m.ConnectorStatus]:
        raise NotImplementedError

    def handlers(self) -> dict[str, Handler]:
        return {
            "RemoteStartTransaction": self._remote_start,
            "RemoteStopTransaction": self._remote_stop,
            "ChangeAvailability": self._change_availability,
            "ChangeConfiguration": self._change_configuration,
            "GetConfiguration": self._get_configuration,
            "ClearCache": self._clear_cache,
            "Reset": self._reset,
            "UnlockConnector": self._unlock,
            "DataTransfer": self._data_transfer,
            "TriggerMessage": self._trigger,
            "SetChargingProfile": self._no_smart_charging,
            **(self.certificates.handlers() if self.certificates else {}),
            **(self.logs.handlers() if self.logs else {}),
            **(self.firmware.handlers() if self.firmware else {}),
        }

    # -- Core profile ------------------------------------------------------------------
    async def _remote_start(self, p: dict[str, Any]) -> Reply:
        """§5.11. AuthorizeRemoteTxRequests is AuthCtrlr.AuthorizeRemoteStart, which
        the core reads. A chargingProfile is ignored, as §5.11 says a Charge Point
        without Smart Charging should; once smart charging lands it must apply it."""
        if self.registration != "Accepted":
            return Reply({"status": "Rejected"})
        connector_id = p.get("connectorId")
        if connector_id is not None and connector_id not in self.port.evse_ids():
            return Reply({"status": "Rejected"})  # connectorId SHALL be > 0 (§6.33)
        if "chargingProfile" in p:
            log.info("RemoteStartTransaction: chargingProfile ignored (no Smart Charging)")
        # ISO14443 like a card at the reader: the same card tapped later ends the
        # transaction (1.6 idTags carry no type).
        token = m.IdToken(p["idTag"], "ISO14443")
        result = self.port.feed(m.RemoteStart(token, self.next_remote_start_id(), connector_id))
        accepted = result is not None and result.status == "Accepted"
        return Reply({"status": "Accepted" if accepted else "Rejected"})

    async def _remote_stop(self, p: dict[str, Any]) -> Reply:
        """§5.12, errata 3.33: Accepted when that transaction runs and will stop."""
        local = self.transactions.local_id(p["transactionId"])
        if local is None or local not in self.port.transaction_ids().values():
            return Reply({"status": "Rejected"})
        result = self.port.feed(m.RemoteStop(local))
        return Reply({"status": result.status if result else "Rejected"})

    async def _change_availability(self, p: dict[str, Any]) -> Reply:
        """§5.2: connectorId 0 is the whole Charge Point; Scheduled while a
        transaction runs (the core decides)."""
        connector_id = p["connectorId"]
        operative = p["type"] == "Operative"
        if connector_id != 0 and connector_id not in self.port.evse_ids():
            return Reply({"status": "Rejected"})
        result = self.port.feed(m.ChangeAvailability(operative, connector_id or None))
        self.port.persist_availability(connector_id or None, operative)  # survives reboot
        return Reply({"status": result.status if result else "Rejected"})

    async def _change_configuration(self, p: dict[str, Any]) -> Reply:
        """§5.3: the same write SetVariables makes (validation, persistence)."""
        return Reply({"status": change_configuration(self.dm, p["key"], p["value"])})

    async def _get_configuration(self, p: dict[str, Any]) -> Reply:
        """§5.8: no key (or an empty list) asks for all of them."""
        found, unknown = get_configuration(self.dm, p.get("key") or None)
        out: dict[str, Any] = {}
        if found:
            out["configurationKey"] = found
        if unknown:
            out["unknownKey"] = unknown
        return Reply(out)

    async def _clear_cache(self, p: dict[str, Any]) -> Reply:
        """§5.4 with errata 3.23: no Authorization Cache (AuthCacheCtrlr.Enabled false
        here) answers Rejected; an enabled one is empty, so clearing it succeeds."""
        enabled = self.dm.find(VariableKey("AuthCacheCtrlr", "Enabled"))
        cleared = enabled is not None and enabled.value_of() is True
        return Reply({"status": "Accepted" if cleared else "Rejected"})

    async def _reset(self, p: dict[str, Any]) -> Reply:
        """§5.14, errata 3.36: both types end every transaction first (reason
        SoftReset / HardReset), then the agent restarts in place."""
        self.reset_type = p["type"]
        result = self.port.feed(m.ResetRequested(immediate=True))
        accepted = result is not None and result.status in ("Accepted", "Scheduled")
        return Reply({"status": "Accepted" if accepted else "Rejected"})

    async def _unlock(self, p: dict[str, Any]) -> Reply:
        """§5.18: a transaction on the connector is stopped first (UnlockCommand);
        an unknown connector is NotSupported (errata 3.87)."""
        connector_id = p["connectorId"]
        if connector_id not in self.port.evse_ids():
            return Reply({"status": "NotSupported"})
        local = self.port.transaction_ids().get(connector_id)
        if local is not None:
            self.unlocking.add(local)
            self.port.feed(m.RemoteStop(local))
        unlocked = await self.port.unlock(connector_id, 1)
        return Reply({"status": "Unlocked" if unlocked else "UnlockFailed"})

    async def _data_transfer(self, p: dict[str, Any]) -> Reply:
        """§5.6: UnknownVendorId unless a handler is registered for the vendorId."""
        handler = self.data_transfer.get(p["vendorId"])
        if handler is None:
            return Reply({"status": "UnknownVendorId"})
        return Reply(await handler(p))

    async def _no_smart_charging(self, p: dict[str, Any]) -> Reply:
        raise rpc.RpcError("NotSupported", "Smart Charging is not supported (errata 3.39)")

    # -- Remote Trigger profile ----------------------------------------------------------
    async def _trigger(self, p: dict[str, Any]) -> Reply:
        """§5.17: the response goes first, the requested message after it. While
        Pending the CSMS may trigger any message (§4.2), so they are sent at once
        rather than through the queue that waits for Accepted."""
        what = p["requestedMessage"]
        connector_id = p.get("connectorId")
        if connector_id not in (None, 0) and connector_id not in self.port.evse_ids():
            return Reply({"status": "Rejected"})
        if what == "BootNotification":
            if self.registration == "Accepted":
                return Reply({"status": "Rejected"})  # errata 3.35
            return Reply({"status": "Accepted"}, self.wake_boot)
        if what == "Heartbeat":
            return Reply({"status": "Accepted"}, self.heartbeat_now)
        if what == "StatusNotification":
            statuses = [
                s for s in self.connector_statuses() if connector_id in (None, s.evse_id)
            ]
            return Reply({"status": "Accepted"}, lambda: self._send_statuses(statuses))
        if what == "MeterValues":
            return self.triggered("MeterValues", self._triggered_meter_values(connector_id))
        if what == "FirmwareStatusNotification" and self.firmware is not None:
            return self.firmware.trigger()  # the running update's status (v16_firmware.py)
        if what == "DiagnosticsStatusNotification" and self.logs is not None:
            return self.logs.trigger_diagnostics()  # Uploading while one runs (v16_logs.py)
        if what in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
            # No upload or update running: Idle (§6.17, §6.19).
            return self.triggered(what, [{"status": "Idle"}])
        return Reply({"status": "NotImplemented"})

    def triggered(self, action: str, payloads: list[dict[str, Any]]) -> Reply:
        """A trigger's answer (§5.17, whitepaper §5.5): Accepted, and `payloads` sent as
        `action` once that response is out."""
        return Reply({"status": "Accepted"}, lambda: self._send_now(action, payloads))

    def _triggered_meter_values(self, connector_id: int | None) -> list[dict[str, Any]]:
        """The latest values of MeterValuesSampledData (errata 3.46), per connector,
        with the transactionId when one runs there; connectorId 0 (no main meter
        here) or none: every connector."""
        measurands = self.dm.members("SampledDataCtrlr", "TxUpdatedMeasurands")
        running = self.port.transaction_ids()
        payloads = []
        for evse_id, e in self.evses().items():
            if connector_id not in (None, 0, evse_id):
                continue
            mv = sample(e.reading, measurands, "Trigger", self._now(), e.offered_a)
            if mv is None:
                continue
            local = running.get(evse_id)
            tx_id = self.transactions.csms_id(local) if local is not None else None
            values = msg16.meter_values((mv,))
            payloads.append(msg16.meter_values_payload(evse_id, values, tx_id))
        return payloads

    async def _send_statuses(self, statuses: list[m.ConnectorStatus]) -> None:
        for s in statuses:
            self._reported[(s.evse_id, s.connector_id)] = s.status
        await self._send_now("StatusNotification", [self.status_payload(s) for s in statuses])

    async def _send_now(self, action: str, payloads: list[dict[str, Any]]) -> None:
        for payload in payloads:
            endpoint = self._endpoint
            if endpoint is None:
                return
            try:
                await self._call(endpoint, action, payload)
            except CallFailed as failure:
                log.warning("triggered %s failed: %s", action, failure)
                if failure.kind == "closed":
                    return

"""The core's vocabulary: events in, actions out. Plain frozen data, no I/O.

Device events (TokenPresented, PilotChanged, ContactorChanged, DeviceFault) are the
HAL's own dataclasses; the rest is defined here. Names follow OCPP 2.0.1; the 1.6
adapter maps the same actions onto 1.6 messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evse_hal.interfaces import (
    ContactorChanged,
    DeviceFault,
    MeterReading,
    PilotChanged,
    TokenPresented,
)


@dataclass(frozen=True)
class IdToken:
    id_token: str
    type: str = "ISO14443"

    def to_ocpp(self) -> dict[str, str]:
        return {"idToken": self.id_token, "type": self.type}


# --- events ------------------------------------------------------------------------
@dataclass(frozen=True)
class Tick:
    """Time passed; timers due at `now` fire."""


@dataclass(frozen=True)
class ConnectionChanged:
    online: bool


@dataclass(frozen=True)
class MeterSampled:
    evse_id: int
    reading: MeterReading


@dataclass(frozen=True)
class AuthorizeResult:
    """The CSMS's answer to an Authorize the core asked for; status None means no
    answer (offline, timeout, CALLERROR)."""

    request_id: int
    id_token: IdToken
    status: str | None
    evse_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class TransactionResponse:
    """idTokenInfo the CSMS returned for a TransactionEvent carrying an idToken."""

    transaction_id: str
    status: str


@dataclass(frozen=True)
class ContractPresented:
    """ISO 15118 Plug & Charge (C07): the EV on `evse_id` presented a contract
    certificate; its eMAID is the IdToken (type eMAID) the session is authorized by."""

    evse_id: int
    id_token: IdToken


@dataclass(frozen=True)
class RemoteStart:
    id_token: IdToken
    remote_start_id: int
    evse_id: int | None = None


@dataclass(frozen=True)
class RemoteStop:
    transaction_id: str


@dataclass(frozen=True)
class ChangeAvailability:
    operative: bool
    evse_id: int | None = None  # None / 0: the whole station


@dataclass(frozen=True)
class UnlockConnector:
    evse_id: int
    connector_id: int = 1


@dataclass(frozen=True)
class ResetRequested:
    immediate: bool


@dataclass(frozen=True)
class TriggerTransactionEvent:
    evse_id: int | None


@dataclass(frozen=True)
class TriggerMeterValues:
    evse_id: int | None


@dataclass(frozen=True)
class RecoveredTransaction:
    """A transaction the previous process left open (power loss, kill -9)."""

    transaction_id: str
    evse_id: int | None
    connector_id: int
    next_seq_no: int
    id_token: IdToken | None


Event = (
    TokenPresented
    | PilotChanged
    | ContactorChanged
    | DeviceFault
    | Tick
    | ConnectionChanged
    | MeterSampled
    | AuthorizeResult
    | TransactionResponse
    | ContractPresented
    | RemoteStart
    | RemoteStop
    | ChangeAvailability
    | UnlockConnector
    | ResetRequested
    | TriggerTransactionEvent
    | TriggerMeterValues
    | RecoveredTransaction
)


# --- actions -----------------------------------------------------------------------
@dataclass(frozen=True)
class CloseContactor:
    evse_id: int


@dataclass(frozen=True)
class OpenContactor:
    evse_id: int


@dataclass(frozen=True)
class OfferCurrent:
    evse_id: int
    amps: float


@dataclass(frozen=True)
class ReleaseConnector:
    """Unlock the connector (UnlockConnector, or the end of a session)."""

    evse_id: int
    connector_id: int = 1


@dataclass(frozen=True)
class ShowText:
    text: str


@dataclass(frozen=True)
class SendAuthorize:
    request_id: int
    id_token: IdToken


@dataclass(frozen=True)
class ConnectorStatus:
    evse_id: int
    connector_id: int
    status: str  # Available, Occupied, Reserved, Unavailable, Faulted
    timestamp: datetime


@dataclass(frozen=True)
class SampledValue:
    value: float
    measurand: str
    context: str
    unit: str
    phase: str | None = None

    def to_ocpp(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": round(self.value, 3),
            "measurand": self.measurand,
            "context": self.context,
            "unitOfMeasure": {"unit": self.unit},
        }
        if self.phase:
            out["phase"] = self.phase
        return out


@dataclass(frozen=True)
class MeterValue:
    timestamp: datetime
    sampled: tuple[SampledValue, ...]


@dataclass(frozen=True)
class TransactionEventAction:
    """One TransactionEvent: the durable queue stores it before it is sent."""

    event_type: str  # Started, Updated, Ended
    timestamp: datetime
    trigger_reason: str
    seq_no: int
    transaction_id: str
    offline: bool = False
    evse_id: int | None = None
    connector_id: int | None = None
    charging_state: str | None = None
    stopped_reason: str | None = None
    id_token: IdToken | None = None
    remote_start_id: int | None = None
    meter_values: tuple[MeterValue, ...] = ()


@dataclass(frozen=True)
class SendMeterValues:
    """Clock-aligned or triggered MeterValues (outside a TransactionEvent)."""

    evse_id: int
    meter_values: tuple[MeterValue, ...]


@dataclass(frozen=True)
class RestartStation:
    """All transactions are ended: the edge may now restart the process."""


@dataclass(frozen=True)
class Log:
    text: str
    fields: dict[str, Any] = field(default_factory=dict)


Action = (
    CloseContactor
    | OpenContactor
    | OfferCurrent
    | ReleaseConnector
    | ShowText
    | SendAuthorize
    | ConnectorStatus
    | TransactionEventAction
    | SendMeterValues
    | RestartStation
    | Log
)

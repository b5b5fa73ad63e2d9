"""How OCPP 1.6-J spells what the core says: pure functions from core actions and
state to 1.6 payloads. Section numbers refer to OCPP 1.6 edition 2 and its errata
sheet (v4.x); every payload built here is valid against ocpp/v16/schemas.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..core import messages as m
from ..core.status16 import Status16
from . import rpc

ENERGY = "Energy.Active.Import.Register"
ID_TAG_MAX = 20  # IdToken is CiString20Type (§7.28)

# 2.0.1 stoppedReason (ReasonEnumType) -> 1.6 Reason (§7.36). ImmediateReset depends
# on the Reset type the CSMS asked for; what 1.6 cannot name becomes Other.
STOP_REASONS = {
    "DeAuthorized": "DeAuthorized",
    "EmergencyStop": "EmergencyStop",
    "EVDisconnected": "EVDisconnected",
    "Local": "Local",
    "PowerLoss": "PowerLoss",
    "Reboot": "Reboot",
    "Remote": "Remote",
}
# 1.6 UnitOfMeasure (§7.45) lacks Hz; errata 3.86: Frequency is in Hertz without a unit.
UNITS_WITHOUT_1_6_NAME = {"Hz"}


def stop_reason(stopped_reason: str | None, reset_type: str | None = None) -> str:
    """The StopTransaction reason for a 2.0.1 stoppedReason; `reset_type` is the type
    of the Reset.req that ended it ("Soft" / "Hard"), when one did."""
    if stopped_reason is None:
        return "Local"  # §6.49: absent means Local; say it anyway
    if stopped_reason == "ImmediateReset":
        return "SoftReset" if reset_type == "Soft" else "HardReset"
    return STOP_REASONS.get(stopped_reason, "Other")


def boot_payload(boot_info: dict[str, Any]) -> dict[str, Any]:
    """BootNotification.req (§6.3) from the same facts 2.0.1 reports."""
    payload = {
        "chargePointVendor": str(boot_info.get("vendorName", ""))[:20],
        "chargePointModel": str(boot_info.get("model", ""))[:20],
    }
    if boot_info.get("serialNumber"):
        payload["chargePointSerialNumber"] = str(boot_info["serialNumber"])[:25]
    if boot_info.get("firmwareVersion"):
        payload["firmwareVersion"] = str(boot_info["firmwareVersion"])[:50]
    return payload


def status_payload(s: Status16, timestamp: datetime) -> dict[str, Any]:
    """StatusNotification.req (§6.47)."""
    payload: dict[str, Any] = {
        "connectorId": s.connector_id,
        "errorCode": s.error_code,
        "status": s.status,
        "timestamp": rpc.timestamp(timestamp),
    }
    if s.info:
        payload["info"] = s.info[:50]
    return payload


def number(value: float) -> str:
    """SampledValue.value is a string in 1.6; no exponent, no trailing zeros."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def sampled_value(s: m.SampledValue) -> dict[str, Any]:
    out: dict[str, Any] = {"value": number(s.value), "context": s.context, "measurand": s.measurand}
    if s.phase:
        out["phase"] = s.phase
    if s.unit not in UNITS_WITHOUT_1_6_NAME:
        out["unit"] = s.unit
    return out


def meter_value(v: m.MeterValue, measurands: Iterable[str] | None = None) -> dict[str, Any] | None:
    """One MeterValue (§7.33), optionally only the given measurands (None: all)."""
    wanted = set(measurands) if measurands is not None else None
    sampled = [sampled_value(s) for s in v.sampled if wanted is None or s.measurand in wanted]
    if not sampled:
        return None
    return {"timestamp": rpc.timestamp(v.timestamp), "sampledValue": sampled}


def meter_values(
    values: Iterable[m.MeterValue], measurands: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    wanted = list(measurands) if measurands is not None else None
    return [mv for v in values if (mv := meter_value(v, wanted)) is not None]


def only(values: list[dict[str, Any]], measurands: Iterable[str]) -> list[dict[str, Any]]:
    """1.6 MeterValues (as built above) reduced to the given measurands."""
    wanted = set(measurands)
    out = []
    for v in values:
        sampled = [s for s in v["sampledValue"] if s.get("measurand", ENERGY) in wanted]
        if sampled:
            out.append({**v, "sampledValue": sampled})
    return out


def energy_wh(values: Iterable[m.MeterValue]) -> int | None:
    """The energy register in the samples, as the integer Wh meterStart / meterStop
    want (§6.45, §6.49); None when the samples do not include it."""
    for v in values:
        for s in v.sampled:
            if s.measurand == ENERGY and s.phase is None:
                return round(s.value)
    return None


def meter_values_payload(
    connector_id: int, values: list[dict[str, Any]], transaction_id: int | str | None
) -> dict[str, Any]:
    """MeterValues.req (§6.31). A str transactionId is the core's local id, replaced
    by the CSMS's integer when the message is sent (see v16_transactions)."""
    payload: dict[str, Any] = {"connectorId": connector_id, "meterValue": values}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


def start_transaction_payload(
    connector_id: int, id_tag: str, meter_start: int, timestamp: datetime
) -> dict[str, Any]:
    """StartTransaction.req (§6.45)."""
    return {
        "connectorId": connector_id,
        "idTag": id_tag,
        "meterStart": meter_start,
        "timestamp": rpc.timestamp(timestamp),
    }


def stop_transaction_payload(
    local_id: str,
    meter_stop: int,
    timestamp: datetime,
    reason: str,
    id_tag: str | None = None,
    transaction_data: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """StopTransaction.req (§6.49), transactionId still the local id (replaced at
    send time)."""
    payload: dict[str, Any] = {
        "transactionId": local_id,
        "meterStop": meter_stop,
        "timestamp": rpc.timestamp(timestamp),
        "reason": reason,
    }
    if id_tag:
        payload["idTag"] = id_tag
    if transaction_data:
        payload["transactionData"] = transaction_data
    return payload

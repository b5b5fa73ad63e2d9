"""1.6 payloads built from core actions (ocpp/v16_messages.py), each validated against
the official 1.6 schemas (ocpp/v16/schemas). Section numbers: OCPP 1.6 edition 2;
"errata" is the 1.6 errata sheet v4.x."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ocpp.messages import get_validator

from evse_agent.core import messages as m
from evse_agent.ocpp import v16_messages as msg16

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def request(action: str) -> object:
    return get_validator(2, action, "1.6")


@pytest.mark.parametrize(
    ("stopped", "reset", "reason"),
    [
        ("Local", None, "Local"),
        ("Remote", None, "Remote"),
        ("EVDisconnected", None, "EVDisconnected"),
        ("PowerLoss", None, "PowerLoss"),
        ("DeAuthorized", None, "DeAuthorized"),
        ("Reboot", None, "Reboot"),
        ("EmergencyStop", None, "EmergencyStop"),
        ("ImmediateReset", "Soft", "SoftReset"),  # §5.14: Reset.req type Soft
        ("ImmediateReset", "Hard", "HardReset"),
        ("ImmediateReset", None, "HardReset"),
        ("StoppedByEV", None, "Other"),  # 2.0.1 reasons 1.6 cannot name
        ("Timeout", None, "Other"),
        ("SOCLimitReached", None, "Other"),
        (None, None, "Local"),  # §6.49: an absent reason means Local
    ],
)
def test_stop_reason_from_the_2_0_1_stopped_reason(
    stopped: str | None, reset: str | None, reason: str
) -> None:
    assert msg16.stop_reason(stopped, reset) == reason
    payload = msg16.stop_transaction_payload("local", 10, T0, reason)
    request("StopTransaction").validate({**payload, "transactionId": 1})


def test_boot_notification_fits_the_1_6_lengths() -> None:
    """§6.3: vendor and model are CiString20, serial CiString25."""
    info = {"vendorName": "V" * 50, "model": "M" * 20, "serialNumber": "S" * 25,
            "firmwareVersion": "0.1.0"}
    payload = msg16.boot_payload(info)
    request("BootNotification").validate(payload)
    assert payload == {"chargePointVendor": "V" * 20, "chargePointModel": "M" * 20,
                       "chargePointSerialNumber": "S" * 25, "firmwareVersion": "0.1.0"}


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0"), (1234.0, "1234"), (0.0264, "0.026"), (22080.5, "22080.5"),
     (1e7, "10000000"), (-0.0001, "0")],
)
def test_sampled_values_are_decimal_strings(value: float, text: str) -> None:
    """§7.43: SampledValue.value is a string; never an exponent."""
    assert msg16.number(value) == text


def sample() -> m.MeterValue:
    return m.MeterValue(T0, (
        m.SampledValue(1234.4, "Energy.Active.Import.Register", "Sample.Periodic", "Wh"),
        m.SampledValue(16.0, "Current.Import", "Sample.Periodic", "A", "L1"),
        m.SampledValue(230.1, "Voltage", "Sample.Periodic", "V", "L1-N"),
        m.SampledValue(50.0, "Frequency", "Sample.Periodic", "Hz"),
        m.SampledValue(40.0, "SoC", "Sample.Periodic", "Percent"),
    ))


def test_meter_values_in_1_6_form() -> None:
    values = msg16.meter_values((sample(),))
    payload = msg16.meter_values_payload(2, values, 17)
    request("MeterValues").validate(payload)
    sampled = {s["measurand"]: s for s in payload["meterValue"][0]["sampledValue"]}
    assert sampled["Energy.Active.Import.Register"] == {
        "value": "1234.4", "context": "Sample.Periodic",
        "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    assert sampled["Current.Import"]["phase"] == "L1"
    assert "unit" not in sampled["Frequency"]  # errata 3.86: no UnitOfMeasure for Hz
    # the same values fit StopTransaction.transactionData, whose unit list lacks Hertz
    stop = msg16.stop_transaction_payload("x", 1234, T0, "Local", "CARD", values)
    request("StopTransaction").validate({**stop, "transactionId": 17})
    assert msg16.energy_wh((sample(),)) == 1234  # integer Wh (§6.45 meterStart)
    assert msg16.energy_wh(()) is None


def test_only_keeps_the_wanted_measurands() -> None:
    """StopTxnSampledData picks what goes into transactionData (errata 3.14.1)."""
    values = msg16.meter_values((sample(),))
    kept = msg16.only(values, ["Energy.Active.Import.Register", "SoC"])
    assert [s["measurand"] for s in kept[0]["sampledValue"]] == [
        "Energy.Active.Import.Register", "SoC"]
    assert msg16.only(values, ["Power.Offered"]) == []
    assert msg16.meter_values((sample(),), ["Voltage"])[0]["sampledValue"][0]["phase"] == "L1-N"


def test_start_transaction_payload() -> None:
    payload = msg16.start_transaction_payload(1, "AABBCCDD", 1000, T0)
    request("StartTransaction").validate(payload)
    assert payload["timestamp"] == "2026-01-01T12:00:00.000Z"

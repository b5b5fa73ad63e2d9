"""Network profiles, the SecurityProfile and secrets in logs, without sockets: which
profile is tried after how many failures (B10.FR.03/07), the security profile only ever
rising and taking the lower profiles with it (A05.FR.06, 1.6 A05.FR.01/08), config rules
for profiles 2 and 3, and the log redaction (A00.FR.304, 1.6 A01.FR.12)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from evse_agent.config import ConfigError, parse
from evse_agent.device_model.model import VariableKey
from evse_agent.device_model.setup import build_device_model
from evse_agent.ocpp.network_profiles import NetworkProfiles
from evse_agent.security.redaction import SecretFilter, basic_auth_forms, redact_frame
from evse_agent.storage import Storage

PASSWORD = "s3cret-Pa55word-0123"


def config(tmp: Path, **ocpp: Any) -> Any:
    raw = {"station": {"id": "CS-1", "data_dir": str(tmp)},
           "ocpp": {"csms_url": "ws://127.0.0.1:9000/ocpp", **ocpp}}
    return parse(raw, tmp / "station.toml")


def profiles(tmp: Path, attempts: int = 2, **ocpp: Any) -> NetworkProfiles:
    cfg = config(tmp, **ocpp)
    storage = Storage(tmp / "db.sqlite")
    dm = build_device_model(cfg, storage, "1", lambda: "")
    dm.set_attribute(VariableKey("OCPPCommCtrlr", "NetworkProfileConnectionAttempts"),
                     str(attempts))
    return NetworkProfiles(cfg, storage, dm, None)


def data(url: str, profile: int) -> dict[str, Any]:
    return {"ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": url,
            "messageTimeout": 30, "securityProfile": profile, "ocppInterface": "Wired0"}


@pytest.mark.parametrize("ocpp, key", [
    ({"security_profile": 2, "basic_auth_password": PASSWORD}, "ocpp.csms_url"),
    ({"security_profile": 2, "csms_url": "wss://h/ocpp"}, "ocpp.basic_auth_password"),
    ({"security_profile": 1, "csms_url": "wss://h/ocpp", "basic_auth_password": PASSWORD},
     "ocpp.csms_url"),
    ({"security_profile": 1, "basic_auth_password": "short"}, "ocpp.basic_auth_password"),
    ({"security_profile": 4}, "ocpp.security_profile"),
])
def test_config_rules_for_security_profiles(tmp_path: Path, ocpp: dict[str, Any],
                                            key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, **ocpp)
    assert f"station.toml: {key}:" in str(err.value) and "\n" not in str(err.value)


def test_profiles_2_and_3_are_accepted(tmp_path: Path) -> None:
    assert config(tmp_path, security_profile=3, csms_url="wss://h/o").security_profile == 3
    two = config(tmp_path, security_profile=2, csms_url="wss://h/o", basic_auth_password=PASSWORD)
    assert two.security_profile == 2


def test_attempts_per_slot_then_fallback_to_last_good(tmp_path: Path) -> None:
    """B10.FR.03: NetworkProfileConnectionAttempts per entry; B10.FR.07: then the one
    that last worked; and round again, never stuck."""
    p = profiles(tmp_path, attempts=2, security_profile=0)
    attempts = p.attempts()
    first = attempts.next()
    assert first is not None and first.slot == 1
    attempts.succeeded(first)  # slot 1 worked once
    assert p.set_network_profile(2, data("ws://new/ocpp", 0)) == ("Accepted", None)
    assert p.set_network_profile(3, data("ws://other/ocpp", 0)) == ("Accepted", None)
    assert p.dm.set_attribute(VariableKey("OCPPCommCtrlr", "NetworkConfigurationPriority"),
                              "2,3").status == "RebootRequired"
    attempts = p.attempts()  # after the reboot
    tried = []
    for _ in range(8):
        nxt = attempts.next()
        assert nxt is not None
        tried.append(nxt.slot)
        attempts.failed()
    assert tried == [2, 2, 3, 3, 1, 1, 2, 2]


def test_security_profile_rises_only_on_success_and_drops_lower_slots(tmp_path: Path) -> None:
    """A05.FR.04-06, B09.FR.04: a profile-2 slot leaves SecurityProfile at 1 until it
    connects; then SecurityProfile is 2, slot 1 is gone, and a profile-1 slot is
    refused. It all persists (a new NetworkProfiles on the same database)."""
    p = profiles(tmp_path, security_profile=1, basic_auth_password=PASSWORD)
    assert p.set_network_profile(2, data("wss://new/ocpp", 2))[0] == "Accepted"
    p.dm.set_attribute(VariableKey("OCPPCommCtrlr", "NetworkConfigurationPriority"), "2,1")
    assert p.minimum == 1
    new = p.table()[2]
    p.connected(new)
    assert p.minimum == 2
    assert sorted(p.table()) == [2]
    assert p.dm.get("OCPPCommCtrlr", "NetworkConfigurationPriority") == "2"
    status, reason = p.set_network_profile(3, data("ws://old/ocpp", 1))
    assert status == "Rejected" and reason is not None and "below SecurityProfile" in reason
    again = profiles(tmp_path, security_profile=1, basic_auth_password=PASSWORD)
    assert again.minimum == 2 and [c.slot for c in again.candidates()] == [2]


def test_v16_raise_rejections(tmp_path: Path) -> None:
    """1.6 A05.FR.01/03: lower, equal or without its certificates: Rejected, nothing
    tried (the accepted raise and its fallback: tests/e2e/test_tls_v16.py)."""
    p = profiles(tmp_path, attempts=1, security_profile=1, basic_auth_password=PASSWORD,
                 version="1.6")
    assert p.raise_security_profile_16("1")[0] == "Rejected"
    assert p.raise_security_profile_16("0")[0] == "Rejected"
    assert p.raise_security_profile_16("x")[0] == "Rejected"
    # profile 2 needs a CSMS root: no security store here, so Rejected (A05.FR.03)
    status, why = p.raise_security_profile_16("2")
    assert status == "Rejected" and "A05.FR.03" in why
    assert p.candidates()[0].security_profile == 1  # nothing on trial


def test_redact_frame_shapes() -> None:
    set_vars = ('[2,"1","SetVariables",{"setVariableData":[{"attributeValue":"' + PASSWORD
                + '","component":{"name":"SecurityCtrlr"},"variable":{"name":'
                '"BasicAuthPassword"}},{"attributeValue":"60","component":{"name":"X"},'
                '"variable":{"name":"HeartbeatInterval"}}]}]')
    out = redact_frame(set_vars)
    assert PASSWORD not in out and '"attributeValue":"60"' in out
    change = '[2,"1","ChangeConfiguration",{"key":"authorizationKey","value":"0011aabb"}]'
    assert "0011aabb" not in redact_frame(change)
    vpn = '<- [2,"1","SetNetworkProfile",{"connectionData":{"vpn":{"password":"pw-1"}}}]'
    assert "pw-1" not in redact_frame(vpn) and redact_frame(vpn).startswith("<- [2")
    plain = '[2,"1","Heartbeat",{}]'
    assert redact_frame(plain) is plain


def test_secret_filter_blanks_known_secrets_and_auth_header(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forms = basic_auth_forms("CS-1", PASSWORD)
    flt = SecretFilter(lambda: forms)
    log = logging.getLogger("test.redaction")
    log.addFilter(flt)
    try:
        with caplog.at_level(logging.INFO, "test.redaction"):
            log.info("password is %s", PASSWORD)
            log.info("> Authorization: Basic %s", forms[1])
            log.info("headers {'Authorization': 'Basic abcdef=='}")
    finally:
        log.removeFilter(flt)
    text = caplog.text
    assert PASSWORD not in text and forms[1] not in text and "abcdef==" not in text
    assert text.count("***") == 3


def test_frame_log_blanks_a_password_inside_an_upload_url() -> None:
    """A GetLog / UpdateFirmware location may carry user:password@; the frame log on
    stderr (and so journald) must not show it."""
    from evse_agent.security.redaction import SecretFilter

    frame = ('<< [2,"1","GetLog",{"logType":"DiagnosticsLog","requestId":1,'
             '"log":{"remoteLocation":"ftp://ops:s3cr3t-pw@10.0.0.5/logs/"}}]')
    clean = SecretFilter(lambda: []).clean(frame)
    assert "s3cr3t-pw" not in clean
    assert "ftp://ops:***@10.0.0.5/logs/" in clean


def test_secret_filter_cleans_tracebacks_and_stacks() -> None:
    """A00.FR.304 / 1.6 A01.FR.12: a secret inside an exception (its message, a URL
    in it) is blanked in the traceback too; formatters add tracebacks after the filters
    ran, so the filter formats and cleans them itself."""
    import io

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(SecretFilter(lambda: [PASSWORD]))
    log = logging.getLogger("test.redaction.tb")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError(f"bad {PASSWORD} at ftp://u:url-pass@h/x")
        except ValueError:
            log.exception("upload failed")
        record = log.makeRecord(log.name, logging.INFO, __file__, 1, "here", None, None,
                                sinfo=f"Stack (most recent call last):\n  {PASSWORD}")
        log.handle(record)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    text = out.getvalue()
    assert "Traceback (most recent call last)" in text and "ValueError: bad ***" in text
    assert PASSWORD not in text and "url-pass" not in text and "ftp://u:***@h/x" in text
    assert "Stack (most recent call last):\n  ***" in text

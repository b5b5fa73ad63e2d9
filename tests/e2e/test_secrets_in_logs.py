"""The password and the private key never reach a log (2.0.1 A00.FR.304 / B06.FR.09
WriteOnly; 1.6 whitepaper A01.FR.12): the agent's whole output (stdout and stderr, `-v`,
EVSE_AGENT_FRAMES=1, so every frame and the `ocpp` / `websockets` loggers are on) and
its diagnostics log files (data_dir/logs, what GetLog uploads) are searched for the
password in every form it travels in, old and new, the VPN / APN passwords of a network
profile, and the station's private key."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import STATION, booted16
from tls_support import PASSWORD, Bench, install_root, provision_station_certificate

NEW_PASSWORD = "n3w-Secret-Pa55word-456"
VPN_PASSWORD = "vpn-Secret-778899"
APN_PASSWORD = "apn-Secret-112233"


@pytest.fixture
async def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bench]:
    monkeypatch.setenv("EVSE_AGENT_FRAMES", "1")
    b = Bench(tmp_path)
    yield b
    await b.close()


def forms(password: str) -> list[str]:
    token = base64.b64encode(f"{STATION}:{password}".encode()).decode()
    return [password, token, base64.b64encode(password.encode()).decode()]


def private_key_lines(data_dir: Path) -> list[str]:
    lines = []
    for key in (data_dir / "keys").glob("*"):
        lines += [line for line in key.read_text().splitlines()
                  if line and not line.startswith("-----")]
    return lines


def log_file_text(data_dir: Path) -> str:
    """The diagnostics log on disk (data_dir/logs, rotated ones too): what GetLog /
    GetDiagnostics upload, so it leaves the station (N01)."""
    files = sorted((data_dir / "logs").glob("*.log*"))
    assert files, "no diagnostics log file was written"
    return "".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


async def test_password_and_keys_never_logged_201(bench: Bench) -> None:
    csms = await bench.csms(bench.server_context(), password=PASSWORD)
    st = bench.station(f"wss://localhost:{csms.port}/ocpp", security_profile=2,
                       basic_auth_password=PASSWORD)
    install_root(st.config, bench.ca)
    provision_station_certificate(st.config, bench.ca, bench.tmp)  # a key in data_dir
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    answer = await csms.call(STATION, "SetVariables", {"setVariableData": [{
        "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
        "attributeValue": NEW_PASSWORD}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    answer = await csms.call(STATION, "SetNetworkProfile", {"configurationSlot": 2,
        "connectionData": {
            "ocppVersion": "OCPP20", "ocppTransport": "JSON", "messageTimeout": 30,
            "ocppCsmsUrl": f"wss://localhost:{csms.port}/ocpp", "securityProfile": 2,
            "ocppInterface": "Wireless0",
            "vpn": {"server": "vpn.example", "user": "u", "password": VPN_PASSWORD,
                    "key": "k", "type": "IKEv2"},
            "apn": {"apn": "internet", "apnUserName": "u", "apnPassword": APN_PASSWORD,
                    "apnAuthentication": "AUTO"}}})
    assert answer["status"] == "Accepted"
    got = await csms.call(STATION, "GetVariables", {"getVariableData": [{
        "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}]})
    assert "attributeValue" not in got["getVariableResult"][0]  # WriteOnly (B06.FR.09)

    # The new password is used from the next connection on.
    csms.basic_auth_password = NEW_PASSWORD
    assert await st.terminate() == 0
    mark = len(csms.received)
    st.start()
    await csms.wait_for(STATION, "BootNotification", since=mark, timeout=15)
    assert await st.terminate() == 0

    on_disk = log_file_text(st.tmp / "data")
    assert '"SetVariables"' in on_disk  # the file logs frames too
    out = st.output() + on_disk
    assert '"SetVariables"' in out and '"SetNetworkProfile"' in out  # frames were logged
    assert '"attributeValue":"***"' in out and '"password":"***"' in out
    for secret in [*forms(PASSWORD), *forms(NEW_PASSWORD), VPN_PASSWORD, APN_PASSWORD,
                   *private_key_lines(st.tmp / "data")]:
        assert secret not in out, f"a secret is in the log: {secret[:4]}..."


async def test_authorization_key_never_logged_16(bench: Bench) -> None:
    csms = await bench.csms(password=PASSWORD, version="1.6")
    st = bench.station(f"ws://127.0.0.1:{csms.port}/ocpp", security_profile=1,
                       basic_auth_password=PASSWORD, version="1.6")
    st.start()
    await booted16(csms)
    answer = await csms.call(STATION, "ChangeConfiguration",
                             {"key": "AuthorizationKey", "value": NEW_PASSWORD})
    assert answer["status"] == "Accepted"
    got: dict[str, Any] = await csms.call(STATION, "GetConfiguration",
                                          {"key": ["AuthorizationKey"]})
    assert "value" not in got["configurationKey"][0]
    csms.basic_auth_password = NEW_PASSWORD
    assert await st.terminate() == 0
    mark = len(csms.received)
    st.start()
    await booted16(csms, since=mark)
    assert await st.terminate() == 0
    on_disk = log_file_text(st.tmp / "data")
    assert '"ChangeConfiguration"' in on_disk
    out = st.output() + on_disk
    assert '"ChangeConfiguration"' in out and '"value":"***"' in out
    for secret in [*forms(PASSWORD), *forms(NEW_PASSWORD)]:
        assert secret not in out, f"a secret is in the log: {secret[:4]}..."

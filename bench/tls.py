"""TLS cost on the station's side: handshake time per security profile, and the time a
station needs to be back after its CSMS restarts.

    .venv/bin/python bench/tls.py [--connects 200] [--restarts 10] [--json]

Handshake: `connects` websocket connections, one at a time, opened with the station's
own code (ocpp.dialer.Dialer: the TLS context of security/tls.py, the key and
certificate in the station's stores, Basic auth for profiles 1-2) to a websockets
server in this process on loopback, from just before dialing to the open connection
(TCP + TLS + HTTP upgrade + subprotocol), each closed before the next. Series alternate
between plain ws (baseline), profile 2 (server certificate verified, Basic auth header),
profile 3 (mutual TLS), and profile 2 with the server held to TLS 1.2
(ECDHE-ECDSA-AES128-GCM-SHA256). Building a TLS context (once per change of roots or
certificate) is timed apart.

Reconnect: a real `evse-agent run` process (mock hardware, RetryBackOffWaitMinimum 0,
RetryBackOffRandomRange 0, so back-off adds nothing) connected to the development
CSMS; the CSMS is stopped and started again on the same port, `restarts` times, per
profile; measured from the moment the new CSMS listens to the station's websocket being
accepted, and to its first OCPP message. With the factory back-off
(RetryBackOffWaitMinimum 3 s + up to 10 s random) the wait dominates: add it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchlib import free_port
from websockets.asyncio.server import ServerConnection, serve

from evse_agent.csms import DevCsms
from evse_agent.csms.ca import DevCa
from evse_agent.csms.tls import server_ssl_context
from evse_agent.ocpp.dialer import Dialer
from evse_agent.ocpp.network_profiles import NetworkProfile
from evse_agent.security import CertificateStore, FileKeyStore, Security
from evse_agent.security.tls import client_ssl_context

STATION = "BENCH-TLS"
PASSWORD = "bench-Pa55word-0123"


class _Events:
    def record(self, type: str, tech_info: str | None = None) -> None:
        pass


def station_security(work: Path, ca: DevCa) -> Security:
    """A station's stores with the CSMS root and a ChargingStationCertificate."""
    keys = FileKeyStore(work / "keys", use_credential=False)
    certs = CertificateStore(work / "certs")
    now = datetime.now(UTC)
    assert certs.install_root("CSMSRootCertificate", ca.root_pem, now, None).accepted
    keys.generate("ChargingStationCertificate")
    csr = keys.csr("ChargingStationCertificate", STATION, "evse-agent dev")
    verdict = certs.accept_signed("ChargingStationCertificate", ca.sign_csr(csr), keys, now,
                                  common_name=STATION, organization=None)
    assert verdict.accepted, verdict.reason
    return Security(keys, certs, _Events())  # type: ignore[arg-type]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99),
            "mean_ms": statistics.fmean(ms), "max_ms": max(ms), "min_ms": min(ms)}


# --- handshake -------------------------------------------------------------------------
async def handshakes(connects: int, work: Path) -> dict[str, dict[str, float]]:
    ca = DevCa.root()
    chain, key = ca.issue_server("127.0.0.1")
    (work / "server.pem").write_text(chain)
    (work / "server.key").write_text(key)
    (work / "root.pem").write_text(ca.root_pem)
    security = station_security(work, ca)

    async def hold(ws: ServerConnection) -> None:
        await ws.wait_closed()

    def server_ctx(client_ca: bool, tls12: bool) -> ssl.SSLContext:
        ctx = server_ssl_context(work / "server.pem", work / "server.key",
                                 work / "root.pem" if client_ca else None)
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    series = {
        "plain ws (profile 1)": (None, 1, False),
        "profile 2 (TLS 1.3)": (server_ctx(False, False), 2, False),
        "profile 3 (mTLS, TLS 1.3)": (server_ctx(True, False), 3, False),
        "profile 2 (TLS 1.2)": (server_ctx(False, True), 2, True),
    }
    servers, urls = [], {}
    for name, (ctx, _, _) in series.items():
        server = await serve(hold, "127.0.0.1", 0, ssl=ctx, subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                             ping_interval=None)
        servers.append(server)
        scheme = "wss" if ctx else "ws"
        urls[name] = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}/ocpp"
    times: dict[str, list[float]] = {name: [] for name in series}
    negotiated: dict[str, str] = {}
    builds: dict[str, list[float]] = {}
    dialer = Dialer(STATION, lambda: PASSWORD, security)  # the station's own dialing
    for i in range(connects + 10):
        for name, (_, profile, _) in series.items():
            target = NetworkProfile(1, urls[name], ("2.0.1",), profile, 10)
            # The station keeps its context while roots and certificate stay the same;
            # building one (what the first connect after a change pays) is shown apart.
            start = time.perf_counter()
            tls = client_ssl_context(profile, security)
            built = time.perf_counter() - start
            start = time.perf_counter()
            ws, _ = await dialer.dial(target, None, 10)
            took = time.perf_counter() - start
            if tls is not None and name not in negotiated:
                sslobj = ws.transport.get_extra_info("ssl_object")
                negotiated[name] = f"{sslobj.version()} {sslobj.cipher()[0]}"
            await ws.close()
            if i >= 10:  # warm-up
                times[name].append(took)
                if tls is not None:
                    builds.setdefault(f"context build (once per change), profile {profile}",
                                      []).append(built)
    for server in servers:
        server.close()
        await server.wait_closed()
    out = {name: summary(values) for name, values in times.items()}
    out.update({name: summary(values) for name, values in builds.items()})
    for name, text in negotiated.items():
        out[name]["negotiated"] = text  # type: ignore[assignment]
    return out


# --- reconnect ---------------------------------------------------------------------------
def write_station(work: Path, port: int, profile: int) -> Path:
    scheme, host = ("wss", "127.0.0.1") if profile >= 2 else ("ws", "127.0.0.1")
    config = work / f"station-{profile}.toml"
    config.write_text(f"""
[station]
id = "{STATION}"
evse_count = 2
data_dir = "{work / f'data-{profile}'}"

[ocpp]
csms_url = "{scheme}://{host}:{port}/ocpp"
security_profile = {profile}
{f'basic_auth_password = "{PASSWORD}"' if profile in (1, 2) else ""}

[sim]
listen = "127.0.0.1:{free_port()}"

[device_model.OCPPCommCtrlr]
RetryBackOffWaitMinimum = 0
RetryBackOffRandomRange = 0
RetryBackOffRepeatTimes = 0
""")
    return config


def provision(config: Path, ca: DevCa, profile: int, work: Path) -> None:
    def keys(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "evse_agent", "keys", "--config",
                               str(config), *args], capture_output=True, text=True, check=True)
        return done.stdout

    if profile < 2:
        return
    root = work / "root.pem"
    root.write_text(ca.root_pem)
    keys("install-root", "CSMSRootCertificate", str(root))
    if profile == 3:
        csr = keys("generate")
        chain = work / f"chain-{profile}.pem"
        chain.write_text(ca.sign_csr(csr))
        keys("install-cert", str(chain))


async def reconnects(restarts: int, work: Path) -> dict[str, dict[str, float]]:
    ca = DevCa.root()
    chain, key = ca.issue_server("127.0.0.1")
    (work / "server.pem").write_text(chain)
    (work / "server.key").write_text(key)
    (work / "root.pem").write_text(ca.root_pem)
    out: dict[str, dict[str, float]] = {}
    for profile in (1, 2, 3):
        port = free_port()
        ctx = None
        if profile >= 2:
            ctx = server_ssl_context(work / "server.pem", work / "server.key",
                                     work / "root.pem" if profile == 3 else None)
        config = write_station(work, port, profile)
        provision(config, ca, profile, work)
        proc = subprocess.Popen([sys.executable, "-m", "evse_agent", "run", "--config",
                                 str(config)], stdout=subprocess.DEVNULL,
                                stderr=open(work / f"agent-{profile}.log", "ab"))  # noqa: SIM115
        connected: list[float] = []
        first_message: list[float] = []
        try:
            csms = DevCsms()
            csms.basic_auth_password = PASSWORD if profile in (1, 2) else None
            await csms.start("127.0.0.1", port, api_port=0, ssl=ctx)
            await csms.wait_for(STATION, "BootNotification", timeout=30)
            await asyncio.sleep(0.5)
            for _ in range(restarts):
                await csms.stop()
                await asyncio.sleep(0.2)  # the CSMS is down for a moment
                csms = DevCsms()
                csms.basic_auth_password = PASSWORD if profile in (1, 2) else None
                await csms.start("127.0.0.1", port, api_port=0, ssl=ctx)
                up = time.perf_counter()
                while STATION not in csms.stations:
                    await asyncio.sleep(0.001)
                connected.append(time.perf_counter() - up)
                # After an Accepted boot a short outage sends no BootNotification; ask
                # for a Heartbeat to see the first message go round.
                await csms.call(STATION, "TriggerMessage", {"requestedMessage": "Heartbeat"})
                await csms.wait_for(STATION, "Heartbeat", timeout=10)
                first_message.append(time.perf_counter() - up)
                await asyncio.sleep(0.2)
            await csms.stop()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        name = "plain ws (profile 1)" if profile == 1 else (
            "profile 2 (TLS)" if profile == 2 else "profile 3 (mTLS)")
        out[f"{name}: CSMS up -> connected"] = summary(connected)
        out[f"{name}: CSMS up -> Heartbeat round trip"] = summary(first_message)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)  # the dev CSMS logs every frame at INFO
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "hs").mkdir()
        (work / "rc").mkdir()
        hs = asyncio.run(handshakes(args.connects, work / "hs"))
        rc = asyncio.run(reconnects(args.restarts, work / "rc"))
    if args.json:
        print(json.dumps({"handshake": hs, "reconnect": rc}, indent=2))
        return 0
    print(f"Handshake (Dialer.dial: TCP + TLS + websocket upgrade), {args.connects} each, "
          f"cpu count {os.cpu_count()}")
    for name, s in hs.items():
        print(f"  {name:28} p50 {s['p50_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms  "
              f"mean {s['mean_ms']:7.2f}  max {s['max_ms']:7.2f}  {s.get('negotiated', '')}")
    base = hs["plain ws (profile 1)"]
    for name in [n for n in hs if n.startswith("profile")]:
        print(f"  {name} / plain: p50 x{hs[name]['p50_ms'] / base['p50_ms']:.2f}, "
              f"p99 x{hs[name]['p99_ms'] / base['p99_ms']:.2f}")
    print(f"Reconnect after a CSMS restart (back-off 0), {args.restarts} each")
    for name, s in rc.items():
        print(f"  {name:50} p50 {s['p50_ms']:7.1f} ms  p99 {s['p99_ms']:7.1f} ms  "
              f"max {s['max_ms']:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

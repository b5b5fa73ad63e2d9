"""sd_notify over a real AF_UNIX datagram socket (sd_notify(3) protocol), the agent's
READY / STATUS / WATCHDOG / STOPPING life cycle under a pretend systemd, and log lines
for journald (systemd.exec(5) $JOURNAL_STREAM)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from evse_agent.systemd import JournalFormatter, Notifier, journal_stderr


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_notify_sends_one_datagram_per_call(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled and n.watchdog_interval_s is None
    assert n.ready("started; connecting to CSMS")
    assert sock.recv(4096) == b"READY=1\nSTATUS=started; connecting to CSMS"
    assert n.status("offline:\ncannot reach CSMS")  # one assignment stays one line
    assert sock.recv(4096) == b"STATUS=offline: cannot reach CSMS"
    assert n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_abstract_socket_with_at_sign() -> None:
    name = f"evse-agent-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_outside_systemd_and_broken_sockets_are_quiet(tmp_path: Path) -> None:
    assert not Notifier({}).enabled and not Notifier({}).ready()
    assert not Notifier({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert gone.enabled and not gone.watchdog() and not gone.watchdog()  # no exception


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert Notifier({"WATCHDOG_USEC": "20000000"}).watchdog_interval_s == 10.0
    assert Notifier({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}
                    ).watchdog_interval_s == 10.0
    assert Notifier({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}
                    ).watchdog_interval_s is None  # meant for another process
    assert Notifier({"WATCHDOG_USEC": "x"}).watchdog_interval_s is None


def test_journal_formatter_has_priority_and_no_timestamp() -> None:
    record = logging.LogRecord("evse_agent", logging.ERROR, __file__, 1, "a\nb %s", ("c",), None)
    assert JournalFormatter().format(record) == "<3>evse_agent: a\n<3>b c"
    record.levelno = logging.INFO
    assert JournalFormatter().format(record) == "<6>evse_agent: a\n<6>b c"


def test_journal_stream_must_name_our_stderr() -> None:
    st = os.fstat(sys.stderr.fileno())
    assert journal_stderr({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not journal_stderr({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    assert not journal_stderr({})


def test_agent_under_systemd_ready_status_watchdog_stopping(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """Type=notify: READY=1 even while the CSMS is unreachable (offline is a working
    station), STATUS= says so, WATCHDOG=1 at WATCHDOG_USEC/2, STOPPING=1 on SIGTERM;
    with $JOURNAL_STREAM naming its stderr the log has priorities and no timestamps."""
    sock, path = notify_socket
    with socket.socket() as s:  # a port nobody listens on: the CSMS is down
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    config = tmp_path / "station.toml"
    config.write_text(f"""
[station]
id = "CS-SYSTEMD"
evse_count = 1
data_dir = "{tmp_path / 'data'}"
[ocpp]
csms_url = "ws://127.0.0.1:{dead_port}/ocpp"
[sim]
listen = "127.0.0.1:0"
""")
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="300000",
                   JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "evse_agent", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=err, env=env,
        )
        try:
            messages = []
            while not any(m.startswith(b"STATUS=offline") for m in messages) or \
                    messages.count(b"WATCHDOG=1") < 3:
                messages.append(sock.recv(4096))
            proc.send_signal(signal.SIGTERM)
            while not messages[-1].startswith(b"STOPPING=1"):
                messages.append(sock.recv(4096))
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert messages[0] == b"READY=1\nSTATUS=started; connecting to CSMS"
    offline = next(m for m in messages if m.startswith(b"STATUS=offline"))
    assert f"cannot reach CSMS at ws://127.0.0.1:{dead_port}".encode() in offline
    assert messages[-1] == b"STOPPING=1\nSTATUS=stopping"
    lines = log.read_text().splitlines()
    assert lines and all(line[:3] in ("<6>", "<4>", "<3>") for line in lines), lines
    assert any(line.startswith("<4>evse_agent: cannot reach CSMS") for line in lines)


def test_unit_file_is_type_notify_with_watchdog_and_state_directory() -> None:
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read(Path(__file__).parents[2] / "config" / "evse-agent.service")
    service = unit["Service"]
    assert service["Type"] == "notify" and int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "on-failure" and service["StateDirectory"] == "evse-agent"
    assert service["ExecStart"].endswith("evse-agent run --config /etc/evse-agent/config.toml")
    assert {"dialout", "gpio"} <= set(service["SupplementaryGroups"].split())
    assert "AF_CAN" in service["RestrictAddressFamilies"].split()
    assert "PrivateDevices" not in service and "DevicePolicy" not in service


async def test_watchdog_stops_pinging_when_a_station_loop_dies(
    notify_socket: tuple[socket.socket, str]
) -> None:
    """A half-dead agent must not keep feeding the watchdog: systemd restarts it."""
    from evse_agent.agent import Agent

    sock, path = notify_socket
    agent = SimpleNamespace(systemd=Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}))

    async def crashing_loop() -> None:
        await asyncio.sleep(0.3)
        raise RuntimeError("boom")

    alive = asyncio.ensure_future(asyncio.sleep(30))
    await asyncio.wait_for(Agent._watchdog(agent, [alive, asyncio.ensure_future(crashing_loop())]),
                           5)  # type: ignore[arg-type]
    alive.cancel()
    sock.setblocking(False)
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096))
        except BlockingIOError:
            break
    assert messages.count(b"WATCHDOG=1") >= 4  # every 0.05 s for 0.3 s
    assert messages[-1] == b"STATUS=unhealthy: a station loop ended (RuntimeError('boom'))"


def test_reloading_carries_monotonic_usec(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert Notifier({"NOTIFY_SOCKET": path}).reloading()
    fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert fields.keys() == {"RELOADING", "MONOTONIC_USEC", "STATUS"}
    assert fields["RELOADING"] == "1" and fields["STATUS"] == "restarting"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


RESTART_SCRIPT = """
import asyncio, sys
from pathlib import Path
from evse_agent.agent import RESTART, Agent
from evse_agent.config import load

async def main() -> int:
    agent = Agent(load(Path(sys.argv[1])))
    asyncio.get_running_loop().call_later(0.5, agent.schedule_restart)  # as a Reset does
    return await agent.run()

print("RESTART" if asyncio.run(main()) == RESTART else "STOP")
"""


def test_reset_restart_is_a_reload_not_a_stop(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """B11/B12 Reset re-executes the agent in place: under Type=notify it must say
    RELOADING=1 (+ MONOTONIC_USEC) and never STOPPING=1, else systemd waits for an exit
    and SIGKILLs the re-executed station after TimeoutStopSec."""
    sock, path = notify_socket
    config = tmp_path / "station.toml"
    config.write_text(f"""
[station]
id = "CS-RELOAD"
data_dir = "{tmp_path / 'data'}"
[ocpp]
csms_url = "ws://127.0.0.1:9/ocpp"
[sim]
listen = "127.0.0.1:0"
""")
    env = dict(os.environ, NOTIFY_SOCKET=path)
    env.pop("WATCHDOG_USEC", None)
    done = subprocess.run([sys.executable, "-c", RESTART_SCRIPT, str(config)], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "RESTART", done.stderr
    sock.settimeout(0.2)
    messages = []
    with contextlib.suppress(TimeoutError):
        while True:
            messages.append(sock.recv(4096).decode())
    assert messages[0].startswith("READY=1")
    assert not [m for m in messages if "STOPPING=1" in m.splitlines()], messages
    reload = [m for m in messages if m.startswith("RELOADING=1\n")]
    assert len(reload) == 1 and "MONOTONIC_USEC=" in reload[0], messages
    assert reload[0].endswith("STATUS=restarting")


def test_unit_gives_lgpio_a_writable_directory_and_never_stops_retrying() -> None:
    """lgpio creates .lgd-nfy* pipes in $LG_WD or the working directory; under
    ProtectSystem=strict only the State/Runtime directories are writable. A USB adapter
    that appears late must still start the station: no start limit."""
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(Path(__file__).parents[2] / "config" / "evse-agent.service")
    service = unit["Service"]
    assert service["ProtectSystem"] == "strict"
    assert service["WorkingDirectory"] == "%S/" + service["StateDirectory"]
    text = (Path(__file__).parents[2] / "config" / "evse-agent.service").read_text()
    environment = [line.split("=", 1)[1] for line in text.splitlines()
                   if line.startswith("Environment=")]
    assert "LG_WD=%t/" + service["RuntimeDirectory"] in environment
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"

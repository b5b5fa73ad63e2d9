"""The diagnostics log on disk (issue 8 item 6): rotated and bounded, timestamps in
UTC, secrets blanked before a line is written; and a time window of it, or of the
security log, packed into one zip (N01.FR.02-04, 1.6 GetDiagnostics startTime /
stopTime)."""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evse_agent.logs import files
from evse_agent.logs.files import (
    DiagnosticsFileHandler,
    attach,
    lines_between,
    log_files,
)
from evse_agent.logs.pack import filename, pack_diagnostics, pack_security
from evse_agent.security import redaction
from evse_agent.security.events import SecurityEventLog
from evse_agent.storage import Storage

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def handler(tmp_path: Path) -> Iterator[DiagnosticsFileHandler]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    h = attach(tmp_path / "logs", max_bytes=10_000, backup_count=2)
    yield h
    root.removeHandler(h)
    h.close()
    root.setLevel(level)
    for other in root.handlers:
        for flt in [f for f in other.filters if isinstance(f, redaction.SecretFilter)]:
            other.removeFilter(flt)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def unzip(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_rotation_keeps_files_bounded(handler: DiagnosticsFileHandler, tmp_path: Path) -> None:
    """2000 records of ~120 bytes (240 kB) into max_bytes 10 kB x (1 + 2 backups): never
    more than three files, each within max_bytes, the newest records kept."""
    log = logging.getLogger("evse_agent.test_rotation")
    for i in range(2000):
        log.info("record %04d %s", i, "x" * 80)
    paths = log_files(tmp_path / "logs")
    assert [p.name for p in paths] == ["evse-agent.log.2", "evse-agent.log.1", "evse-agent.log"]
    assert all(p.stat().st_size <= 10_000 for p in paths)
    assert sum(p.stat().st_size for p in paths) <= 30_000
    text = "".join(p.read_text() for p in paths)
    assert "record 1999" in text and "record 0000" not in text
    numbers = [int(line.split("record ")[1][:4]) for line in text.splitlines()]
    assert numbers == sorted(numbers)  # oldest file first, in order across files


def test_a_rotation_while_packing_neither_repeats_nor_reorders(
    handler: DiagnosticsFileHandler, tmp_path: Path
) -> None:
    log = logging.getLogger("evse_agent.test_rotation")
    for i in range(150):
        log.info("record %04d %s", i, "x" * 80)
    lines = lines_between(tmp_path / "logs")
    read = [next(lines)]
    for i in range(150, 400):  # rolls the files over twice meanwhile
        log.info("record %04d %s", i, "x" * 80)
    read += list(lines)
    numbers = [int(line.split("record ")[1][:4]) for line in read]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert numbers[-1] >= 149


def test_a_second_attach_replaces_the_first(tmp_path: Path) -> None:
    first = attach(tmp_path / "a")
    second = attach(tmp_path / "b")
    try:
        ours = [h for h in logging.getLogger().handlers if isinstance(h, DiagnosticsFileHandler)]
        assert ours == [second]
    finally:
        logging.getLogger().removeHandler(second)
        second.close()
        first.close()


def test_lines_start_with_utc_rfc3339(handler: DiagnosticsFileHandler, tmp_path: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    logging.getLogger("evse_agent.test").warning("hello")
    line = (tmp_path / "logs" / "evse-agent.log").read_text().splitlines()[-1]
    when = files.stamp_of(line)
    assert when is not None and before <= when <= datetime.now(UTC) + timedelta(seconds=1)
    assert line.endswith("WARNING evse_agent.test: hello")


def test_secrets_never_reach_the_file(handler: DiagnosticsFileHandler, tmp_path: Path) -> None:
    """The agent's SecretFilter (redaction.install after attach) covers the file: the
    BasicAuthPassword in a SetVariables frame (A00.FR.304 WriteOnly), the 1.6
    AuthorizationKey, a held secret anywhere in a line, the password of an upload
    location (N01.FR.17) and a traceback's text."""
    password = "Sup3r-Secret-Passw0rd"
    key = "0123456789abcdef0123456789abcdef"
    redaction.install(lambda: [password])
    frames = logging.getLogger("evse_agent.frames")
    frames.info("-> %s", json.dumps([2, "1", "SetVariables", {"setVariableData": [{
        "attributeValue": "Brand-New-Passw0rd-1",
        "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}]}]))
    frames.info("-> %s", json.dumps([2, "2", "ChangeConfiguration",
                                     {"key": "AuthorizationKey", "value": key}]))
    logging.getLogger("evse_agent").info("dialing with %s", password)
    logging.getLogger("evse_agent").info("GetLog to %s", "ftp://u:url-pass@h/logs/")
    try:
        raise OSError("cannot reach ftp://u:tb-pass@h/logs/")
    except OSError:
        logging.getLogger("evse_agent").exception("upload failed")
    text = (tmp_path / "logs" / "evse-agent.log").read_text()
    assert "Brand-New-Passw0rd-1" not in text and key not in text and password not in text
    assert "url-pass" not in text and "ftp://u:***@h/logs/" in text  # N01.FR.17
    assert "tb-pass" not in text and "OSError: cannot reach ftp://u:***@h/logs/" in text
    assert text.count("***") == 6  # the traceback: its source line and its message


def write_log(directory: Path, name: str, moments: list[datetime], tag: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, moment in enumerate(moments):
        lines.append(f"{stamp(moment)} INFO    evse_agent: {tag} {i}\n")
        if i == 1:
            lines.append("Traceback (most recent call last):\n  File x, line 1\n")
    (directory / name).write_text("".join(lines))


def test_pack_diagnostics_window_across_rotated_files(tmp_path: Path) -> None:
    """oldestTimestamp / latestTimestamp (N01, 1.6 startTime / stopTime) cut the
    records across the rotated files, oldest first; a traceback stays with its
    record."""
    logs = tmp_path / "logs"
    minutes = [T0 + timedelta(minutes=i) for i in range(4)]
    write_log(logs, "evse-agent.log.2", minutes, "old")
    write_log(logs, "evse-agent.log.1", [m + timedelta(hours=1) for m in minutes], "mid")
    write_log(logs, "evse-agent.log", [m + timedelta(hours=2) for m in minutes], "new")
    dest = tmp_path / "out.zip"
    count = pack_diagnostics(logs, dest, T0 + timedelta(minutes=1),
                             T0 + timedelta(hours=1, minutes=1))
    text = unzip(dest)["evse-agent.log"]
    tags = [line.split("evse_agent: ")[1] for line in text.splitlines() if "evse_agent:" in line]
    assert tags == ["old 1", "old 2", "old 3", "mid 0", "mid 1"]
    assert text.count("Traceback") == 2  # old 1's and mid 1's
    assert count == len(text.splitlines()) == 9
    everything = unzip(dest) if pack_diagnostics(logs, dest) else {}
    assert everything["evse-agent.log"].count("INFO") == 12
    assert not list(tmp_path.glob("*.part"))


def test_pack_cleans_lines_on_the_way_out(tmp_path: Path) -> None:
    """A secret the station holds now is blanked even in a line written before it was
    one; an upload location's password too."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "evse-agent.log").write_text(
        f"{stamp(T0)} INFO    x: old password NowSecret123456789\n"
        f"{stamp(T0)} INFO    x: GetLog to ftp://user:ftp-pass@host/logs/\n"
    )
    flt = redaction.SecretFilter(lambda: ["NowSecret123456789"])
    pack_diagnostics(logs, tmp_path / "o.zip", clean=flt.clean)
    text = unzip(tmp_path / "o.zip")["evse-agent.log"]
    assert "NowSecret" not in text and "ftp-pass" not in text
    assert "ftp://user:***@host/logs/" in text


def test_pack_security_window(tmp_path: Path) -> None:
    """N01.FR.03: the security log's events within the window, one line each."""
    now = [T0]
    events = SecurityEventLog(Storage(tmp_path / "a.db"), lambda: now[0])
    for i, kind in enumerate(["StartupOfTheDevice", "InvalidMessages", "ResetOrReboot"]):
        now[0] = T0 + timedelta(minutes=i)
        events.record(kind, f"info {i}")
    dest = tmp_path / "s.zip"
    assert pack_security(events.entries(T0 + timedelta(minutes=1), None), dest) == 2
    text = unzip(dest)["security.log"]
    assert text.splitlines() == [
        "2026-11-25T10:01:00.000Z InvalidMessages: info 1",
        "2026-11-25T10:02:00.000Z ResetOrReboot (critical): info 2",
    ]


def test_filename_is_safe_and_bounded() -> None:
    assert filename("CS/01 x", "SecurityLog", T0) == "CS_01_x-SecurityLog-20261125T100000Z.zip"
    assert len(filename("C" * 400, "DiagnosticsLog", T0)) == 255
    assert filename("CS", "DiagnosticsLog", T0, 41) == "CS-DiagnosticsLog-20261125T100000Z-41.zip"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("max_bytes = 10", "logs.max_bytes"),
        ("backup_count = 0", "logs.backup_count"),  # would never rotate: unbounded
        ('upload_method = "GET"', "logs.upload_method"),
        ("size = 1", "logs.size"),
    ],
)
def test_logs_config_errors_name_the_key(tmp_path: Path, table: str, key: str) -> None:
    from evse_agent.config import ConfigError, load

    path = tmp_path / "s.toml"
    path.write_text(f'[station]\nid = "CS"\n[ocpp]\ncsms_url = "ws://h/o"\n[logs]\n{table}\n')
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: {key}:") and "\n" not in str(err.value)


def test_logs_config_defaults_and_values(tmp_path: Path) -> None:
    from evse_agent.config import load

    path = tmp_path / "s.toml"
    base = '[station]\nid = "CS"\n[ocpp]\ncsms_url = "ws://h/o"\n'
    path.write_text(base)
    cfg = load(path)
    assert (cfg.log_max_bytes, cfg.log_backup_count, cfg.log_upload_method) == (
        files.MAX_BYTES, files.BACKUP_COUNT, "PUT")
    path.write_text(base + '[logs]\nmax_bytes = 20000\nbackup_count = 3\nupload_method = "POST"\n')
    cfg = load(path)
    assert (cfg.log_max_bytes, cfg.log_backup_count, cfg.log_upload_method) == (
        20000, 3, "POST")

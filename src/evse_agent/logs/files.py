"""The diagnostics log on disk: what the agent logs to stderr also goes to
data_dir/logs/evse-agent.log, rotated by size and bounded in count, so the files never
take more than about max_bytes * (backup_count + 1) (a single record longer than
max_bytes is the only excess).

Every record starts with its UTC time in RFC 3339 with milliseconds and a Z, so a time
window (GetLog oldestTimestamp / latestTimestamp) can be cut from the files without
guessing time zones; the lines of a traceback stay with their record.

Secrets never reach these files: the agent puts its SecretFilter (security/redaction.py)
on every root handler, this one included (attach() comes first), before the first frame
is logged. That filter also blanks the password of any URL (an upload location's
user:password@, N01.FR.17) and cleans tracebacks: those files leave the station.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

LOG_NAME = "evse-agent.log"
MAX_BYTES = 1_000_000  # [logs] max_bytes default
BACKUP_COUNT = 5  # [logs] backup_count default: rotated files kept besides the live one
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ")


class UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + (
            f".{int(record.msecs):03d}Z"
        )


class DiagnosticsFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that names the directory it writes to."""

    def __init__(self, directory: Path, max_bytes: int, backup_count: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(
            directory / LOG_NAME, maxBytes=max_bytes, backupCount=backup_count,
            encoding="utf-8", delay=True,
        )
        self.directory = directory
        self.setFormatter(UtcFormatter(FORMAT))


def attach(
    directory: Path, max_bytes: int = MAX_BYTES, backup_count: int = BACKUP_COUNT
) -> DiagnosticsFileHandler:
    """Log to `directory` besides stderr: one DiagnosticsFileHandler on the root logger
    (a previous one, from an agent built earlier in this process, is closed first).
    Call it before the secret filter is installed (redaction.install)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, DiagnosticsFileHandler)]:
        root.removeHandler(old)
        old.close()
    handler = DiagnosticsFileHandler(directory, max_bytes, max(0, backup_count))
    root.addHandler(handler)
    return handler


def log_files(directory: Path) -> list[Path]:
    """The log files, oldest first: evse-agent.log.N ... .1, then the live one."""
    rotated = []
    for path in directory.glob(LOG_NAME + ".*"):
        suffix = path.name[len(LOG_NAME) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    out = [p for _, p in sorted(rotated, reverse=True)]
    live = directory / LOG_NAME
    if live.exists():
        out.append(live)
    return out


def stamp_of(line: str) -> datetime | None:
    match = STAMP.match(line)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def lines_between(
    directory: Path, oldest: datetime | None = None, latest: datetime | None = None
) -> Iterator[str]:
    """The log lines of records written within [oldest, latest], oldest first, read one
    line at a time (constant memory). A line without a timestamp (a traceback's)
    belongs to the record above it. All files are opened first: a rotation while they
    are read renames them under us, but the open files keep their content."""
    handles = []
    for path in log_files(directory):
        try:
            handles.append(path.open(encoding="utf-8", errors="replace"))
        except FileNotFoundError:  # rotated away (the oldest, dropped) meanwhile
            continue
    keep = False
    try:
        for handle in handles:
            for line in handle:
                when = stamp_of(line)
                if when is not None:
                    keep = (oldest is None or when >= oldest) and (
                        latest is None or when <= latest
                    )
                if keep:
                    yield line if line.endswith("\n") else line + "\n"
    finally:
        for handle in handles:
            handle.close()

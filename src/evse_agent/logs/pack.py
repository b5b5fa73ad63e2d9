"""One file for upload (N01.FR.02 "a single log file"): a zip holding the requested time
window of the diagnostics log or of the security log, written as it is read (the
entries stream through zipfile's deflater: constant memory, whatever the log size).

The format of the file is not prescribed (N01); a zip is what operators open anywhere.
Each line passes through `clean` (the agent's SecretFilter.clean) once more on the way
out, so a secret the station holds now is blanked even in a line written before it was
one.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .files import lines_between

if TYPE_CHECKING:
    from ..security.events import SecurityEvent

DIAGNOSTICS = "DiagnosticsLog"
SECURITY = "SecurityLog"
FILENAME_MAX = 255  # GetLogResponse.filename, GetDiagnostics.conf fileName


def filename(station_id: str, log_type: str, now: datetime, request_id: int | None = None) -> str:
    """The name reported in the response and used on the server, e.g.
    CS-0001-DiagnosticsLog-20261125T144456Z-41.zip (41: the requestId, if any)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in station_id)
    tail = "" if request_id is None else f"-{request_id}"
    name = f"{safe}-{log_type}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}{tail}.zip"
    return name[-FILENAME_MAX:]


def _write(dest: Path, member: str, lines: Iterable[str], clean: Callable[[str], str]) -> int:
    """Write `lines` into `dest` (a new zip) as `member`; the number of lines."""
    count = 0
    tmp = dest.with_name(dest.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w", force_zip64=True) as out:
            for line in lines:
                out.write(clean(line).encode("utf-8"))
                count += 1
    tmp.replace(dest)
    return count


def pack_diagnostics(
    log_dir: Path,
    dest: Path,
    oldest: datetime | None = None,
    latest: datetime | None = None,
    clean: Callable[[str], str] = str,
) -> int:
    """The diagnostics log lines written within [oldest, latest] into the zip `dest`
    (member evse-agent.log); returns how many lines."""
    return _write(dest, "evse-agent.log", lines_between(log_dir, oldest, latest), clean)


def security_lines(events: Iterable[SecurityEvent]) -> Iterable[str]:
    from ..security.events import timestamp_text

    for e in events:
        flag = " (critical)" if e.critical else ""
        info = f": {e.tech_info}" if e.tech_info else ""
        yield f"{timestamp_text(e.timestamp)} {e.type}{flag}{info}\n"


def pack_security(
    events: Iterable[SecurityEvent], dest: Path, clean: Callable[[str], str] = str
) -> int:
    """Security events (already limited to the window by SecurityEventLog.entries) into
    the zip `dest` (member security.log), one line each; returns how many."""
    return _write(dest, "security.log", security_lines(events), clean)

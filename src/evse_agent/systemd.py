"""systemd integration with the standard library only: sd_notify(3) and journald-friendly
log lines.

With `Type=notify` systemd passes $NOTIFY_SOCKET (a filesystem path, or an abstract
socket written with a leading '@') and, with `WatchdogSec=`, $WATCHDOG_USEC. The agent
says READY=1 once its devices are started and its loops run (the first connection
attempt has begun; being offline is a working state, not a failed start), STATUS= lines
as the CSMS connection comes and goes, WATCHDOG=1 at half the watchdog interval while
its loops are healthy, and STOPPING=1 when it shuts down. A CSMS Reset re-executes the
process in place (same pid): that is a reload to systemd (RELOADING=1 with
MONOTONIC_USEC=, ended by the READY=1 of the new image), never STOPPING=1, after which
systemd would wait for an exit and kill the service after TimeoutStopSec. Outside
systemd every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify datagrams; never raises (a lost notification must not stop a
    charging station)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval_s = _watchdog_interval(env)
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `assignments` ("READY=1", "STATUS=...") in one datagram; True if sent."""
        if self.address is None:
            return False
        data = "\n".join(a.replace("\n", " ") for a in assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(data, self.address)
        except OSError as err:
            if not self._warned:  # once: the journal must not fill with this
                log.warning("sd_notify to %r failed: %s", self.address, err)
                self._warned = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        """The service is really going away (SIGTERM, `systemctl stop`)."""
        return self.notify("STOPPING=1", f"STATUS={status}")

    def reloading(self, status: str = "restarting") -> bool:
        """The process re-executes itself (a Reset): systemd(5) needs MONOTONIC_USEC=
        with RELOADING=1 (Type=notify-reload; harmless for Type=notify); the next
        READY=1 ends the reload."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={status}")


def _address(value: str) -> str | bytes | None:
    if value.startswith("@"):  # abstract namespace: a leading NUL byte on the wire
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # unset, or a transport we do not speak (vsock)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises; None when the watchdog
    is off or meant for another process ($WATCHDOG_PID)."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    return usec / 2 / 1e6 if usec > 0 else None


def journal_stderr(env: Mapping[str, str] | None = None) -> bool:
    """True when stderr is connected to journald ($JOURNAL_STREAM names its device and
    inode, see systemd.exec(5)): the journal stamps each line itself."""
    env = os.environ if env is None else env
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not device or not inode:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return f"{st.st_dev}:{st.st_ino}" == f"{device}:{inode}"


class JournalFormatter(logging.Formatter):
    """`<3>evse_agent: message`: no timestamp (journald adds one) and the syslog
    priority prefix journald reads from stderr, so `journalctl -p err` works."""

    PRIORITY = {
        logging.CRITICAL: 2,
        logging.ERROR: 3,
        logging.WARNING: 4,
        logging.INFO: 6,
        logging.DEBUG: 7,
    }

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = self.PRIORITY.get(record.levelno, 6)
        # Multi-line messages (tracebacks) get the prefix on every line so each
        # journal entry carries its priority.
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


def log_handler() -> logging.Handler | None:
    """A stderr handler with JournalFormatter when stderr goes to journald, else None
    (the caller keeps its usual timestamped format)."""
    if not journal_stderr():
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter())
    return handler

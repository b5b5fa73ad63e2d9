"""The trial of a newly activated firmware: counted starts, a wall-clock deadline, rollback.

A new version is on trial from activate() until confirm() (the agent calls it after
BootNotification Accepted). The record lives in one small JSON file written atomically
(write, fsync, rename, fsync the directory), so a power cut leaves the old or the new
record, never half of one. boot(), called once at every start, counts the trial starts;
one start more than `max_starts`, or a start after the deadline (`timeout_s` after the
first start of the new version, wall clock, so it holds across restarts), switches back
to the previous version. The backends (slots.py, system_updater.py) say how to switch back.

Record: {"state": "trial", "version", "previous_version", "activated_at", "starts",
         "first_start_at", ...}
        {"state": "rolled_back", "version" (the one that failed), "previous_version",
         "reason"}   -- reported by boot() until confirm()
        {"state": "idle", "version"}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__

log = logging.getLogger(__name__)


class InstallError(Exception):
    """Installing, switching or confirming failed; the message is one line."""


@dataclass
class TrialState:
    """What boot() found: the agent reports it (BootNotification reason, status, events)."""

    on_trial: bool = False
    version: str | None = None           # the version now running
    rolled_back_from: str | None = None  # the version that failed its trial (until confirm)
    just_updated: bool = False           # first start of a new version (trial start 1)


class TrialFile:
    """The trial record on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise InstallError(f"cannot read {self.path}: {err.strerror}") from None
        try:
            record = json.loads(text)
            if _valid(record):
                return record  # type: ignore[no-any-return]
        except ValueError:
            pass
        # A record we cannot read must not stop the station: keep the slot that is
        # active and set the file aside for a person to look at.
        aside = self.path.with_name(self.path.name + ".corrupt")
        log.warning("%s is corrupt; ignoring it (kept as %s)", self.path, aside.name)
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        return None

    def save(self, record: dict[str, Any]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
        except OSError as err:
            raise InstallError(f"cannot write {self.path}: {err.strerror}") from None


def _valid(record: Any) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("version"), str):
        return False
    state = record.get("state")
    if state == "idle":
        return True
    if state == "rolled_back":
        return isinstance(record.get("previous_version"), str)
    if state == "trial":
        return (isinstance(record.get("previous_version"), str)
                and isinstance(record.get("activated_at"), int | float)
                and isinstance(record.get("starts"), int)
                and not isinstance(record.get("starts"), bool))
    return False


def _trial_start(record: dict[str, Any]) -> float:
    # The deadline runs from the first start of the new version, not from activation:
    # a board reboot (or a slow restart) must not eat into the time to connect.
    start = record.get("first_start_at")
    return float(start if isinstance(start, int | float) else record["activated_at"])


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TrialInstaller:
    """Trial bookkeeping shared by the backends; they supply the switching."""

    def __init__(self, state_path: Path, *, max_starts: int, timeout_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.trial = TrialFile(state_path)
        self.max_starts = max_starts
        self.timeout_s = timeout_s
        self.clock = clock

    # -- for the backends ----------------------------------------------------------------
    def _installed_version(self) -> str | None:
        """The version of the active installation when the backend can tell."""
        return None

    def _is_active(self, record: dict[str, Any]) -> bool:
        """Is the version on trial the one that started? (A crash may come between the
        record and the switch; a bootloader may fall back on its own.)"""
        return True

    def _switch_back(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def _finish_rollback(self, record: dict[str, Any]) -> None:
        """Complete a rollback that a crash interrupted (recorded, not yet switched)."""

    def _discard_inactive(self) -> None:
        """Forget an installed but not activated version."""

    def _on_confirm(self, record: dict[str, Any]) -> None:
        """Tell the system the running version is good."""

    # -- Installer API -------------------------------------------------------------------
    def running_version(self) -> str:
        installed = self._installed_version()
        if installed is not None:
            return installed
        record = self.trial.load()
        if record is None:
            return __version__
        if record["state"] == "rolled_back":
            return str(record["previous_version"])
        return str(record["version"])

    def start_trial(self, version: str, previous_version: str, **extra: Any) -> None:
        self.trial.save({"state": "trial", "version": version,
                         "previous_version": previous_version,
                         "activated_at": self.clock(), "starts": 0, **extra})

    def boot(self) -> TrialState:
        record = self.trial.load()
        if record is not None and record["state"] == "trial":
            if not self._is_active(record):
                # The switch never happened (power lost right after the record), or the
                # bootloader went back by itself: either way the update did not take.
                log.error("firmware %s is not what started; running %s",
                          record["version"], self.running_version())
                self.trial.save({**record, "state": "rolled_back",
                                 "reason": "the previous version started instead"})
                return TrialState(version=self.running_version(),
                                  rolled_back_from=str(record["version"]))
            record["starts"] += 1
            if record["starts"] == 1:
                record["first_start_at"] = self.clock()
            self.trial.save(record)  # counted before anything else can crash
            elapsed = self.clock() - _trial_start(record)
            if record["starts"] > self.max_starts:
                reason = (f"{record['starts'] - 1} starts without BootNotification "
                          f"Accepted (limit {self.max_starts})")
            elif elapsed > self.timeout_s:
                reason = f"not confirmed within {self.timeout_s:g} s"
            else:
                return TrialState(on_trial=True, version=str(record["version"]),
                                  just_updated=record["starts"] == 1)
            self._quietly(self.rollback, reason)
            record = self.trial.load()
        if record is not None and record["state"] == "rolled_back":
            self._quietly(self._finish_rollback, record)
            return TrialState(version=self.running_version(),
                              rolled_back_from=str(record["version"]))
        return TrialState(version=self.running_version())

    @staticmethod
    def _quietly(step: Callable[[Any], None], arg: Any) -> None:
        # A start must not fail because the way back is broken: say so and run on.
        try:
            step(arg)
        except InstallError as err:
            log.error("rollback failed: %s", err)

    def trial_remaining_s(self) -> float | None:
        """Seconds left before the running trial fails (the agent arms a timer); None when
        no trial runs. Rolling back when it expires is the agent's call: rollback()."""
        record = self.trial.load()
        if record is None or record["state"] != "trial":
            return None
        return max(0.0, _trial_start(record) + self.timeout_s - self.clock())

    def confirm(self) -> None:
        record = self.trial.load()
        if record is None or record["state"] == "idle":
            return
        if record["state"] == "trial":
            self._on_confirm(record)
            log.info("firmware %s confirmed", record["version"])
            self.trial.save({"state": "idle", "version": record["version"]})
        else:  # rolled_back: reported; the previous version is the confirmed one again
            self.trial.save({"state": "idle", "version": record["previous_version"]})

    def rollback(self, reason: str) -> None:
        """Back to the previous version when one is on trial; otherwise drop what was
        installed and not activated."""
        record = self.trial.load()
        if record is None or record["state"] != "trial":
            self._discard_inactive()
            return
        log.warning("rolling back firmware %s to %s: %s", record["version"],
                    record["previous_version"], reason)
        # Recorded first: the switch may reboot the board (system updater), and a crash
        # before the switch is finished by the next boot() (_finish_rollback).
        self.trial.save({**record, "state": "rolled_back", "reason": reason})
        self._switch_back(record)

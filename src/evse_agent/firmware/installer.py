"""The installer interface: a verified bundle goes to the inactive slot, activate()
switches to it, and the new version runs on trial until confirm() (after BootNotification
Accepted); too many starts or too long without it, and boot() switches back.

Backends: "slots" (directory A/B under data_dir/firmware, slots.py; the default, used by
the tests and the demo) and "rauc" / "swupdate" (the board's system updater,
system_updater.py). The methods block (file copies, subprocesses): an asyncio caller
runs install() in a thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .trial import InstallError, TrialState

if TYPE_CHECKING:
    from ..config import Config
    from .bundle import Manifest

__all__ = ["InstallError", "Installer", "TrialState", "open_installer"]


class Installer(Protocol):
    # True: activation needs a board reboot (station.reboot_command); False: the agent
    # re-execs itself in place.
    reboot_required: bool

    def running_version(self) -> str:
        """The bundle version of the active slot (the package's own before any update)."""
        ...

    def install(self, bundle: Path, manifest: Manifest) -> None:
        """Put the verified bundle into the inactive slot; InstallError on failure."""
        ...

    def activate(self) -> None:
        """Switch to the installed slot (atomically) and start its trial; the agent then
        restarts."""
        ...

    def boot(self) -> TrialState:
        """Call once at every start, early: counts trial starts, rolls back when the trial
        failed, and says what to report."""
        ...

    def confirm(self) -> None:
        """The running version passed its trial (BootNotification Accepted)."""
        ...

    def rollback(self, reason: str) -> None:
        """Back to the previous slot while on trial (the agent then restarts); otherwise
        discard an installed, not activated version."""
        ...

    def trial_remaining_s(self) -> float | None:
        """Seconds until the running trial times out, None when not on trial."""
        ...


def open_installer(cfg: Config) -> Installer:
    fw = cfg.firmware
    root = cfg.data_dir / "firmware"
    if fw.installer == "slots":
        from .slots import SlotInstaller

        return SlotInstaller(root, max_starts=fw.trial_max_starts,
                             timeout_s=fw.trial_timeout_s)
    from .system_updater import SystemUpdaterInstaller

    return SystemUpdaterInstaller(
        root, fw.installer, install_command=fw.install_command,
        confirm_command=fw.confirm_command, rollback_command=fw.rollback_command,
        version_command=fw.version_command, reboot_command=cfg.reboot_command,
        max_starts=fw.trial_max_starts, timeout_s=fw.trial_timeout_s)

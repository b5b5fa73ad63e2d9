"""Hand the verified payload to the board's system updater (RAUC or SWUpdate).

The updater writes the image into its own inactive slot and makes it the next boot
target; the agent keeps the trial bookkeeping (trial.py) and tells the updater the
outcome: RAUC `rauc status mark-good` on confirm, `rauc status mark-bad` and a reboot on
rollback (the bootloader then starts the other slot). Every command line is configurable
([firmware] install_command, confirm_command, rollback_command; station.reboot_command);
`{file}` in install_command is the payload's path.

Activating means rebooting the board (`reboot_required`), not re-executing the agent.
The running version is what `version_command` prints (e.g. reading VERSION_ID from
/etc/os-release); without one it is the trial record's, and a fallback the bootloader
made on its own goes unnoticed (configure version_command on real boards).
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .trial import InstallError, TrialInstaller

if TYPE_CHECKING:
    from .bundle import Manifest

log = logging.getLogger(__name__)

# installer -> (payload suffix, install, confirm, rollback)
DEFAULTS: dict[str, tuple[str, str, str | None, str | None]] = {
    "rauc": (".raucb", "rauc install {file}", "rauc status mark-good",
             "rauc status mark-bad"),
    "swupdate": (".swu", "swupdate -i {file}", None, None),
}
COMMAND_TIMEOUT_S = 3600.0  # writing a rootfs to slow flash takes a while


class SystemUpdaterInstaller(TrialInstaller):
    reboot_required = True

    def __init__(self, root: Path, kind: str, *, install_command: str | None = None,
                 confirm_command: str | None = None, rollback_command: str | None = None,
                 reboot_command: str | None = None, version_command: str | None = None,
                 max_starts: int = 3,
                 timeout_s: float = 300, command_timeout_s: float = COMMAND_TIMEOUT_S,
                 **kwargs: Any) -> None:
        if kind not in DEFAULTS:
            raise InstallError(f"unknown system updater {kind!r} (rauc or swupdate)")
        super().__init__(root / "trial.json", max_starts=max_starts, timeout_s=timeout_s,
                         **kwargs)
        suffix, install, confirm, rollback = DEFAULTS[kind]
        self.root = root
        self.kind = kind
        self.suffix = suffix
        self.install_command = install_command or install
        self.confirm_command = confirm_command or confirm
        self.rollback_command = rollback_command or rollback
        self.reboot_command = reboot_command or "reboot"
        self.version_command = version_command
        self._booted_version: str | None = None
        self.command_timeout_s = command_timeout_s
        self._installed: str | None = None  # version handed to the updater, not activated

    def install(self, bundle: Path, manifest: Manifest) -> None:
        """Unpack the payload and run the updater on it (blocking: run it in a thread)."""
        record = self.trial.load()
        if record is not None and record["state"] == "trial":
            raise InstallError(f"firmware {record['version']} is still on trial; "
                               "it must be confirmed or rolled back first")
        staging = self.root / "staging"
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            _extract(bundle, staging, manifest)
            image = self._image(staging)
            self._run(self.install_command, "install_command", file=str(image))
        except OSError as err:
            raise InstallError(f"cannot unpack into {staging}: {err.strerror or err}") from None
        except InstallError:
            raise
        except Exception as err:  # BundleError while extracting
            raise InstallError(f"cannot unpack into {staging}: {err}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._installed = manifest.firmware_version
        log.info("firmware %s handed to %s", manifest.firmware_version, self.kind)

    def activate(self) -> None:
        if self._installed is None:
            raise InstallError(f"nothing was installed through {self.kind}")
        self.start_trial(self._installed, self.running_version())
        self._installed = None

    def _installed_version(self) -> str | None:
        """The started image's version from version_command (asked once: it cannot change
        before the next boot); None without one, or when it fails."""
        if self.version_command is None:
            return None
        if self._booted_version is None:
            try:
                out = self._run(self.version_command, "version_command", timeout_s=30)
            except InstallError as err:
                log.error("cannot tell the running version: %s", err)
                return None
            self._booted_version = out.strip().splitlines()[0].strip() if out.strip() else ""
        return self._booted_version or None

    def _is_active(self, record: dict[str, Any]) -> bool:
        booted = self._installed_version()
        return booted is None or booted == record["version"]

    def _on_confirm(self, record: dict[str, Any]) -> None:
        if self.confirm_command:
            self._run(self.confirm_command, "confirm_command")

    def _switch_back(self, record: dict[str, Any]) -> None:
        if self.rollback_command:
            self._run(self.rollback_command, "rollback_command")
        self._run(self.reboot_command, "reboot_command")

    def _discard_inactive(self) -> None:
        self._installed = None

    def _image(self, staging: Path) -> Path:
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        matching = [p for p in files if p.name.endswith(self.suffix)]
        if len(matching) == 1:
            return matching[0]
        if not matching and len(files) == 1:
            return files[0]
        raise InstallError(f"the bundle must hold exactly one {self.suffix} payload for "
                           f"{self.kind}; it holds {', '.join(p.name for p in files) or 'none'}")

    def _run(self, command: str, key: str, timeout_s: float | None = None,
             **values: str) -> str:
        argv = command_line(command, **values)
        timeout_s = timeout_s or self.command_timeout_s
        try:
            done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                                  timeout=timeout_s, check=False)
        except FileNotFoundError:
            raise InstallError(f"{argv[0]}: command not found ([firmware] {key})") from None
        except PermissionError:
            raise InstallError(f"{argv[0]}: permission denied ([firmware] {key})") from None
        except subprocess.TimeoutExpired:
            raise InstallError(f"{argv[0]} did not finish within {timeout_s:g} s") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            detail = f": {lines[-1].strip()}" if lines else ""
            raise InstallError(f"{shlex.join(argv[:3])} failed with exit code "
                               f"{done.returncode}{detail}")
        log.info("%s: done", shlex.join(argv))
        return done.stdout



def command_line(command: str, **values: str) -> Sequence[str]:
    """Split like a shell would (no shell runs) and fill in {file}."""
    parts = shlex.split(command)
    for name, value in values.items():
        parts = [part.replace("{" + name + "}", value) for part in parts]
    return parts


def _extract(bundle: Path, dest: Path, manifest: Manifest) -> None:
    from .bundle import extract_payloads

    # `expected`: the file must still be the one whose manifest was verified.
    extract_payloads(bundle, dest, expected=manifest)

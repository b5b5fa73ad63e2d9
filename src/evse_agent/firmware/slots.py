"""Directory A/B slots under data_dir/firmware: install to the inactive slot, switch by
replacing a symlink, roll back by switching again.

    firmware/a/manifest.json     the slot's bundle manifest (firmware_version, ...);
    firmware/a/payload/...       written last, so a slot with a manifest is complete
    firmware/a/python/...        the agent's code when the bundle ships it: payload
                                 `python.tar` unpacked; every start runs it (launch_env)
    firmware/b/...
    firmware/current -> a        replaced atomically: a new symlink, then os.replace()
    firmware/trial.json          trial record (trial.py)

Before the first install there is no slot and the running version is the package's own;
the first install turns that into slot `a` (a manifest with the package version and no
payload) so the first update can roll back to it like any other.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from .trial import InstallError, TrialInstaller, fsync_dir

if TYPE_CHECKING:
    from .bundle import Manifest

log = logging.getLogger(__name__)

SLOTS = ("a", "b")
PYTHON_PAYLOAD = "python.tar"  # a tar of import trees: evse_agent/ (required), evse_hal/ ...
PYTHON_DIR = "python"          # where it is unpacked in the slot; first on the module path
# The slot directory this process chain put first on PYTHONPATH ("" for none): lets the
# next start take it out again (rollback) and stops a start from re-executing twice.
SLOT_PYTHON_ENV = "EVSE_AGENT_SLOT_PYTHON"


class SlotInstaller(TrialInstaller):
    reboot_required = False  # the agent re-execs itself to run the new slot

    def __init__(self, root: Path, *, max_starts: int = 3, timeout_s: float = 300,
                 **kwargs: Any) -> None:
        super().__init__(root / "trial.json", max_starts=max_starts, timeout_s=timeout_s,
                         **kwargs)
        self.root = root

    # -- where things are ----------------------------------------------------------------
    @property
    def current(self) -> Path:
        return self.root / "current"

    def active_slot(self) -> str | None:
        try:
            target = os.readlink(self.current)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise InstallError(f"{self.current}: not a symlink to a slot: "
                               f"{err.strerror}") from None
        if target not in SLOTS:
            raise InstallError(f"{self.current} points to {target!r}, not to a or b")
        return target

    def active_payload(self) -> Path | None:
        """The active slot's payload directory (what a restart runs), None before any."""
        slot = self.active_slot()
        return None if slot is None else self.root / slot / "payload"

    def slot_version(self, slot: str) -> str | None:
        try:
            manifest = json.loads((self.root / slot / "manifest.json").read_text("utf-8"))
            version = manifest["firmware_version"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return version if isinstance(version, str) else None

    # -- Installer API -------------------------------------------------------------------
    def _installed_version(self) -> str | None:
        slot = self.active_slot()
        if slot is None:
            return __version__
        return self.slot_version(slot) or __version__

    def install(self, bundle: Path, manifest: Manifest) -> None:
        """Unpack the verified bundle's payloads into the inactive slot (blocking: the
        caller runs it in a thread)."""
        record = self.trial.load()
        if record is not None and record["state"] == "trial":
            raise InstallError(f"firmware {record['version']} is still on trial; "
                               "it must be confirmed or rolled back first")
        active = self._ensure_layout()
        slot = _other(active)
        slot_dir = self.root / slot
        try:
            if slot_dir.exists():
                shutil.rmtree(slot_dir)
            (slot_dir / "payload").mkdir(parents=True)
            _extract(bundle, slot_dir / "payload", manifest)
            if (slot_dir / "payload" / PYTHON_PAYLOAD).is_file():
                _unpack_python(slot_dir / "payload" / PYTHON_PAYLOAD, slot_dir / PYTHON_DIR)
            _write_atomic(slot_dir / "manifest.json", _manifest_json(manifest))
        except OSError as err:
            shutil.rmtree(slot_dir, ignore_errors=True)
            raise InstallError(f"cannot install into {slot_dir}: "
                               f"{err.strerror or err}") from None
        except Exception as err:  # BundleError from extracting, or another failure
            shutil.rmtree(slot_dir, ignore_errors=True)
            raise InstallError(f"cannot install into {slot_dir}: {err}") from None
        log.info("firmware %s installed into slot %s", manifest.firmware_version, slot)

    def activate(self) -> None:
        active = self.active_slot()
        if active is None:
            raise InstallError(f"nothing installed under {self.root}")
        slot = _other(active)
        version = self.slot_version(slot)
        if version is None:
            raise InstallError(f"slot {self.root / slot} holds no complete installation")
        self.start_trial(version, self.running_version(), slot=slot, previous_slot=active)
        self.switch(slot)
        log.info("slot %s (firmware %s) activated; on trial", slot, version)

    # -- switching -----------------------------------------------------------------------
    def switch(self, slot: str) -> None:
        """Point `current` at `slot` in one rename: a reader sees the old or the new link."""
        tmp = self.root / "current.new"
        try:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            os.symlink(slot, tmp)
            os.replace(tmp, self.current)
            fsync_dir(self.root)
        except OSError as err:
            raise InstallError(f"cannot switch {self.current} to {slot}: "
                               f"{err.strerror}") from None

    def _is_active(self, record: dict[str, Any]) -> bool:
        return self.active_slot() == record.get("slot")

    def _switch_back(self, record: dict[str, Any]) -> None:
        previous = record.get("previous_slot")
        if previous not in SLOTS or self.slot_version(previous) is None:
            raise InstallError(f"cannot roll back: slot {previous!r} under {self.root} "
                               "holds no complete installation")
        self.switch(previous)

    def _finish_rollback(self, record: dict[str, Any]) -> None:
        if self.active_slot() == record.get("slot"):
            self._switch_back(record)

    def _discard_inactive(self) -> None:
        active = self.active_slot()
        if active is not None:
            shutil.rmtree(self.root / _other(active), ignore_errors=True)

    def _ensure_layout(self) -> str:
        active = self.active_slot()
        if active is not None:
            return active
        factory = self.root / "a"
        try:
            if factory.exists():
                shutil.rmtree(factory)
            (factory / "payload").mkdir(parents=True)
            _write_atomic(factory / "manifest.json",
                          json.dumps({"firmware_version": __version__, "factory": True}))
        except OSError as err:
            raise InstallError(f"cannot create {factory}: {err.strerror}") from None
        self.switch("a")
        return "a"



def _other(slot: str) -> str:
    return "b" if slot == "a" else "a"


def _manifest_json(manifest: Manifest) -> str:
    data = asdict(manifest) if is_dataclass(manifest) else {
        "firmware_version": manifest.firmware_version}
    return json.dumps(data, default=str, indent=1)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _extract(bundle: Path, dest: Path, manifest: Manifest) -> None:
    from .bundle import extract_payloads

    # `expected`: the file must still be the one whose manifest was verified.
    extract_payloads(bundle, dest, expected=manifest)


def _unpack_python(tar: Path, dest: Path) -> None:
    import tarfile

    # The "data" filter refuses absolute names, "..", links out of dest and device files.
    with tarfile.open(tar, "r:*") as archive:
        archive.extractall(dest, filter="data")
    if not all((dest / "evse_agent" / name).is_file() for name in ("__init__.py",
                                                                   "__main__.py")):
        raise InstallError(f"payload {PYTHON_PAYLOAD} holds no evse_agent package "
                           "(evse_agent/__init__.py and __main__.py at its top)")
    import compileall

    # Compiled now: a syntax error fails the install, not a start, and starts stay fast.
    if not compileall.compile_dir(dest, quiet=2):
        raise InstallError(f"payload {PYTHON_PAYLOAD}: a module does not compile "
                           f"(python {sys.version_info.major}.{sys.version_info.minor})")


# -- running the active slot's code ----------------------------------------------------
def slot_python(root: Path) -> Path | None:
    """The active slot's python/ directory, resolved now (the switch at this moment is what
    counts, and a later switch does not change the code this process loads); None when
    there is no slot or the active one ships no code (then the installed package runs)."""
    try:
        slot = os.readlink(root / "current")
    except OSError:
        return None
    path = root / slot / PYTHON_DIR
    if slot not in SLOTS or not path.is_dir():
        return None
    return path.resolve()


def exec_env(root: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for the next start of the agent (a restart re-execs with it): the
    active slot's python/ first on PYTHONPATH, the slot an earlier start put there taken
    out. Unchanged when no slot code was ever involved."""
    env = dict(environ)
    old = env.get(SLOT_PYTHON_ENV, "")
    new = slot_python(root)
    if new is None and SLOT_PYTHON_ENV not in env:
        return env
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != old]
    if new is not None:
        parts.insert(0, str(new))
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
    else:
        env.pop("PYTHONPATH", None)
    env[SLOT_PYTHON_ENV] = "" if new is None else str(new)
    return env


def launch_env(root: Path, environ: Mapping[str, str]) -> dict[str, str] | None:
    """At start, before anything else: the environment to re-exec with when the code
    running is not the active slot's (a fresh start from the installed package, or a
    slot's code after a rollback to a slot without code); None to run on here."""
    want = slot_python(root)
    here = Path(__file__).resolve().parents[2]  # the directory holding evse_agent/
    marker = environ.get(SLOT_PYTHON_ENV)
    if want is None:
        return exec_env(root, environ) if marker and here == Path(marker) else None
    if here == want:
        return None
    if marker == str(want):  # already re-executed for this slot: never loop
        log.warning("%s did not provide evse_agent; running %s", want, here)
        return None
    return exec_env(root, environ)

"""The directory A/B slot installer: install into the inactive slot, atomic switch, trial
counted over restarts (a new SlotInstaller per start, as after a real restart), rollback
on too many starts or a passed deadline (issue 8 item 4; L01 InstallVerificationFailed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from installer_support import make_bundle

from evse_agent import __version__
from evse_agent.config import parse
from evse_agent.firmware.installer import InstallError, open_installer
from evse_agent.firmware.slots import SlotInstaller


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def start(root: Path, clock: Clock, max_starts: int = 3, timeout_s: float = 300
          ) -> SlotInstaller:
    """A fresh installer object, as the agent makes at each start."""
    return SlotInstaller(root, max_starts=max_starts, timeout_s=timeout_s, clock=clock)


def installed(tmp_path: Path, clock: Clock, version: str = "2.0.0", **kw: float) -> Path:
    root = tmp_path / "firmware"
    bundle, manifest = make_bundle(tmp_path, version, {"app.bin": b"new app " + version.encode(),
                                                       "README": b"notes"})
    inst = start(root, clock, **kw)  # type: ignore[arg-type]
    inst.install(bundle, manifest)
    inst.activate()
    return root


def test_fresh_station_reports_package_version(tmp_path: Path, clock: Clock) -> None:
    inst = start(tmp_path / "firmware", clock)
    assert inst.running_version() == __version__
    state = inst.boot()
    assert (state.on_trial, state.version, state.rolled_back_from, state.just_updated) == (
        False, __version__, None, False)
    with pytest.raises(InstallError, match="nothing installed"):
        inst.activate()


def test_install_activate_switches_symlink(tmp_path: Path, clock: Clock) -> None:
    root = tmp_path / "firmware"
    bundle, manifest = make_bundle(tmp_path, "2.0.0", {"app.bin": b"A" * 70_000})
    inst = start(root, clock)
    inst.install(bundle, manifest)
    # Installed, not active yet: the factory slot runs.
    assert os.readlink(root / "current") == "a"
    assert inst.running_version() == __version__
    assert (root / "b" / "payload" / "app.bin").read_bytes() == b"A" * 70_000
    assert json.loads((root / "b" / "manifest.json").read_text())["firmware_version"] == "2.0.0"
    inst.activate()
    assert os.readlink(root / "current") == "b"
    assert not (root / "current.new").exists()
    assert inst.running_version() == "2.0.0"
    assert inst.active_payload() == root / "b" / "payload"
    # after the restart
    assert start(root, clock).running_version() == "2.0.0"


READER = """
import json, os, sys
current, stop = sys.argv[1], sys.argv[2]
seen, errors, reads = set(), [], 0
open(stop + ".ready", "w").close()
while not os.path.exists(stop):
    try:
        seen.add(os.readlink(current))
        os.stat(os.path.join(current, "manifest.json"))
        reads += 1
    except OSError as err:
        errors.append(repr(err))
print(json.dumps({"seen": sorted(seen), "errors": errors[:5], "reads": reads}))
"""


def test_symlink_switch_is_atomic(tmp_path: Path, clock: Clock) -> None:
    """Another process resolving `current` while it is switched 300 times always finds
    slot a or b, never a missing link."""
    root = installed(tmp_path, clock)
    inst = start(root, clock)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(root / "current"), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not Path(f"{stop}.ready").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(300):
        inst.switch("ab"[i % 2])
    stop.touch()
    out, _ = reader.communicate(timeout=10)
    result = json.loads(out)
    assert result["errors"] == []
    assert result["seen"] == ["a", "b"] and result["reads"] > 300


def test_trial_starts_counted_then_confirmed(tmp_path: Path, clock: Clock) -> None:
    root = installed(tmp_path, clock)
    first = start(root, clock).boot()
    assert (first.on_trial, first.version, first.just_updated) == (True, "2.0.0", True)
    second_start = start(root, clock)
    second = second_start.boot()
    assert (second.on_trial, second.just_updated) == (True, False)
    assert second_start.trial_remaining_s() == pytest.approx(300)
    second_start.confirm()  # BootNotification Accepted
    for _ in range(5):  # well past trial_max_starts: confirmed stays
        state = start(root, clock).boot()
        assert (state.on_trial, state.version, state.rolled_back_from) == (False, "2.0.0", None)
    assert os.readlink(root / "current") == "b"
    assert start(root, clock).trial_remaining_s() is None


def test_too_many_starts_roll_back(tmp_path: Path, clock: Clock) -> None:
    """More than trial_max_starts starts without confirm(): the previous slot comes back."""
    root = installed(tmp_path, clock, max_starts=2)
    for _ in range(2):
        assert start(root, clock, max_starts=2).boot().on_trial
    state = start(root, clock, max_starts=2).boot()
    assert (state.on_trial, state.version, state.rolled_back_from) == (False, __version__,
                                                                     "2.0.0")
    assert os.readlink(root / "current") == "a"
    assert "2 starts" in json.loads((root / "trial.json").read_text())["reason"]
    # Reported at every start until confirmed (the CSMS must hear of it).
    again = start(root, clock, max_starts=2)
    assert again.boot().rolled_back_from == "2.0.0"
    again.confirm()
    state = start(root, clock, max_starts=2).boot()
    assert (state.rolled_back_from, state.version) == (None, __version__)


def test_deadline_passed_rolls_back(tmp_path: Path, clock: Clock) -> None:
    """The wall-clock deadline runs from the first start of the new version and holds
    across restarts; a slow restart (a board reboot) does not eat into it."""
    root = installed(tmp_path, clock, timeout_s=60)
    clock.now += 100  # the restart took longer than the whole trial time
    first = start(root, clock, timeout_s=60)
    assert first.boot().on_trial
    assert first.trial_remaining_s() == pytest.approx(60)
    clock.now += 59
    inst = start(root, clock, timeout_s=60)
    assert inst.boot().on_trial
    assert inst.trial_remaining_s() == pytest.approx(1)
    clock.now += 2
    state = start(root, clock, timeout_s=60).boot()
    assert (state.on_trial, state.rolled_back_from, state.version) == (False, "2.0.0",
                                                                     __version__)
    assert os.readlink(root / "current") == "a"
    assert "not confirmed within 60 s" in json.loads((root / "trial.json").read_text())["reason"]


def test_explicit_rollback_while_running(tmp_path: Path, clock: Clock) -> None:
    root = installed(tmp_path, clock)
    inst = start(root, clock)
    assert inst.boot().on_trial
    inst.rollback("no BootNotification Accepted within the trial time")
    assert os.readlink(root / "current") == "a"
    assert inst.running_version() == __version__
    assert start(root, clock).boot().rolled_back_from == "2.0.0"


def test_second_update_reuses_the_other_slot(tmp_path: Path, clock: Clock) -> None:
    root = installed(tmp_path, clock)
    inst = start(root, clock)
    inst.boot()
    with pytest.raises(InstallError, match="still on trial"):
        inst.install(*make_bundle(tmp_path, "3.0.0", {"app.bin": b"v3"}))
    inst.confirm()
    inst.install(*make_bundle(tmp_path / "v3", "3.0.0", {"app.bin": b"v3"}))
    assert not (root / "a" / "payload" / "README").exists()  # factory slot cleared first
    inst.activate()
    assert os.readlink(root / "current") == "a"
    state = start(root, clock).boot()
    assert state.version == "3.0.0"
    start(root, clock).rollback("test")
    assert os.readlink(root / "current") == "b"
    assert start(root, clock).running_version() == "2.0.0"


def test_tampered_bundle_leaves_no_installable_slot(tmp_path: Path, clock: Clock) -> None:
    root = tmp_path / "firmware"
    bundle, _ = make_bundle(tmp_path, "2.0.0", {"app.bin": b"good"})
    _, other = make_bundle(tmp_path / "x", "2.0.0", {"app.bin": b"evil"})
    inst = start(root, clock)
    with pytest.raises(InstallError, match="changed after it was verified"):
        inst.install(bundle, other)  # the file is not the one that was verified
    assert not (root / "b").exists()
    with pytest.raises(InstallError, match="no complete installation"):
        inst.activate()
    assert os.readlink(root / "current") == "a"


def test_rollback_without_trial_discards_installed(tmp_path: Path, clock: Clock) -> None:
    root = tmp_path / "firmware"
    inst = start(root, clock)
    inst.install(*make_bundle(tmp_path, "2.0.0", {"app.bin": b"x"}))
    inst.rollback("installation cancelled")
    with pytest.raises(InstallError):
        inst.activate()
    assert inst.running_version() == __version__


@pytest.mark.parametrize("content", ["{not json", '{"state": "trial", "version": 2}', "[]",
                                     '{"state": "trial", "version": "2.0.0"}'])
def test_corrupt_state_file(tmp_path: Path, clock: Clock, content: str) -> None:
    """An unreadable trial record does not stop the station: the active slot runs on."""
    root = installed(tmp_path, clock)
    (root / "trial.json").write_text(content)
    state = start(root, clock).boot()
    assert (state.on_trial, state.version, state.rolled_back_from) == (False, "2.0.0", None)
    assert (root / "trial.json.corrupt").read_text() == content
    assert os.readlink(root / "current") == "b"


def test_interrupted_activation(tmp_path: Path, clock: Clock) -> None:
    """Power lost between writing the trial record and the switch: the old slot is still
    current, so there is no trial, and the update is reported as not taken."""
    root = installed(tmp_path, clock)
    os.symlink("a", root / "tmp-link")
    os.replace(root / "tmp-link", root / "current")
    state = start(root, clock).boot()
    assert (state.on_trial, state.version, state.rolled_back_from) == (False, __version__,
                                                                     "2.0.0")
    assert os.readlink(root / "current") == "a"
    start(root, clock).confirm()
    assert start(root, clock).boot().rolled_back_from is None


def test_interrupted_rollback_is_finished(tmp_path: Path, clock: Clock) -> None:
    """Power lost after recording the rollback but before the switch: next start ends it."""
    root = installed(tmp_path, clock)
    record = json.loads((root / "trial.json").read_text())
    (root / "trial.json").write_text(json.dumps({**record, "state": "rolled_back",
                                                 "reason": "test"}))
    state = start(root, clock).boot()
    assert (state.rolled_back_from, state.version) == ("2.0.0", __version__)
    assert os.readlink(root / "current") == "a"


def test_open_installer_from_config(tmp_path: Path, clock: Clock) -> None:
    cfg = parse({"station": {"id": "CS1", "data_dir": str(tmp_path / "data")},
                 "ocpp": {"csms_url": "ws://127.0.0.1:9/ocpp"},
                 "firmware": {"trial_max_starts": 1, "trial_timeout_s": 30}},
                tmp_path / "station.toml")
    inst = open_installer(cfg)
    assert isinstance(inst, SlotInstaller)
    assert inst.root == tmp_path / "data" / "firmware"
    assert (inst.max_starts, inst.timeout_s, inst.reboot_required) == (1, 30.0, False)

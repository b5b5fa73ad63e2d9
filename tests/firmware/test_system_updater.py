"""The system-updater installer (RAUC / SWUpdate) against fake `rauc` and `swupdate`
executables on PATH: real shell scripts that record their arguments and what the payload
file held when they ran. The default command lines are the ones exercised."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from installer_support import make_bundle

from evse_agent import __version__
from evse_agent.config import parse
from evse_agent.firmware.installer import InstallError, open_installer
from evse_agent.firmware.system_updater import SystemUpdaterInstaller

IMAGE = b"rootfs image " * 5000


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """rauc, swupdate and reboot that append one line per call to calls.log; an exit code
    and an error line can be set through files next to them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("rauc", "swupdate", "reboot"):
        script = bin_dir / name
        script.write_text(f"""#!/bin/sh
echo "{name} $*" >> "{bin_dir}/calls.log"
for arg in "$@"; do
  if [ -f "$arg" ]; then sha256sum "$arg" | cut -d' ' -f1 >> "{bin_dir}/calls.log"; fi
done
if [ -f "{bin_dir}/{name}.fail" ]; then
  echo "some progress output"
  cat "{bin_dir}/{name}.fail" >&2
  exit 1
fi
exit 0
""")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def calls(bin_dir: Path) -> list[str]:
    log = bin_dir / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def rauc(tmp_path: Path, max_starts: int = 3) -> SystemUpdaterInstaller:
    return SystemUpdaterInstaller(tmp_path / "firmware", "rauc", max_starts=max_starts)


def test_rauc_install_confirm(tmp_path: Path, fake_bin: Path) -> None:
    """`rauc install FILE` gets the payload itself; confirm() marks the slot good."""
    bundle, manifest = make_bundle(tmp_path, "2.0.0", {"update.raucb": IMAGE,
                                                       "notes.txt": b"x"})
    inst = rauc(tmp_path)
    assert inst.running_version() == __version__
    inst.install(bundle, manifest)
    install_call, digest = calls(fake_bin)
    staged = tmp_path / "firmware" / "staging" / "update.raucb"
    assert install_call == f"rauc install {staged}"
    assert digest == hashlib.sha256(IMAGE).hexdigest()
    assert not staged.exists()  # staging removed after the updater ran
    inst.activate()
    assert inst.reboot_required
    after_reboot = rauc(tmp_path)
    state = after_reboot.boot()
    assert (state.on_trial, state.version, state.just_updated) == (True, "2.0.0", True)
    after_reboot.confirm()
    assert calls(fake_bin)[-1] == "rauc status mark-good"
    assert rauc(tmp_path).running_version() == "2.0.0"
    assert not rauc(tmp_path).boot().on_trial


def test_rauc_trial_failure_marks_bad_and_reboots(tmp_path: Path, fake_bin: Path) -> None:
    inst = rauc(tmp_path, max_starts=1)
    inst.install(*make_bundle(tmp_path, "2.0.0", {"update.raucb": IMAGE}))
    inst.activate()
    assert rauc(tmp_path, max_starts=1).boot().on_trial
    state = rauc(tmp_path, max_starts=1).boot()
    assert (state.on_trial, state.rolled_back_from, state.version) == (False, "2.0.0",
                                                                     __version__)
    assert calls(fake_bin)[-2:] == ["rauc status mark-bad", "reboot "]
    # After the reboot into the old slot: reported, nothing run again.
    assert rauc(tmp_path, max_starts=1).boot().rolled_back_from == "2.0.0"
    assert calls(fake_bin)[-1] == "reboot "


def test_rauc_refusal_is_one_line(tmp_path: Path, fake_bin: Path) -> None:
    (fake_bin / "rauc.fail").write_text("rauc: error: Failed verifying signature\n")
    inst = rauc(tmp_path)
    with pytest.raises(InstallError) as err:
        inst.install(*make_bundle(tmp_path, "2.0.0", {"update.raucb": IMAGE}))
    assert str(err.value) == ("rauc install " + str(tmp_path / "firmware" / "staging"
                                                    / "update.raucb")
                              + " failed with exit code 1: rauc: error: Failed verifying "
                                "signature")
    with pytest.raises(InstallError, match="nothing was installed"):
        inst.activate()


def test_command_not_found(tmp_path: Path, fake_bin: Path) -> None:
    inst = SystemUpdaterInstaller(tmp_path / "firmware", "rauc",
                                  install_command="no-such-updater-xyz {file}")
    with pytest.raises(InstallError, match=r"no-such-updater-xyz: command not found "
                                           r"\(\[firmware\] install_command\)"):
        inst.install(*make_bundle(tmp_path, "2.0.0", {"update.raucb": IMAGE}))


def test_payload_choice(tmp_path: Path, fake_bin: Path) -> None:
    inst = rauc(tmp_path)
    with pytest.raises(InstallError, match=r"exactly one \.raucb payload"):
        inst.install(*make_bundle(tmp_path, "2.0.0", {"a.img": b"1", "b.img": b"2"}))
    inst.install(*make_bundle(tmp_path / "x", "2.0.0", {"only.img": IMAGE}))
    assert calls(fake_bin)[0].endswith("/only.img")


def test_swupdate_from_config(tmp_path: Path, fake_bin: Path) -> None:
    """installer = "swupdate": `swupdate -i FILE`; no confirm command by default; the
    station's reboot_command reboots on rollback."""
    cfg = parse({"station": {"id": "CS1", "data_dir": str(tmp_path / "data"),
                             "reboot_command": "reboot --now"},
                 "ocpp": {"csms_url": "ws://127.0.0.1:9/ocpp"},
                 "firmware": {"installer": "swupdate", "trial_max_starts": 1}},
                tmp_path / "station.toml")
    inst = open_installer(cfg)
    inst.install(*make_bundle(tmp_path, "2.0.0", {"image.swu": IMAGE}))
    assert calls(fake_bin)[0] == (f"swupdate -i {tmp_path}/data/firmware/staging/image.swu")
    inst.activate()
    open_installer(cfg).boot()
    open_installer(cfg).confirm()
    assert len(calls(fake_bin)) == 2  # install + digest line; confirm ran nothing
    assert open_installer(cfg).running_version() == "2.0.0"
    inst = open_installer(cfg)
    inst.install(*make_bundle(tmp_path / "x", "3.0.0", {"image.swu": IMAGE}))
    inst.activate()
    open_installer(cfg).boot()
    state = open_installer(cfg).boot()
    assert (state.rolled_back_from, state.version) == ("3.0.0", "2.0.0")
    assert calls(fake_bin)[-1] == "reboot --now"


def test_configured_rauc_commands(tmp_path: Path, fake_bin: Path) -> None:
    cfg = parse({"station": {"id": "CS1", "data_dir": str(tmp_path / "data")},
                 "ocpp": {"csms_url": "ws://127.0.0.1:9/ocpp"},
                 "firmware": {"installer": "rauc",
                              "install_command": "rauc install --ignore-compatible {file}",
                              "confirm_command": "rauc status mark-good booted"}},
                tmp_path / "station.toml")
    inst = open_installer(cfg)
    inst.install(*make_bundle(tmp_path, "2.0.0", {"update.raucb": IMAGE}))
    assert calls(fake_bin)[0].startswith("rauc install --ignore-compatible /")
    inst.activate()
    open_installer(cfg).boot()
    open_installer(cfg).confirm()
    assert calls(fake_bin)[-1] == "rauc status mark-good booted"


def test_version_command_sees_bootloader_fallback(tmp_path: Path, fake_bin: Path) -> None:
    """With version_command the agent notices that the bootloader started the previous
    image by itself: the update is reported failed, and nothing is marked bad (that would
    hit the good, booted slot)."""
    booted = fake_bin / "booted-version"
    booted.write_text("1.0.0\n")

    def start() -> SystemUpdaterInstaller:
        return SystemUpdaterInstaller(tmp_path / "firmware", "rauc",
                                      version_command=f"cat {booted}")

    assert start().running_version() == "1.0.0"
    inst = start()
    inst.install(*make_bundle(tmp_path, "2.0.0", {"update.raucb": IMAGE}))
    inst.activate()
    booted.write_text("2.0.0\n")  # the new image came up
    state = start().boot()
    assert (state.on_trial, state.version) == (True, "2.0.0")
    booted.write_text("1.0.0\n")  # it hung; the bootloader's boot counter went back
    state = start().boot()
    assert (state.on_trial, state.version, state.rolled_back_from) == (False, "1.0.0",
                                                                     "2.0.0")
    assert not any("mark-bad" in c or c.startswith("reboot") for c in calls(fake_bin))

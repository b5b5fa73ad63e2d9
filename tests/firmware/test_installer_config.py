"""The [firmware] section of the station TOML: defaults, and one line naming the key for
every mistake (exit 2 through the CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evse_agent.config import ConfigError, FirmwareConfig, parse

BASE: dict[str, Any] = {"station": {"id": "CS1", "model": "wallbox-7"},
                        "ocpp": {"csms_url": "ws://127.0.0.1:9/ocpp"}}


def firmware(section: dict[str, Any]) -> FirmwareConfig:
    return parse({**BASE, "firmware": section}, Path("/etc/evse/station.toml")).firmware


def test_defaults() -> None:
    fw = parse(BASE, Path("station.toml")).firmware
    assert fw == FirmwareConfig(production=False, installer="slots", hardware_id="wallbox-7",
                                trial_timeout_s=300.0, trial_max_starts=3)


def test_rauc_settings() -> None:
    fw = firmware({"production": True, "installer": "rauc", "hardware_id": "board-b",
                   "trial_timeout_s": 90, "trial_max_starts": 2,
                   "install_command": "rauc install {file}",
                   "version_command": "cat /etc/image-version"})
    assert (fw.production, fw.installer, fw.hardware_id, fw.trial_timeout_s,
            fw.trial_max_starts, fw.version_command) == (
        True, "rauc", "board-b", 90.0, 2, "cat /etc/image-version")


@pytest.mark.parametrize(("section", "message"), [
    ({"production": "yes"}, "firmware.production: must be a boolean (true or false)"),
    ({"production": 1}, "firmware.production: must be a boolean (true or false)"),
    ({"trial_max_starts": True}, "firmware.trial_max_starts: must be an integer"),
    ({"trial_max_starts": 0}, "firmware.trial_max_starts: must be between 1 and 100"),
    ({"trial_timeout_s": 0}, "firmware.trial_timeout_s: must be more than 0"),
    ({"trial_timeout_s": "5m"}, "firmware.trial_timeout_s: must be a number"),
    ({"installer": "mender"}, 'firmware.installer: must be "slots", "rauc" or "swupdate"'),
    ({"instaler": "rauc"}, "firmware.instaler: unknown key"),
    ({"install_command": "x {file}"}, 'firmware.install_command: only used with installer'),
    ({"installer": "rauc", "install_command": "rauc install"},
     "firmware.install_command: must contain {file}"),
    ({"installer": "swupdate", "rollback_command": "fw_setenv 'x"},
     "firmware.rollback_command: not a command line"),
    ({"hardware_id": " "}, "firmware.hardware_id: must not be empty"),
])
def test_mistakes_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        firmware(section)
    assert str(err.value).startswith(f"/etc/evse/station.toml: {message}")
    assert "\n" not in str(err.value)


def test_cli_exit_2_one_line(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text('[station]\nid = "CS1"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9/ocpp"\n'
                    '[firmware]\ntrial_max_starts = "three"\n')
    done = subprocess.run([sys.executable, "-m", "evse_agent", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"evse-agent: {path}: firmware.trial_max_starts: must be an integer"]

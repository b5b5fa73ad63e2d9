"""A bundle that ships the agent's code runs it (issue 8 item 4): payload `python.tar` is
unpacked into the slot's python/, every start (cli launcher) and every restart put the
active slot's python/ first on the module path, a rollback brings the previous slot's code
back the same way, and a slot without code changes nothing.

Real subprocesses: `python -m evse_agent run --config ...` starts from the installed
package; the slot carries a full copy of evse_agent with another __version__ and a probe
as __main__ that reports what runs (and whether the slot's own launcher would re-exec
again), so no agent has to connect anywhere."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

import evse_agent
from evse_agent.config import load
from evse_agent.firmware import bundle
from evse_agent.firmware.installer import InstallError, open_installer
from evse_agent.firmware.signatures import (
    DEV_SIGNING_CERT,
    DEV_SIGNING_KEY,
    dev_path,
    load_private_key,
)
from evse_agent.firmware.slots import (
    SLOT_PYTHON_ENV,
    SlotInstaller,
    exec_env,
    launch_env,
    slot_python,
)

INSTALLED = Path(evse_agent.__file__).resolve().parent

PROBE = '''\
import json, os, sys
from pathlib import Path

import evse_agent
from evse_agent.cli import _launch_env
from evse_agent.config import load

cfg = load(Path(sys.argv[sys.argv.index("--config") + 1]))
print(json.dumps({"file": evse_agent.__file__, "version": evse_agent.__version__,
                  "marker": os.environ.get("EVSE_AGENT_SLOT_PYTHON"),
                  "argv": sys.argv[1:], "relaunch": _launch_env(cfg) is not None}))
'''

WHO = "import evse_agent, json; print(json.dumps([evse_agent.__file__, evse_agent.__version__]))"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", SLOT_PYTHON_ENV)}
    return env


def station(tmp_path: Path) -> Path:
    path = tmp_path / "station.toml"
    path.write_text('[station]\nid = "CS1"\nmodel = "mock"\ndata_dir = "data"\n'
                    '[ocpp]\ncsms_url = "ws://127.0.0.1:9/ocpp"\n', encoding="utf-8")
    return path


def python_tar(where: Path, version: str, *, package: bool = True,
               extra: dict[str, bytes] | None = None) -> Path:
    """A copy of the installed evse_agent with another __version__ and the probe as
    __main__, as python.tar (the payload convention of firmware-bundle/FORMAT.md)."""
    tree = where / f"code-{version}"
    if package:
        shutil.copytree(INSTALLED, tree / "evse_agent",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (tree / "evse_agent" / "__init__.py").write_text(f'__version__ = "{version}"\n')
        (tree / "evse_agent" / "__main__.py").write_text(PROBE)
    else:
        tree.mkdir()
        (tree / "other.py").write_text("X = 1\n")
    out = where / f"python-{version}" / "python.tar"
    out.parent.mkdir()
    with tarfile.open(out, "w") as tar:
        for child in sorted(tree.iterdir()):
            tar.add(child, arcname=child.name)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def signed_bundle(where: Path, version: str, payloads: list[Path]) -> tuple[Path, Any]:
    """Built with the bundle API and the DEVELOPMENT ONLY signing material."""
    key = load_private_key(dev_path(DEV_SIGNING_KEY).read_bytes(), "dev key")
    app = where / f"app-{version}" / "app.bin"
    app.parent.mkdir()
    app.write_bytes(b"app " + version.encode())
    out = where / f"fw-{version}.bundle"
    manifest = bundle.build(out, version=version, payloads=[app, *payloads], key=key,
                            chain_pem=dev_path(DEV_SIGNING_CERT).read_text())
    return out, manifest


def install(cfg_path: Path, version: str, payloads: list[Path]) -> SlotInstaller:
    inst = open_installer(load(cfg_path))
    assert isinstance(inst, SlotInstaller)
    path, manifest = signed_bundle(cfg_path.parent, version, payloads)
    inst.install(path, manifest)
    inst.activate()
    return inst


def run_agent(cfg_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """A start as systemd makes it: the installed package, `run --config FILE`."""
    done = subprocess.run([sys.executable, "-m", "evse_agent", "run", "--config",
                           str(cfg_path)], cwd=cfg_path.parent, env=env, capture_output=True,
                          text=True, timeout=20)  # a real agent would run on: timeout
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def who(env: dict[str, str], cwd: Path) -> tuple[Path, str]:
    done = subprocess.run([sys.executable, "-c", WHO], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    file, version = json.loads(done.stdout)
    return Path(file).resolve(), version


def test_fresh_start_runs_the_active_slots_code(tmp_path: Path) -> None:
    cfg = station(tmp_path)
    install(cfg, "9.9.9", [python_tar(tmp_path, "9.9.9")])
    root = tmp_path / "data" / "firmware"
    slot = (root / "b" / "python").resolve()
    assert os.readlink(root / "current") == "b"
    assert (slot / "evse_agent" / "__pycache__").is_dir()  # compiled at install

    seen = run_agent(cfg, clean_env())
    # The installed launcher re-executed once, with the same arguments, into the slot; the
    # slot's own launcher is content (no second re-exec).
    assert Path(seen["file"]).resolve() == slot / "evse_agent" / "__init__.py"
    assert seen["version"] == "9.9.9"
    assert seen["marker"] == str(slot)
    assert seen["argv"] == ["run", "--config", str(cfg)]
    assert seen["relaunch"] is False


def test_restart_and_rollback_switch_the_code(tmp_path: Path) -> None:
    """Restart env = exec_env at exec time: the switch is what counts, rollback included
    (A -> B(code 2.0.0, confirmed) -> A(code 3.0.0) -> rolled back to B)."""
    cfg = station(tmp_path)
    root = tmp_path / "data" / "firmware"
    inst = install(cfg, "2.0.0", [python_tar(tmp_path, "2.0.0")])
    inst.confirm()
    env_b = exec_env(root, clean_env())
    assert who(env_b, tmp_path) == (
        (root / "b" / "python" / "evse_agent" / "__init__.py").resolve(), "2.0.0")

    inst = install(cfg, "3.0.0", [python_tar(tmp_path, "3.0.0")])
    assert os.readlink(root / "current") == "a"
    env_a = exec_env(root, env_b)  # what B's process hands the restart after activation
    assert env_a["PYTHONPATH"].split(os.pathsep) == [str((root / "a" / "python").resolve())]
    assert who(env_a, tmp_path)[1] == "3.0.0"

    inst.rollback("test: trial failed")
    env_back = exec_env(root, env_a)
    assert env_back["PYTHONPATH"].split(os.pathsep) == [str((root / "b" / "python").resolve())]
    assert who(env_back, tmp_path)[1] == "2.0.0"


def test_rollback_to_a_slot_without_code_runs_the_installed_package(tmp_path: Path) -> None:
    cfg = station(tmp_path)
    root = tmp_path / "data" / "firmware"
    inst = install(cfg, "9.9.9", [python_tar(tmp_path, "9.9.9")])
    env_b = {**exec_env(root, clean_env()), "PYTHONPATH": os.pathsep.join(
        [str(slot_python(root)), "/opt/site-extra"])}
    inst.rollback("test: trial failed")  # back to the factory slot a: no python/
    assert slot_python(root) is None

    # The restart from B's process drops B's path and keeps what was there before.
    env = exec_env(root, env_b)
    assert env["PYTHONPATH"] == "/opt/site-extra" and env[SLOT_PYTHON_ENV] == ""
    assert who(env, tmp_path) == (INSTALLED / "__init__.py", evse_agent.__version__)
    # B's launcher (the copy in slot b, run by B's interpreter) sees the same and re-execs.
    check = ("import json, os; from pathlib import Path;"
             "from evse_agent.firmware.slots import launch_env;"
             f"e = launch_env(Path({str(root)!r}), os.environ);"
             "print(json.dumps(e and [e.get('PYTHONPATH'), e['EVSE_AGENT_SLOT_PYTHON']]))")
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env_b,
                          capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == ["/opt/site-extra", ""]
    # ... and the installed package's launcher leaves that start alone.
    assert launch_env(root, env) is None


def test_slot_without_python_payload_changes_nothing(tmp_path: Path) -> None:
    cfg = station(tmp_path)
    root = tmp_path / "data" / "firmware"
    env = {**clean_env(), "PYTHONPATH": "/opt/site-extra"}
    # No slot at all (tests, demo, a fresh station).
    assert slot_python(root) is None and launch_env(root, env) is None
    assert exec_env(root, env) == env
    install(cfg, "2.0.0", [])  # a bundle with app.bin only
    assert os.readlink(root / "current") == "b" and not (root / "b" / "python").exists()
    assert slot_python(root) is None and launch_env(root, env) is None
    assert exec_env(root, env) == env
    assert who(exec_env(root, clean_env()), tmp_path) == (INSTALLED / "__init__.py",
                                                          evse_agent.__version__)


def test_launcher_never_loops(tmp_path: Path) -> None:
    """A slot whose python/ does not win the import (here: this process runs the installed
    package) is re-executed into once, then the start runs on with a warning."""
    cfg = station(tmp_path)
    root = tmp_path / "data" / "firmware"
    install(cfg, "9.9.9", [python_tar(tmp_path, "9.9.9")])
    want = str(slot_python(root))
    first = launch_env(root, clean_env())
    assert first is not None and first[SLOT_PYTHON_ENV] == want
    assert launch_env(root, first) is None


@pytest.mark.parametrize(("package", "extra", "problem"), [
    (False, None, "holds no evse_agent package"),
    (True, {"../escape.py": b"X = 1\n"}, "outside the destination"),
    (True, {"evse_agent/broken.py": b"def (:\n"}, "does not compile"),
])
def test_bad_python_payload_fails_the_install(tmp_path: Path, package: bool,
                                              extra: dict[str, bytes] | None,
                                              problem: str) -> None:
    cfg = station(tmp_path)
    root = tmp_path / "data" / "firmware"
    with pytest.raises(InstallError, match=problem):
        install(cfg, "9.9.9", [python_tar(tmp_path, "9.9.9", package=package, extra=extra)])
    assert os.readlink(root / "current") == "a" and not (root / "b").exists()
    assert not (tmp_path / "data" / "escape.py").exists()

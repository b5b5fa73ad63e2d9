"""`evse-agent run | demo | csms | sim | hal | keys | bundle`: the command line.

Expected failures (a config typo, a port in use) end in one line on stderr and a
non-zero exit, never a traceback. Subcommands import what they need when they run,
so `evse-agent run` starts lean.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .config import Config


def _launch_env(cfg: Config) -> dict[str, str] | None:
    """At a start: the environment to re-exec with so that the active firmware slot's code
    runs (config/firmware.md), None when the code running is already the right one."""
    if cfg.firmware.installer != "slots":
        return None
    from .firmware.slots import launch_env

    return launch_env(cfg.data_dir / "firmware", os.environ)


def _restart_env(cfg: Config) -> dict[str, str]:
    if cfg.firmware.installer != "slots":
        return dict(os.environ)
    from .firmware.slots import exec_env

    return exec_env(cfg.data_dir / "firmware", os.environ)


def _exec_agent(env: dict[str, str]) -> NoReturn:
    # Same pid, so a supervisor sees no exit; PYTHONPATH in `env` picks the slot's code.
    logging.shutdown()
    os.execve(sys.executable, [sys.executable, "-m", "evse_agent", *sys.argv[1:]], env)


def _run(args: argparse.Namespace) -> int:
    from .config import ConfigError, load

    try:
        cfg = load(Path(args.config))
        if (env := _launch_env(cfg)) is not None:
            _exec_agent(env)  # a fresh start: the active slot ships its own agent code
        from .agent import RESTART, Agent

        agent = Agent(cfg)
        if (env := _launch_env(cfg)) is not None:
            _exec_agent(env)  # this start's trial check rolled back to other code
    except ConfigError as err:
        print(f"evse-agent: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"evse-agent: {err.filename or ''}: {err.strerror}", file=sys.stderr)
        return 2

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.stop)
        return await agent.run()

    from evse_hal.interfaces import DeviceError

    try:
        code = asyncio.run(main())
    except DeviceError as err:  # a real device did not start: names section and port/pin
        print(f"evse-agent: {cfg.path}: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # e.g. the mock control API port is taken
        print(f"evse-agent: {err}", file=sys.stderr)
        return 1
    if code == RESTART:
        # Reset: start again in place, with the code of the slot active now.
        logging.getLogger("evse_agent").info("restarting")
        _exec_agent(_restart_env(cfg))
    return code


def _csms(args: argparse.Namespace) -> int:
    from .csms.cli import main as csms_main

    return csms_main(args.rest)


def _sim(args: argparse.Namespace) -> int:
    from .sim.client import main as sim_main

    return sim_main(args.rest)


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main(args.rest)


def _hal(args: argparse.Namespace) -> int:
    from .hal_check import main as hal_main

    return hal_main(args.rest)


def _keys(args: argparse.Namespace) -> int:
    from .security.cli import main as keys_main

    return keys_main(args.rest)


def _bundle(args: argparse.Namespace) -> int:
    from .firmware.cli import main as bundle_main

    return bundle_main(args.rest)


PASSTHROUGH = ("csms", "sim", "demo", "hal", "keys", "bundle")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="evse-agent", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log every OCPP frame")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a station")
    run.add_argument("--config", required=True, help="station TOML file")
    run.set_defaults(func=_run)
    for name, func, text in (
        ("csms", _csms, "the development CSMS"),
        ("sim", _sim, "drive a running mock station"),
        ("demo", _demo, "play a full charging session against the development CSMS"),
        ("hal", _hal, "check the configured hardware: evse-agent hal check --config FILE"),
        ("keys", _keys, "station key and certificate provisioning"),
        ("bundle", _bundle, "build, verify and inspect signed firmware bundles"),
    ):
        p = sub.add_parser(name, help=text, add_help=False)
        p.set_defaults(func=func, rest=[])
    # Subcommands with their own parsers get everything after their name untouched.
    split = next((i for i, a in enumerate(argv) if a in PASSTHROUGH), None)
    if split is not None and all(a.startswith("-") for a in argv[:split]):
        args = parser.parse_args(argv[: split + 1])
        args.rest = argv[split + 1 :]
    else:
        args = parser.parse_args(argv)
    from .systemd import log_handler

    # Under systemd (stderr to journald): no timestamps of our own, priority prefixes.
    handler = log_handler() or logging.StreamHandler(sys.stderr)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        handlers=[handler],
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if args.verbose or os.environ.get("EVSE_AGENT_FRAMES"):
        logging.getLogger("evse_agent.frames").setLevel(logging.DEBUG)
    else:
        logging.getLogger("evse_agent.frames").setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `evse-agent bundle inspect F | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

"""`evse-agent csms [--host H] [--port N]`: run the development CSMS until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .server import DevCsms
from .session import LOGGER


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evse-agent csms",
        description="Development CSMS: accepts any station at ws://HOST:PORT/<any>/<station id> "
        "(OCPP 2.0.1 or 1.6), answers every request permissively and logs every frame. "
        "Operator API on PORT+1: GET /api/stations, POST /api/stations/<id>/<Action>.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=9000, help="websocket port (default %(default)s)"
    )
    parser.add_argument(
        "--api-port", type=int, default=None, help="operator API port (default: PORT+1)"
    )
    parser.add_argument(
        "--boot-interval",
        type=int,
        default=300,
        help="heartbeat interval in BootNotification answers, seconds (default %(default)s)",
    )
    return parser


def _log_to_stdout() -> None:
    if LOGGER.handlers:  # main() called again in the same process
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", datefmt="%H:%M:%S")
    )
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    # Frames and connections go to stdout; everything else keeps to stderr, warnings up.
    LOGGER.propagate = False
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


async def _run(args: argparse.Namespace) -> int:
    csms = DevCsms(boot_interval=args.boot_interval)
    try:
        await csms.start(args.host, args.port, api_port=args.api_port)
    except OSError as error:
        # The error names the address, which may be the API's (port + 1).
        print(f"evse-agent csms: cannot listen: {error}", file=sys.stderr)
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        LOGGER.info("stopping")
        await csms.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _log_to_stdout()
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())

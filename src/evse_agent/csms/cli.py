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
    parser.add_argument(
        "--sign-csrs",
        metavar="FILE",
        default=None,
        help="sign the CSRs of SignCertificate with a throw-away CA and send them back in "
        "CertificateSigned; the CA's root certificate is written to FILE (install it on "
        "the station: evse-agent keys install-root CSMSRootCertificate FILE)",
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this certificate "
                        "(PEM, chain allowed); needs --tls-key")
    parser.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert")
    parser.add_argument("--client-ca", metavar="FILE", help="require a client certificate "
                        "signed by this CA (mutual TLS, security profile 3)")
    parser.add_argument("--basic-auth-password", metavar="PASSWORD",
                        help="require HTTP Basic auth with this password (profiles 1 and 2)")
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
    if args.sign_csrs:
        from pathlib import Path

        from .ca import DevCa

        csms.certificate_authority = DevCa.root()
        try:
            Path(args.sign_csrs).write_text(csms.certificate_authority.root_pem)
        except OSError as error:
            print(f"evse-agent csms: {args.sign_csrs}: {error.strerror}", file=sys.stderr)
            return 1
    csms.basic_auth_password = args.basic_auth_password
    tls = None
    if args.tls_cert or args.tls_key or args.client_ca:
        if not (args.tls_cert and args.tls_key):
            print("evse-agent csms: --tls-cert and --tls-key go together", file=sys.stderr)
            return 2
        import ssl

        from .tls import server_ssl_context

        try:
            tls = server_ssl_context(args.tls_cert, args.tls_key, args.client_ca)
        except (OSError, ssl.SSLError) as error:
            print(f"evse-agent csms: TLS: {error}", file=sys.stderr)
            return 2
    try:
        await csms.start(args.host, args.port, api_port=args.api_port, ssl=tls)
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

"""`evse-agent sim ...`: drive a running mock station through its control API.

Standard library only (urllib), so a scripted bench scenario of many calls does not pay
for importing aiohttp at every step. Prints the station state the API answers with:
one compact JSON line after an action (easy to pipe into jq), indented for `state`.
Exit 0 on success; 1 with one line on stderr when the station is unreachable or refuses
the action; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import urllib.error
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8800"
TIMEOUT_S = 10.0
PROG = "evse-agent sim"


class SimClientError(Exception):
    """An expected failure, printed as one line."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Drive a running mock station (hal backend = "mock") through its '
        "control API: tap a card, plug an EV, inject faults, read the state.",
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, help="control API of the station (default %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tap = commands.add_parser("tap", help="present a card to the station's reader")
    tap.add_argument("card", metavar="CARD", help="the card's id token, e.g. AABBCCDD")
    tap.add_argument("--type", default=None, help="IdToken type (default ISO14443)")

    plug = commands.add_parser("plug", help="plug an EV into an EVSE")
    plug.add_argument("evse", metavar="EVSE", type=int)
    plug.add_argument("--max-current", type=float, metavar="A", help="EV's max current")
    plug.add_argument("--soc", type=float, metavar="S", help="state of charge, 0..100")
    plug.add_argument("--battery-wh", type=float, metavar="W", help="battery capacity, Wh")
    plug.add_argument("--phases", type=int, choices=(1, 2, 3), help="phases the EV draws on")
    plug.add_argument("--iso15118", action="store_true", help="the EV speaks ISO 15118")
    plug.add_argument("--emaid", metavar="EMAID",
                      help="Plug & Charge: the contract the EV presents (implies --iso15118)")
    plug.add_argument("--certificate-request", choices=("Install", "Update"),
                      help="the EV first asks for its contract certificate (needs --emaid)")

    unplug = commands.add_parser("unplug", help="unplug the EV from an EVSE")
    unplug.add_argument("evse", metavar="EVSE", type=int)

    ev = commands.add_parser("ev", help="the EV pauses or resumes charging")
    ev.add_argument("evse", metavar="EVSE", type=int)
    pause_or_resume = ev.add_mutually_exclusive_group(required=True)
    pause_or_resume.add_argument("--pause", dest="charging", action="store_false")
    pause_or_resume.add_argument("--resume", dest="charging", action="store_true")

    fault = commands.add_parser("fault", help="inject a hardware fault")
    fault.add_argument("device", metavar="DEVICE", help="meter, contactor, pilot, lock, rfid")
    fault.add_argument("fault", metavar="FAULT", help="e.g. offline, welded, gone")
    fault.add_argument("--evse", type=int, default=None, help="EVSE (default 1)")

    commands.add_parser("clear-faults", help="clear every injected fault")
    commands.add_parser("state", help="print the whole station state")
    return parser


def _route(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path, body) for the parsed command line."""
    command = args.command
    if command == "state":
        return "GET", "/api/state", None
    if command == "tap":
        body: dict[str, Any] = {"id_token": args.card}
        if args.type is not None:
            body["type"] = args.type
        return "POST", "/api/rfid", body
    if command == "plug":
        options = {
            "max_current_a": args.max_current,
            "soc": args.soc,
            "battery_wh": args.battery_wh,
            "phases": args.phases,
            "iso15118": args.iso15118 or bool(args.emaid) or None,
            "emaid": args.emaid,
            "certificate_request": args.certificate_request,
        }
        return (
            "POST",
            f"/api/evse/{args.evse}/plug",
            {k: v for k, v in options.items() if v is not None},
        )
    if command == "unplug":
        return "POST", f"/api/evse/{args.evse}/unplug", None
    if command == "ev":
        return "POST", f"/api/evse/{args.evse}/ev", {"charging": args.charging}
    if command == "fault":
        body = {"device": args.device, "fault": args.fault}
        if args.evse is not None:
            body["evse"] = args.evse
        return "POST", "/api/fault", body
    if command == "clear-faults":
        return "POST", "/api/fault", {"clear": True}
    raise AssertionError(f"unhandled command {command!r}")


def base_url(url: str) -> str:
    """Accepts "host:port" as well, as people copy it from `[sim] listen`."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def call(base: str, method: str, path: str, body: dict[str, Any] | None) -> Any:
    """Send one request; the decoded JSON answer, or SimClientError."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    # A bench station is local: an http_proxy from the environment would only get in
    # the way (and turn "nothing listening" into a confusing proxy error).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=TIMEOUT_S) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        try:
            raise SimClientError(_http_error(err, method, path)) from None
        finally:
            err.close()
    except urllib.error.URLError as err:
        if isinstance(err.reason, ConnectionRefusedError):
            raise SimClientError(
                f'no mock station at {base} (is evse-agent running with backend = "mock"?)'
            ) from None
        raise SimClientError(f"cannot reach {base}: {err.reason}") from None
    except (OSError, http.client.HTTPException) as err:
        # Timeouts, resets, or something that does not speak HTTP on that port.
        raise SimClientError(f"{method} {base}{path} failed: {err or type(err).__name__}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise SimClientError(
            f"{base}{path} did not answer JSON; is it a mock station's control API?"
        ) from None


def _http_error(err: urllib.error.HTTPError, method: str, path: str) -> str:
    try:
        raw = err.read()
    except OSError:
        raw = b""
    message = ""
    try:
        decoded = json.loads(raw)
        if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
            message = decoded["error"]
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        message = text.splitlines()[0] if text else ""
    return f"{method} {path}: {err.code} {err.reason}: {message or '(no details)'}"


def main(argv: list[str] | None = None) -> int:
    """Run `evse-agent sim` with `argv` (the words after "sim"); returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error argparse already printed
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2
    base = base_url(args.url)
    method, path, body = _route(args)
    try:
        state = call(base, method, path, body)
    except SimClientError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    if args.command == "state":
        print(json.dumps(state, indent=2))
    else:
        print(json.dumps(state, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

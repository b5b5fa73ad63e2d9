"""The station's TOML configuration: parsed, checked, and turned into typed settings.

Every problem is a ConfigError whose message is one line naming the file and the key;
the CLI prints it and exits 2. The file holds factory values only: what the CSMS sets
at run time lives in the database under data_dir and wins after a restart.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class DeviceSection:
    """One [hal.*] device: its driver name and its other keys, left to the driver."""

    section: str
    driver: str
    options: dict[str, Any]
    evse: int = 0
    key: str = ""  # where in the file: "hal.meter[0]" for an array entry, else section


@dataclass(frozen=True)
class FirmwareConfig:
    """[firmware]: bundle trust, the installer backend and the trial of a new version."""

    production: bool = False            # true: development-signed bundles are refused
    installer: str = "slots"            # "slots" | "rauc" | "swupdate"
    hardware_id: str = "evse-agent-mock"  # matched against the bundle (default: model)
    trial_timeout_s: float = 300.0
    trial_max_starts: int = 3
    install_command: str | None = None  # rauc / swupdate only; {file} is the payload
    confirm_command: str | None = None
    rollback_command: str | None = None
    version_command: str | None = None  # prints the started image's version


@dataclass(frozen=True)
class Config:
    path: Path
    station_id: str
    serial_number: str
    evse_count: int
    data_dir: Path
    vendor: str
    model: str
    max_current_a: float
    csms_url: str
    ocpp_version: str
    security_profile: int
    basic_auth_password: str
    hal_backend: str
    devices: list[DeviceSection]
    sim_listen: tuple[str, int]
    device_model: dict[str, Any] = field(default_factory=dict)
    reboot_command: str | None = None
    # [logs]: the diagnostics log files under data_dir/logs (logs/files.py) and uploads
    log_max_bytes: int = 1_000_000
    log_backup_count: int = 5
    log_upload_method: str = "PUT"
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)


# key -> (type, default). A default of ... means required.
SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    "station": {
        "id": (str, ...),
        "serial_number": (str, None),
        "evse_count": (int, 2),
        "data_dir": (str, "./var/evse-agent"),
        "vendor": (str, "evse-agent"),
        "model": (str, "evse-agent-mock"),
        "max_current_a": ((int, float), 32.0),
        "reboot_command": (str, None),
    },
    "ocpp": {
        "csms_url": (str, ...),
        "version": (str, "2.0.1"),
        "security_profile": (int, 0),
        "basic_auth_password": (str, ""),
    },
    "hal": {"backend": (str, "mock")},
    "sim": {"listen": (str, "127.0.0.1:8800")},
    "logs": {"max_bytes": (int, 1_000_000), "backup_count": (int, 5),
             "upload_method": (str, "PUT")},
    "firmware": {"production": (bool, False), "installer": (str, "slots"),
                 "hardware_id": (str, None), "trial_timeout_s": ((int, float), 300.0),
                 "trial_max_starts": (int, 3), "install_command": (str, None),
                 "confirm_command": (str, None), "rollback_command": (str, None),
                 "version_command": (str, None)},
}
# section -> one per EVSE ([[hal.meter]] with `evse`; a single table is accepted too, and
# `evse` may be left out on a one-EVSE station).
DEVICE_SECTIONS = {"rfid": False, "meter": True, "contactor": True, "ev_bridge": True,
                   "display": False}
VERSIONS = ("2.0.1", "1.6", "auto")


def load(path: Path) -> Config:
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path) -> Config:
    where = str(path)

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {problem}")

    known = set(SCHEMA) | {"device_model"}
    for section in raw:
        if section not in known:
            raise fail(section, "unknown section")
    values: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise fail(section, "must be a table")
        extra = set(table) - set(keys) - (set(DEVICE_SECTIONS) if section == "hal" else set())
        if extra:
            raise fail(f"{section}.{sorted(extra)[0]}", "unknown key")
        values[section] = {}
        for key, (kind, default) in keys.items():
            if key not in table:
                if default is ...:
                    raise fail(f"{section}.{key}", "required")
                values[section][key] = default
                continue
            value = table[key]
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                names = kind.__name__ if isinstance(kind, type) else "number"
                raise fail(f"{section}.{key}", f"must be {_type_name(names)}")
            values[section][key] = value

    st, oc = values["station"], values["ocpp"]
    if not re.fullmatch(r"[\x21-\x7e]{1,48}", st["id"]):
        raise fail("station.id", "1 to 48 printable ASCII characters without spaces")
    if not 1 <= st["evse_count"] <= 32:
        raise fail("station.evse_count", "must be between 1 and 32")
    if not 6 <= st["max_current_a"] <= 1000:
        raise fail("station.max_current_a", "must be between 6 and 1000")
    url = urlsplit(oc["csms_url"])
    if url.scheme not in ("ws", "wss") or not url.hostname:
        raise fail("ocpp.csms_url", f"not a ws:// or wss:// URL: {oc['csms_url']!r}")
    try:
        _ = url.port
    except ValueError:
        raise fail("ocpp.csms_url", "the port is not a number") from None
    if oc["version"] not in VERSIONS:
        raise fail("ocpp.version", f"must be one of {', '.join(VERSIONS)}")
    if oc["security_profile"] not in (0, 1, 2, 3):
        raise fail("ocpp.security_profile", "must be 0, 1, 2 or 3")
    profile = oc["security_profile"]
    if profile >= 2 and url.scheme != "wss":
        raise fail("ocpp.csms_url", f"security profile {profile} (TLS) needs a wss:// URL")
    if profile <= 1 and url.scheme == "wss":
        raise fail("ocpp.csms_url", "wss:// needs security profile 2 or 3")
    if profile in (1, 2) and not oc["basic_auth_password"]:
        raise fail("ocpp.basic_auth_password", f"required for security profile {profile}")
    if profile in (1, 2) and ":" in st["id"]:  # Basic auth user:password (RFC 7617)
        raise fail("station.id", "must not contain ':' with HTTP basic auth (profiles 1, 2)")
    if oc["basic_auth_password"] and not 16 <= len(oc["basic_auth_password"]) <= 40:
        raise fail("ocpp.basic_auth_password", "16 to 40 characters (A00.FR.304)")
    if values["hal"]["backend"] not in ("mock", "real"):
        raise fail("hal.backend", 'must be "mock" or "real"')
    devices = _devices(raw.get("hal", {}), st["evse_count"], fail)
    host, _, port = values["sim"]["listen"].rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise fail("sim.listen", "must be host:port")
    device_model = raw.get("device_model", {})
    if not isinstance(device_model, dict):
        raise fail("device_model", "must be a table of components")

    data_dir = Path(st["data_dir"])
    if not data_dir.is_absolute():
        data_dir = (path.parent / data_dir).resolve() if path.parent else data_dir.resolve()
    return Config(
        path=path,
        station_id=st["id"],
        serial_number=st["serial_number"] or st["id"],
        evse_count=st["evse_count"],
        data_dir=data_dir,
        vendor=st["vendor"],
        model=st["model"],
        max_current_a=float(st["max_current_a"]),
        csms_url=oc["csms_url"],
        ocpp_version=oc["version"],
        security_profile=oc["security_profile"],
        basic_auth_password=oc["basic_auth_password"],
        hal_backend=values["hal"]["backend"],
        devices=devices,
        sim_listen=(host, int(port)),
        device_model=device_model,
        reboot_command=st["reboot_command"],
        **_logs(values["logs"], fail),
        firmware=_firmware(values["firmware"], st["model"], fail),
    )


def _logs(logs: dict[str, Any], fail: Any) -> dict[str, Any]:
    # backup_count 0 would never rotate (logging.handlers): the files must stay bounded
    if not 10_000 <= logs["max_bytes"] <= 1_000_000_000:
        raise fail("logs.max_bytes", "must be between 10000 and 1000000000")
    if not 1 <= logs["backup_count"] <= 100:
        raise fail("logs.backup_count", "must be between 1 and 100")
    if logs["upload_method"] not in ("PUT", "POST"):
        raise fail("logs.upload_method", 'must be "PUT" or "POST"')
    return {"log_max_bytes": logs["max_bytes"], "log_backup_count": logs["backup_count"],
            "log_upload_method": logs["upload_method"]}


def _devices(hal: dict[str, Any], evse_count: int, fail: Any) -> list[DeviceSection]:
    out: list[DeviceSection] = []
    for name, per_evse in DEVICE_SECTIONS.items():
        if name not in hal:
            continue
        tables = hal[name]
        if per_evse and isinstance(tables, dict):
            tables = [tables]
        if not per_evse and not isinstance(tables, dict):
            raise fail(f"hal.{name}", f"must be a table ([hal.{name}])")
        for i, table in enumerate(tables if isinstance(tables, list) else [tables]):
            key = f"hal.{name}" + (f"[{i}]" if per_evse else "")
            if not isinstance(table, dict) or not isinstance(table.get("driver"), str):
                raise fail(f"{key}.driver", "required")
            evse = table.get("evse", 1 if per_evse and evse_count == 1 else 0)
            if per_evse and (not isinstance(evse, int) or not 1 <= evse <= evse_count):
                raise fail(f"{key}.evse", f"must be an EVSE number 1..{evse_count}")
            options = {k: v for k, v in table.items() if k not in ("driver", "evse")}
            out.append(DeviceSection(f"hal.{name}", table["driver"], options, evse, key))
    return out


def _firmware(fw: dict[str, Any], model: str, fail: Any) -> FirmwareConfig:
    if fw["installer"] not in ("slots", "rauc", "swupdate"):
        raise fail("firmware.installer", 'must be "slots", "rauc" or "swupdate"')
    if not 0 < fw["trial_timeout_s"] <= 7 * 86400:
        raise fail("firmware.trial_timeout_s", "must be more than 0 and at most 604800")
    if not 1 <= fw["trial_max_starts"] <= 100:
        raise fail("firmware.trial_max_starts", "must be between 1 and 100")
    for key in ("install_command", "confirm_command", "rollback_command", "version_command"):
        if fw[key] is None:
            continue
        if fw["installer"] == "slots":
            raise fail(f"firmware.{key}", 'only used with installer = "rauc" or "swupdate"')
        try:
            words = shlex.split(fw[key])
        except ValueError as err:
            raise fail(f"firmware.{key}", f"not a command line: {err}") from None
        if not words:
            raise fail(f"firmware.{key}", "empty command line")
        if key == "install_command" and not any("{file}" in w for w in words):
            raise fail(f"firmware.{key}", "must contain {file} (the payload's path)")
    if fw["hardware_id"] is not None and not fw["hardware_id"].strip():
        raise fail("firmware.hardware_id", "must not be empty")
    return FirmwareConfig(
        production=fw["production"], installer=fw["installer"],
        hardware_id=fw["hardware_id"] or model,
        trial_timeout_s=float(fw["trial_timeout_s"]), trial_max_starts=fw["trial_max_starts"],
        install_command=fw["install_command"], confirm_command=fw["confirm_command"],
        rollback_command=fw["rollback_command"], version_command=fw["version_command"])


def _type_name(name: str) -> str:
    return {"str": "a string", "int": "an integer", "bool": "a boolean (true or false)"}.get(
        name, f"a {name}")

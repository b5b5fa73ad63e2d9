"""The station's TOML configuration: parsed, checked, and turned into typed settings.

Every problem is a ConfigError whose message is one line naming the file and the key;
the CLI prints it and exits 2. The file holds factory values only: what the CSMS sets
at run time lives in the database under data_dir and wins after a restart.
"""

from __future__ import annotations

import re
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
}
DEVICE_SECTIONS = {"rfid": False, "meter": True, "contactor": True, "ev_bridge": False,
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
            if isinstance(value, bool) or not isinstance(value, kind):
                names = kind.__name__ if isinstance(kind, type) else "number"
                raise fail(f"{section}.{key}", f"must be a {_type_name(names)}")
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
    if oc["security_profile"] in (2, 3):
        raise fail("ocpp.security_profile", "profiles 2 and 3 (TLS) are not in this build yet")
    if oc["security_profile"] == 1 and not oc["basic_auth_password"]:
        raise fail("ocpp.basic_auth_password", "required for security profile 1")
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
    )


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
            evse = table.get("evse", 0)
            if per_evse and (not isinstance(evse, int) or not 1 <= evse <= evse_count):
                raise fail(f"{key}.evse", f"must be an EVSE number 1..{evse_count}")
            options = {k: v for k, v in table.items() if k not in ("driver", "evse")}
            out.append(DeviceSection(f"hal.{name}", table["driver"], options, evse))
    return out


def _type_name(name: str) -> str:
    return {"str": "string", "int": "integer"}.get(name, name)

"""Reading the device model's data: config/device_model/ (shipped as package data
through the `data` link next to this file).

One TOML file per component: `name`, for physical components `scope` ("station",
"evse", "connector") and `device` (the HAL device behind it), and a table
`[variables."Name"]` or `[variables."Name[Instance]"]` per variable:

    type        dataType: string, decimal, integer, dateTime, boolean, OptionList,
                SequenceList, MemberList
    unit        unit of measure (Part 2 appendix "units of measure")
    mutability  of the Actual attribute: ReadOnly, WriteOnly, ReadWrite
    value       factory value of the Actual attribute (absent = unset)
    min, max    minLimit / maxLimit (lengths for strings and lists)
    values      valuesList
    required    the spec requires it once the functional block is implemented
    reboot_required  SetVariables answers RebootRequired (the change applies after one)
    live        fed by the hardware at run time (reported as not persistent)
    monitoring  supportsMonitoring (default: true unless WriteOnly)
    actual      false when the variable has no Actual attribute
    attributes  other attribute types and their mutability: { MaxSet = "ReadOnly" }

A typo in the data is an error naming the file and the key, at start-up.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from .model import ATTRIBUTE_TYPES, Attribute, DeviceModel, Variable, VariableKey
from .values import LIST_TYPES, InvalidValue, format_value, parse_value

DATA_TYPES = ("string", "decimal", "integer", "dateTime", "boolean", *LIST_TYPES)
MUTABILITIES = ("ReadOnly", "WriteOnly", "ReadWrite")
SCOPES = ("station", "evse", "connector")
_FIELDS = {"type", "unit", "mutability", "value", "min", "max", "values", "required",
           "reboot_required", "live", "monitoring", "actual", "attributes"}
_NAME = re.compile(r"([A-Za-z0-9_.\-]+)(?:\[([^\]]+)\])?")


@dataclass
class ComponentSpec:
    """One component's file: what it defines, before it is placed in a DeviceModel."""

    name: str
    source: str
    scope: str = "station"
    device: str | None = None
    variables: list[dict[str, Any]] = field(default_factory=list)  # each with "_name", "_instance"


def data_dir() -> Traversable:
    return resources.files(__package__).joinpath("data")


@cache  # the files do not change while the process runs; tests build many models
def read_components(subdir: str) -> tuple[ComponentSpec, ...]:
    """Every component file of data/<subdir>/, sorted by name, checked."""
    folder = data_dir().joinpath(subdir)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    if not files:
        raise FileNotFoundError(f"no device model data in {folder}")
    return tuple(parse_component(f"{subdir}/{f.name}", f.read_text(encoding="utf-8"))
                 for f in files)


def parse_component(source: str, text: str) -> ComponentSpec:
    raw = tomllib.loads(text)
    unknown = set(raw) - {"name", "scope", "device", "variables"}
    if unknown or not isinstance(raw.get("name"), str):
        raise ValueError(f"{source}: needs `name`; unknown keys: {sorted(unknown)}")
    spec = ComponentSpec(raw["name"], source, raw.get("scope", "station"), raw.get("device"))
    if spec.scope not in SCOPES:
        raise ValueError(f"{source}: scope must be one of {SCOPES}")
    for label, row in raw.get("variables", {}).items():
        match = _NAME.fullmatch(label)
        if not match or not isinstance(row, dict):
            raise ValueError(f"{source}: variables.{label}: expected Name or Name[Instance]")
        _check_row(f"{source}: variables.{label}", row)
        spec.variables.append({**row, "_name": match[1], "_instance": match[2]})
    return spec


def _check_row(where: str, row: dict[str, Any]) -> None:
    unknown = set(row) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    if row.get("type") not in DATA_TYPES:
        raise ValueError(f"{where}: type must be one of {DATA_TYPES}")
    if row.get("mutability", "ReadWrite") not in MUTABILITIES:
        raise ValueError(f"{where}: mutability must be one of {MUTABILITIES}")
    for kind, mutability in row.get("attributes", {}).items():
        if kind not in ATTRIBUTE_TYPES[1:] or mutability not in MUTABILITIES:
            raise ValueError(f"{where}: attributes.{kind} = {mutability!r} is not valid")
    if row["type"] in LIST_TYPES and not row.get("values"):
        # TC_B_12/13 check it: a list type without valuesList cannot be set sensibly.
        raise ValueError(f"{where}: a {row['type']} needs `values`")


def build_variable(spec: ComponentSpec, row: dict[str, Any], key: VariableKey) -> Variable:
    mutability = row.get("mutability", "ReadWrite")
    var = Variable(
        key=key,
        data_type=row["type"],
        mutability=mutability,
        unit=row.get("unit"),
        min_limit=row.get("min"),
        max_limit=row.get("max"),
        values_list=row.get("values"),
        reboot_required=row.get("reboot_required", False),
        supports_monitoring=row.get("monitoring", mutability != "WriteOnly"),
        has_actual=row.get("actual", True),
        others={kind: Attribute(m) for kind, m in row.get("attributes", {}).items()},
        live=row.get("live", False),
        required=row.get("required", False),
    )
    if "value" in row:
        value = row["value"]
        if not (value == "" and var.data_type == "string"):  # "" = not set
            try:
                value = parse_value(var, format_value(value))
            except InvalidValue as err:
                raise ValueError(f"{spec.source}: variables.{key.variable}: value: {err}") from None
        var.value = value
    return var


def component_variables(
    spec: ComponentSpec, evse_id: int | None = None, connector_id: int | None = None
) -> Iterator[Variable]:
    for row in spec.variables:
        key = VariableKey(spec.name, row["_name"], None, row["_instance"], evse_id, connector_id)
        yield build_variable(spec, row, key)


def load_controllers(dm: DeviceModel) -> None:
    for spec in read_components("controllers"):
        for var in component_variables(spec):
            dm.define(var)

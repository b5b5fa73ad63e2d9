"""The OCPP 2.0.1 device model: the one place every setting of the station lives.

Variables are defined as data (standard.toml plus the physical components built from
the station config). Values are typed; the CSMS's writes are handed to a `persist`
callback (SQLite at the edge) and loaded back at start-up, where they win over the
factory values. Modules that depend on a variable subscribe to its changes.

Pure Python: no I/O here, so the core can read settings synchronously.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

Value = int | float | bool | str


@dataclass(frozen=True)
class VariableKey:
    component: str
    variable: str
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None

    def label(self) -> str:
        comp = self.component
        if self.component_instance:
            comp += f"[{self.component_instance}]"
        if self.evse_id is not None:
            comp += f"@{self.evse_id}" + (f".{self.connector_id}" if self.connector_id else "")
        var = self.variable + (f"[{self.variable_instance}]" if self.variable_instance else "")
        return f"{comp}.{var}"


@dataclass
class Variable:
    key: VariableKey
    data_type: str  # string, decimal, integer, dateTime, boolean, OptionList, ...
    mutability: str = "ReadWrite"  # ReadOnly, WriteOnly, ReadWrite
    value: Value | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = None
    reboot_required: bool = False
    getter: Callable[[], Value | None] | None = field(default=None, repr=False)


class SetResult:
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE = "NotSupportedAttributeType"
    REBOOT_REQUIRED = "RebootRequired"


Persist = Callable[[VariableKey, str], None]
Listener = Callable[[VariableKey, Value], None]


def parse_value(var: Variable, text: str) -> Value:
    """Parse an OCPP string value into the variable's type; ValueError when it does
    not fit the type or the characteristics."""
    t = var.data_type
    value: Value
    if t == "integer":
        value = int(text.strip())
    elif t == "decimal":
        value = float(text.strip())
    elif t == "boolean":
        low = text.strip().lower()
        if low not in ("true", "false"):
            raise ValueError("not a boolean")
        value = low == "true"
    elif t == "dateTime":
        datetime.fromisoformat(text.replace("Z", "+00:00"))
        value = text
    elif t in ("OptionList", "MemberList", "SequenceList"):
        allowed = set((var.values_list or "").split(",")) - {""}
        members = [m.strip() for m in text.split(",") if m.strip()]
        if t == "OptionList" and len(members) != 1:
            raise ValueError("exactly one option expected")
        if allowed and any(m not in allowed for m in members):
            raise ValueError("value not in valuesList")
        value = ",".join(members)
    else:
        value = text
    if isinstance(value, int | float) and not isinstance(value, bool):
        if var.min_limit is not None and value < var.min_limit:
            raise ValueError("below minLimit")
        if var.max_limit is not None and value > var.max_limit:
            raise ValueError("above maxLimit")
    if t == "string" and var.max_limit is not None and len(str(value)) > var.max_limit:
        raise ValueError("too long")
    return value


def format_value(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class DeviceModel:
    def __init__(self, persist: Persist | None = None) -> None:
        self._vars: dict[VariableKey, Variable] = {}
        self._components: set[tuple[str, str | None, int | None, int | None]] = set()
        self._persist = persist
        self._listeners: list[tuple[VariableKey | None, Listener]] = []

    # -- definition --------------------------------------------------------------
    def define(self, var: Variable) -> None:
        self._vars[var.key] = var
        k = var.key
        self._components.add((k.component, k.component_instance, k.evse_id, k.connector_id))

    def load_standard(self) -> None:
        text = resources.files(__package__).joinpath("standard.toml").read_text()
        for row in tomllib.loads(text)["variable"]:
            self.define(
                Variable(
                    key=VariableKey(
                        row["component"], row["variable"], variable_instance=row.get("instance")
                    ),
                    data_type=row["type"],
                    mutability=row.get("mutability", "ReadWrite"),
                    value=row.get("value"),
                    unit=row.get("unit"),
                    min_limit=row.get("min"),
                    max_limit=row.get("max"),
                    values_list=row.get("values"),
                    reboot_required=row.get("reboot_required", False),
                )
            )

    def set_persist(self, persist: Persist) -> None:
        self._persist = persist

    # -- lookup ------------------------------------------------------------------
    def find(self, key: VariableKey) -> Variable | None:
        return self._vars.get(key)

    def has_component(
        self, name: str, instance: str | None, evse_id: int | None, connector_id: int | None
    ) -> bool:
        return (name, instance, evse_id, connector_id) in self._components

    def variables(self) -> Iterable[Variable]:
        return self._vars.values()

    def get(self, component: str, variable: str, instance: str | None = None) -> Any:
        """The typed Actual value of a controller variable (for the code's own use)."""
        var = self._vars[VariableKey(component, variable, variable_instance=instance)]
        return var.getter() if var.getter else var.value

    def members(self, component: str, variable: str, instance: str | None = None) -> list[str]:
        text = self.get(component, variable, instance) or ""
        return [m for m in str(text).split(",") if m]

    # -- writes ------------------------------------------------------------------
    def set_factory(self, key: VariableKey, value: Value) -> None:
        """A factory value from the station's TOML file; not persisted."""
        self._vars[key].value = value

    def load_persisted(self, key: VariableKey, text: str) -> None:
        var = self._vars.get(key)
        if var is not None:
            try:
                var.value = parse_value(var, text)
            except ValueError:
                pass  # a definition changed since it was stored; factory value stays

    def set_from_csms(self, key: VariableKey, text: str) -> str:
        """SetVariables semantics for the Actual attribute; returns a SetResult."""
        var = self._vars.get(key)
        if var is None:
            if not any(
                c[0] == key.component and c[1] == key.component_instance for c in self._components
            ):
                return SetResult.UNKNOWN_COMPONENT
            return SetResult.UNKNOWN_VARIABLE
        if var.mutability == "ReadOnly":
            return SetResult.REJECTED
        try:
            value = parse_value(var, text)
        except ValueError:
            return SetResult.REJECTED
        var.value = value
        if self._persist is not None:
            self._persist(key, format_value(value))
        for want, listener in self._listeners:
            if want is None or want == key:
                listener(key, value)
        return SetResult.REBOOT_REQUIRED if var.reboot_required else SetResult.ACCEPTED

    def subscribe(self, listener: Listener, key: VariableKey | None = None) -> None:
        self._listeners.append((key, listener))

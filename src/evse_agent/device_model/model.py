"""The OCPP 2.0.1 device model: the one place every setting of the station lives.

Variables are defined as data (config/device_model/, loaded by loader.py, plus the
physical components built from the station config by physical.py). Values are typed.
A variable has up to four attributes (Actual, Target, MinSet, MaxSet), each with its
own mutability. The CSMS's writes are handed to a `persist` callback (SQLite at the
edge) and loaded back at start-up, where they win over the factory values. Modules
that depend on a variable subscribe to its changes; live hardware values come in
through `set_live`, which notifies too, so monitoring sees them.

Pure Python: no I/O here, so the core can read settings synchronously.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .values import InvalidValue, Value, format_value, parse_value

__all__ = [
    "ACTUAL", "ATTRIBUTE_TYPES", "Attribute", "DeviceModel", "InvalidValue", "SetOutcome",
    "SetResult", "Value", "Variable", "VariableKey", "format_value", "parse_value",
]

ACTUAL = "Actual"
ATTRIBUTE_TYPES = ("Actual", "Target", "MinSet", "MaxSet")


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

    def component_key(self) -> ComponentKey:
        return (self.component, self.component_instance, self.evse_id, self.connector_id)

    # -- the OCPP ComponentType / VariableType spelling, both ways --------------------
    @classmethod
    def from_ocpp(cls, component: dict[str, Any], variable: dict[str, Any]) -> VariableKey:
        evse = component.get("evse") or {}
        return cls(
            component=component["name"],
            variable=variable["name"],
            component_instance=component.get("instance") or None,
            variable_instance=variable.get("instance") or None,
            evse_id=evse.get("id"),
            connector_id=evse.get("connectorId"),
        )

    def component_ocpp(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.component}
        if self.component_instance:
            out["instance"] = self.component_instance
        if self.evse_id is not None:
            out["evse"] = {"id": self.evse_id}
            if self.connector_id is not None:
                out["evse"]["connectorId"] = self.connector_id
        return out

    def variable_ocpp(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.variable}
        if self.variable_instance:
            out["instance"] = self.variable_instance
        return out


ComponentKey = tuple[str, str | None, int | None, int | None]


@dataclass
class Attribute:
    """A Target, MinSet or MaxSet attribute (Actual lives on the Variable itself)."""

    mutability: str = "ReadOnly"
    value: Value | None = None


@dataclass
class Variable:
    key: VariableKey
    data_type: str  # string, decimal, integer, dateTime, boolean, OptionList, ...
    mutability: str = "ReadWrite"  # of the Actual attribute: ReadOnly, WriteOnly, ReadWrite
    value: Value | None = None  # the Actual attribute; None = unset
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = None
    reboot_required: bool = False
    getter: Callable[[], Value | None] | None = field(default=None, repr=False)
    supports_monitoring: bool = True
    has_actual: bool = True  # some EV limits exist only as MinSet / MaxSet / Target
    others: dict[str, Attribute] = field(default_factory=dict)  # Target, MinSet, MaxSet
    live: bool = False  # fed by the hardware at run time; not kept across restarts
    required: bool = False

    def attribute_types(self) -> list[str]:
        others = [t for t in ATTRIBUTE_TYPES if t in self.others]
        return [ACTUAL, *others] if self.has_actual else others

    def has_attribute(self, attribute: str) -> bool:
        return self.has_actual if attribute == ACTUAL else attribute in self.others

    def mutability_of(self, attribute: str = ACTUAL) -> str:
        return self.mutability if attribute == ACTUAL else self.others[attribute].mutability

    def value_of(self, attribute: str = ACTUAL) -> Value | None:
        if attribute == ACTUAL:
            return self.getter() if self.getter is not None else self.value
        return self.others[attribute].value

    def _store(self, attribute: str, value: Value | None) -> None:
        if attribute == ACTUAL:
            self.value = value
        else:
            self.others[attribute].value = value


class SetResult:
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE = "NotSupportedAttributeType"
    REBOOT_REQUIRED = "RebootRequired"


@dataclass(frozen=True)
class SetOutcome:
    """A SetVariables result: status, and the reasonCode / text for attributeStatusInfo."""

    status: str
    reason: str | None = None
    info: str | None = None


Persist = Callable[..., None]  # (key, text) for Actual, (key, text, attribute) otherwise
Listener = Callable[[VariableKey, Value], None]
_FoldedKey = tuple[str, str, int | None, int | None, str, str]
_FoldedComponent = tuple[str, str, int | None, int | None]


def _fold(text: str | None) -> str:
    # Names are case-insensitive (Part 2 ComponentType / VariableType), and an absent
    # instance and an empty one mean the same (B06.FR.15).
    return (text or "").casefold()


def _folded(key: VariableKey) -> _FoldedKey:
    return (_fold(key.component), _fold(key.component_instance), key.evse_id,
            key.connector_id, _fold(key.variable), _fold(key.variable_instance))


def _folded_component(key: VariableKey) -> _FoldedComponent:
    return (_fold(key.component), _fold(key.component_instance), key.evse_id, key.connector_id)


class DeviceModel:
    def __init__(self, persist: Persist | None = None) -> None:
        self._vars: dict[VariableKey, Variable] = {}
        self._by_folded: dict[_FoldedKey, Variable] = {}
        self._components: dict[ComponentKey, list[Variable]] = {}
        self._folded_components: set[_FoldedComponent] = set()
        self._persist = persist
        self._listeners: dict[VariableKey | None, list[Listener]] = {}

    # -- definition --------------------------------------------------------------
    def define(self, var: Variable) -> None:
        old = self._vars.get(var.key)
        if old is not None:
            self._components[var.key.component_key()].remove(old)
        self._vars[var.key] = var
        self._by_folded[_folded(var.key)] = var
        self._components.setdefault(var.key.component_key(), []).append(var)
        self._folded_components.add(_folded_component(var.key))

    def load_standard(self) -> None:
        """The controller components of config/device_model/controllers/."""
        from .loader import load_controllers  # the loader builds Variables: import late

        load_controllers(self)

    def set_persist(self, persist: Persist) -> None:
        self._persist = persist

    def set_getter(self, key: VariableKey, getter: Callable[[], Value | None]) -> None:
        """Read the Actual value from `getter` (e.g. ClockCtrlr.DateTime from the clock)."""
        self._require(key).getter = getter

    # -- lookup ------------------------------------------------------------------
    def find(self, key: VariableKey) -> Variable | None:
        var = self._vars.get(key)
        return var if var is not None else self._by_folded.get(_folded(key))

    def has_component(
        self, name: str, instance: str | None, evse_id: int | None, connector_id: int | None
    ) -> bool:
        return (_fold(name), _fold(instance), evse_id, connector_id) in self._folded_components

    def unknown_status(self, key: VariableKey) -> str:
        """UnknownComponent or UnknownVariable for a key `find` does not know
        (B05.FR.04/05, B06.FR.06/07)."""
        if _folded_component(key) in self._folded_components:
            return SetResult.UNKNOWN_VARIABLE
        return SetResult.UNKNOWN_COMPONENT

    def variables(self) -> Iterable[Variable]:
        return self._vars.values()

    def components(self) -> dict[ComponentKey, list[Variable]]:
        """Every component and its variables, in definition order (read, don't change)."""
        return self._components

    def get(self, component: str, variable: str, instance: str | None = None) -> Any:
        """The typed Actual value of a controller variable (for the code's own use)."""
        var = self._vars.get(VariableKey(component, variable, variable_instance=instance))
        if var is None:
            var = self._require(VariableKey(component, variable, variable_instance=instance))
        return var.getter() if var.getter else var.value

    def value(self, key: VariableKey, attribute: str = ACTUAL) -> Any:
        """The typed value of any variable's attribute (None when unset)."""
        return self._require(key).value_of(attribute)

    def members(self, component: str, variable: str, instance: str | None = None) -> list[str]:
        text = self.get(component, variable, instance) or ""
        return [m for m in str(text).split(",") if m]

    def _require(self, key: VariableKey) -> Variable:
        var = self.find(key)
        if var is None:
            raise KeyError(key.label())
        return var

    # -- writes ------------------------------------------------------------------
    def set_factory(self, key: VariableKey, value: Value, attribute: str = ACTUAL) -> None:
        """A factory value (station TOML, station config); not persisted, no
        notification. ValueError (naming the variable) when it does not fit."""
        var = self._require(key)
        if not var.has_attribute(attribute):
            raise ValueError(f"{var.key.label()}: no {attribute} attribute")
        if value == "" and var.data_type == "string":
            var._store(attribute, "")  # "" is "not set", e.g. no BasicAuthPassword
            return
        try:
            var._store(attribute, parse_value(var, format_value(value)))
        except InvalidValue as err:
            raise ValueError(f"{var.key.label()}: {err}") from None

    def load_persisted(self, key: VariableKey, text: str, attribute: str = ACTUAL) -> None:
        var = self.find(key)
        if var is None or not var.has_attribute(attribute):
            return  # a variable that no longer exists: the factory value stays
        try:
            var._store(attribute, parse_value(var, text))
        except InvalidValue:
            pass  # a definition changed since it was stored; factory value stays

    def set_attribute(self, key: VariableKey, text: str, attribute: str = ACTUAL) -> SetOutcome:
        """SetVariables semantics for one attribute (B05): check, store, persist, notify."""
        var = self.find(key)
        if var is None:
            return SetOutcome(self.unknown_status(key))
        if not var.has_attribute(attribute):
            return SetOutcome(SetResult.NOT_SUPPORTED_ATTRIBUTE, "UnsupportedParam")
        if var.mutability_of(attribute) == "ReadOnly":
            return SetOutcome(SetResult.REJECTED, "ReadOnly")  # B05.FR.09
        try:
            value = parse_value(var, text)
        except InvalidValue as err:  # B05.FR.07, B05.FR.08
            return SetOutcome(SetResult.REJECTED, err.reason, str(err))
        var._store(attribute, value)
        if self._persist is not None:
            text = format_value(value)
            if attribute == ACTUAL:
                self._persist(var.key, text)
            else:
                self._persist(var.key, text, attribute)
        if attribute == ACTUAL:
            self._notify(var.key, value)
        status = SetResult.REBOOT_REQUIRED if var.reboot_required else SetResult.ACCEPTED
        return SetOutcome(status)

    def set_from_csms(self, key: VariableKey, text: str, attribute: str = ACTUAL) -> str:
        """SetVariables semantics; returns a SetResult status string."""
        return self.set_attribute(key, text, attribute).status

    def set_live(
        self, key: VariableKey, value: Value | None, attribute: str = ACTUAL, persist: bool = False
    ) -> bool:
        """A value the station itself produces (hardware state, monitoring base, ...),
        whatever the attribute's mutability. Subscribers hear a changed Actual value;
        `persist` keeps it across restarts. True when the value changed."""
        var = self._require(key)
        if not var.has_attribute(attribute):
            raise KeyError(f"{var.key.label()}: no {attribute} attribute")
        if var.value_of(attribute) == value and type(var.value_of(attribute)) is type(value):
            return False
        var._store(attribute, value)
        if persist and self._persist is not None and value is not None:
            if attribute == ACTUAL:
                self._persist(var.key, format_value(value))
            else:
                self._persist(var.key, format_value(value), attribute)
        if attribute == ACTUAL and value is not None:
            self._notify(var.key, value)
        return True

    # -- change notification ---------------------------------------------------------
    def subscribe(self, listener: Listener, key: VariableKey | None = None) -> Callable[[], None]:
        """Call `listener(key, value)` when the Actual value of `key` (of any variable
        when None) is set by the CSMS or changes live. Returns an unsubscribe function."""
        found = self.find(key) if key is not None else None
        if found is not None:
            key = found.key  # the canonical spelling: notifications use it
        self._listeners.setdefault(key, []).append(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(key, [])
            if listener in listeners:
                listeners.remove(listener)

        return unsubscribe

    def _notify(self, key: VariableKey, value: Value) -> None:
        for listener in (*self._listeners.get(key, ()), *self._listeners.get(None, ())):
            listener(key, value)

"""Network connection profiles and security profile migration (2.0.1 B09, B10, A05;
1.6 security whitepaper A05).

Slot 1 is seeded from the TOML ([ocpp] csms_url, version, security_profile); everything
the CSMS sets (SetNetworkProfile slots, a raised security profile, removed slots) is
kept in the database (kv "network_profiles") and wins over the TOML after a restart.

Which profile to try next is `Attempts`: the slots of NetworkConfigurationPriority in
order, each NetworkProfileConnectionAttempts times (B10.FR.03), then the slot of the
last successful connection (B10.FR.07), round and round, so a bad new profile never
locks the station out. A profile below SecurityCtrlr.SecurityProfile is never used (A05,
B09.FR.04); the SecurityProfile rises only once a connection with a higher profile
succeeded, and then the lower profiles go (A05.FR.06). Secrets (VPN / APN passwords)
are stored, never logged or reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..device_model.model import DeviceModel, VariableKey

if TYPE_CHECKING:
    from ..config import Config
    from ..security import Security
    from ..storage import Storage

log = logging.getLogger("evse_agent.ocpp")

KV = "network_profiles"
PRIORITY = VariableKey("OCPPCommCtrlr", "NetworkConfigurationPriority")
SECURITY_PROFILE = VariableKey("SecurityCtrlr", "SecurityProfile")
ACTIVE = VariableKey("OCPPCommCtrlr", "ActiveNetworkProfile")
ATTEMPTS = VariableKey("OCPPCommCtrlr", "NetworkProfileConnectionAttempts")
TIMEOUT = VariableKey("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default")
VERSIONS = {"OCPP20": ["2.0.1"], "OCPP16": ["1.6"]}
TRIAL_SLOT = 0  # a 1.6 SecurityProfile raise on trial (no slots in 1.6)


@dataclass(frozen=True)
class NetworkProfile:
    slot: int
    csms_url: str  # without the station id
    versions: tuple[str, ...]
    security_profile: int
    message_timeout: int
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:  # for the log: no secrets in here
        return f"slot {self.slot} ({self.csms_url}, security profile {self.security_profile})"


def scheme_problem(url: str, security_profile: int) -> str | None:
    """Profiles 2 and 3 are TLS (wss), 0 and 1 plain ws: a mismatch is an error."""
    parts = urlsplit(url)
    want = "wss" if security_profile >= 2 else "ws"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return f"not a ws:// or wss:// URL: {url!r}"
    if parts.scheme != want:
        return f"security profile {security_profile} needs a {want}:// URL"
    return None


class NetworkProfiles:
    def __init__(
        self, cfg: Config, storage: Storage, dm: DeviceModel, security: Security | None
    ) -> None:
        self.cfg = cfg
        self.storage = storage
        self.dm = dm
        self.security = security
        self._factory_timeout = int(dm.get("OCPPCommCtrlr", "MessageTimeout", "Default"))
        stored = storage.get(KV) or {}
        self._slots: dict[str, dict[str, Any]] = dict(stored.get("slots", {}))
        self._removed: set[int] = set(stored.get("removed", []))
        self._last_good: int | None = stored.get("last_good")
        self._trial: NetworkProfile | None = None
        self.current: NetworkProfile | None = None
        # The TOML may raise the profile (a new factory setting); it never lowers what
        # the CSMS raised (the persisted SecurityProfile won in the device model).
        if cfg.security_profile > self.minimum:
            dm.set_live(SECURITY_PROFILE, cfg.security_profile)

    # -- the table -------------------------------------------------------------------------
    @property
    def minimum(self) -> int:
        """SecurityCtrlr.SecurityProfile: no connection below it, ever."""
        return int(self.dm.get("SecurityCtrlr", "SecurityProfile") or 0)

    def table(self) -> dict[int, NetworkProfile]:
        out: dict[int, NetworkProfile] = {}
        if 1 not in self._removed:
            seed: dict[str, Any] = {
                "ocppCsmsUrl": self.cfg.csms_url,
                "securityProfile": self.cfg.security_profile,
                "messageTimeout": self._factory_timeout,
            }
            seed.update(self._slots.get("1", {}))
            versions = (
                ["2.0.1", "1.6"] if self.cfg.ocpp_version == "auto" else [self.cfg.ocpp_version]
            )
            out[1] = self._profile(1, seed, versions if "ocppVersion" not in seed else None)
        for text, data in self._slots.items():
            slot = int(text)
            if slot != 1 and slot not in self._removed:
                out[slot] = self._profile(slot, data)
        return out

    def _profile(
        self, slot: int, data: dict[str, Any], versions: list[str] | None = None
    ) -> NetworkProfile:
        return NetworkProfile(
            slot,
            str(data["ocppCsmsUrl"]).rstrip("/"),
            tuple(versions or VERSIONS.get(str(data.get("ocppVersion")), ["2.0.1"])),
            int(data["securityProfile"]),
            int(data.get("messageTimeout") or self._factory_timeout),
            data,
        )

    def priority(self) -> list[int]:
        return [int(s) for s in self.dm.members("OCPPCommCtrlr", "NetworkConfigurationPriority")
                if s.isdigit()]

    def candidates(self) -> list[NetworkProfile]:
        """What to try, in order: a 1.6 trial first, the priority list, then the slot of
        the last good connection; never a profile below the SecurityProfile."""
        table = self.table()
        order = [table[s] for s in self.priority() if s in table]
        if self._trial is not None:
            order.insert(0, self._trial)
        if self._last_good in table and table[self._last_good] not in order:
            order.append(table[self._last_good])
        if not order and table:  # a priority naming no slot: the lowest slot keeps us reachable
            order = [table[min(table)]]
        usable = [p for p in order if p.security_profile >= self.minimum]
        for p in order:
            if p not in usable:
                log.warning("network profile %s is below SecurityProfile %d: not used",
                            p.describe(), self.minimum)
        return usable

    def attempts(self) -> Attempts:
        return Attempts(self)

    # -- connection results ----------------------------------------------------------------
    def connected(self, profile: NetworkProfile) -> NetworkProfile:
        """A connection with `profile` is up (TLS and authentication passed); returns
        the profile as the table now holds it."""
        slot = profile.slot
        if slot == TRIAL_SLOT:  # 1.6: the raised profile works: it becomes the slot's
            slot = self._trial_slot()
            self._slots.setdefault(str(slot), {}).update(
                securityProfile=profile.security_profile, ocppCsmsUrl=profile.csms_url
            )
            self._trial = None
        self._last_good = slot
        self.dm.set_live(ACTIVE, slot)
        self.dm.set_live(TIMEOUT, profile.message_timeout)
        if profile.security_profile > self.minimum:  # A05.FR.06 (1.6 A05.FR.09)
            log.warning("security profile raised from %d to %d", self.minimum,
                        profile.security_profile)
            self.dm.set_live(SECURITY_PROFILE, profile.security_profile, persist=True)
            lower = [p.slot for p in self.table().values()
                     if p.security_profile < profile.security_profile]
            self._removed.update(lower)
            for gone in lower:
                self._slots.pop(str(gone), None)
            remaining = [s for s in self.priority() if s not in lower] or [slot]
            self.dm.set_live(PRIORITY, ",".join(str(s) for s in remaining), persist=True)
        self._save()
        self.current = self.table().get(slot, profile)
        return self.current

    def trial_failed(self) -> None:
        """1.6 A05.FR.08: the raised profile did not connect: back to the previous one."""
        if self._trial is not None:
            log.warning("security profile %d could not connect: falling back to %d",
                        self._trial.security_profile, self.minimum)
            self._trial = None

    def _trial_slot(self) -> int:
        return self._last_good or (self.priority() or [1])[0]

    def _save(self) -> None:
        self.storage.put(KV, {"slots": self._slots, "removed": sorted(self._removed),
                              "last_good": self._last_good})

    # -- B09 SetNetworkProfile ----------------------------------------------------------------
    def set_network_profile(self, slot: int, data: dict[str, Any]) -> tuple[str, str | None]:
        """(status, reason): Accepted, Rejected (B09.FR.02/04/05) or Failed (B09.FR.03)."""
        var = self.dm.find(PRIORITY)
        allowed = [v for v in (var.values_list or "").split(",") if v] if var else []
        if str(slot) not in allowed:
            return "Rejected", f"configurationSlot {slot} not in {','.join(allowed)} (B09.FR.05)"
        problem = self.check_data(data)
        if problem is not None:
            return "Rejected", problem
        try:
            self._slots[str(slot)] = dict(data)
            self._removed.discard(slot)
            self._save()
        except Exception as err:  # the database refused: nothing half-stored counts
            log.error("SetNetworkProfile slot %d not stored: %s", slot, err)
            return "Failed", "cannot store"
        log.info("network profile slot %d set: %s", slot, self.table()[slot].describe())
        return "Accepted", None

    def check_data(self, data: dict[str, Any]) -> str | None:
        profile = int(data.get("securityProfile", -1))
        if not 0 <= profile <= 3:
            return "securityProfile must be 0..3"
        if profile < self.minimum:  # B09.FR.04
            return f"securityProfile {profile} is below SecurityProfile {self.minimum}"
        if data.get("ocppTransport") != "JSON":
            return "only ocppTransport JSON is supported"
        if data.get("ocppVersion") not in VERSIONS:
            return f"ocppVersion {data.get('ocppVersion')} is not supported (OCPP16, OCPP20)"
        return scheme_problem(str(data.get("ocppCsmsUrl", "")), profile)

    # -- B10 NetworkConfigurationPriority ---------------------------------------------------------
    def check_priority(self, text: str) -> str | None:
        """Why SetVariables NetworkConfigurationPriority = `text` is Rejected (B10.FR.02,
        A05.FR.02/03), or None."""
        table = self.table()
        slots = [s.strip() for s in text.split(",") if s.strip()]
        for s in slots:
            if not s.isdigit() or int(s) not in table:
                return f"slot {s} holds no network connection profile"
            profile = table[int(s)]
            if profile.security_profile < self.minimum:
                return f"slot {s} is below SecurityProfile {self.minimum}"
            if profile.security_profile >= 2 and (reason := self._tls_problem(profile)):
                return f"slot {s}: {reason}"
        return None

    def _tls_problem(self, profile: NetworkProfile) -> str | None:
        if self.security is None:
            return "no security store"
        from ..security.tls import can_use_profile

        return can_use_profile(profile.security_profile, self.security)

    # -- 1.6 ChangeConfiguration SecurityProfile -----------------------------------------------
    def raise_security_profile_16(self, text: str) -> tuple[str, str]:
        """(status, why) for ChangeConfiguration SecurityProfile (whitepaper A05.FR.01-05):
        Accepted only for a higher profile whose prerequisites hold; the caller then
        reconnects (A05.FR.06/07)."""
        try:
            value = int(text)
        except ValueError:
            return "Rejected", "not a number"
        if value > 3:
            return "Rejected", "profiles are 0 to 3"
        if value <= self.minimum:
            return "Rejected", f"not above the current {self.minimum} (A05.FR.01)"
        if value <= 2 and not self.dm.get("SecurityCtrlr", "BasicAuthPassword"):
            return "Rejected", "no AuthorizationKey set (A05.FR.02)"
        base = self.current or (self.candidates() or [None])[0]
        if base is None:
            return "Rejected", "no network profile to raise"
        parts = urlsplit(base.csms_url)
        scheme = "wss" if value >= 2 else "ws"
        url = parts._replace(scheme=scheme).geturl()
        trial = NetworkProfile(TRIAL_SLOT, url, base.versions, value, base.message_timeout,
                               {**base.data, "ocppCsmsUrl": url, "securityProfile": value})
        if value >= 2 and (problem := self._tls_problem(trial)):
            return "Rejected", f"{problem} (A05.FR.03/04)"
        self._trial = trial
        log.info("security profile %d accepted: reconnecting with it", value)
        return "Accepted", ""

    def secrets(self) -> list[str]:
        out = []
        for data in self._slots.values():
            out += [str((data.get("vpn") or {}).get("password") or ""),
                    str((data.get("apn") or {}).get("apnPassword") or "")]
        return [s for s in out if s]


class Attempts:
    """The next profile to try after each failure (B10.FR.03/07)."""

    def __init__(self, profiles: NetworkProfiles) -> None:
        self.profiles = profiles
        self._order = profiles.candidates()
        self._index = 0
        self._failures = 0

    def next(self) -> NetworkProfile | None:
        if not self._order:
            self._order = self.profiles.candidates()
            self._index = 0
        return self._order[self._index % len(self._order)] if self._order else None

    def failed(self) -> None:
        self._failures += 1
        limit = max(1, int(self.profiles.dm.get("OCPPCommCtrlr",
                                                "NetworkProfileConnectionAttempts") or 1))
        if self._failures < limit:
            return
        current = self.next()
        if current is not None and current.slot == TRIAL_SLOT:
            self.profiles.trial_failed()
            self._order = self.profiles.candidates()
            self._index, self._failures = 0, 0
            return
        self._failures = 0
        self._index += 1
        if self._order and self._index % len(self._order) == 0:
            self._order = self.profiles.candidates()  # a new round (the table may change)
            self._index = 0
        nxt = self.next()
        if nxt is not None and nxt != current:
            log.warning("network profile %s failed %d time(s): trying %s",
                        current.describe() if current else "?", limit, nxt.describe())

    def succeeded(self, profile: NetworkProfile) -> NetworkProfile:
        profile = self.profiles.connected(profile)
        # After a drop the same profile comes first again, then the others in order.
        rest = [p for p in self.profiles.candidates() if p.slot != profile.slot]
        self._order = [profile, *rest]
        self._index, self._failures = 0, 0
        return profile


# -- the adapters' handlers ------------------------------------------------------------------
def handlers_201(
    profiles: NetworkProfiles, dm: DeviceModel, set_variables: Any
) -> dict[str, Any]:
    """SetNetworkProfile (B09), and `set_variables` (the SetVariables handler) with
    NetworkConfigurationPriority checked against the stored slots first (B10.FR.01/02,
    A05.FR.02/03): a bad priority item is Rejected, the others go through as usual."""
    from .connection import Reply
    from .provisioning import check_limits, request_key

    async def set_network_profile(p: dict[str, Any]) -> Reply:
        status, reason = profiles.set_network_profile(p["configurationSlot"], p["connectionData"])
        out: dict[str, Any] = {"status": status}
        if reason:
            log.warning("SetNetworkProfile slot %s %s: %s", p["configurationSlot"], status,
                        reason)
            out["statusInfo"] = {"reasonCode": "InvalidNetworkConf", "additionalInfo": reason}
        return Reply(out)

    def refusal(item: dict[str, Any]) -> str | None:
        found = dm.find(request_key(item))
        if found is None or found.key != PRIORITY:
            return None
        if item.get("attributeType", "Actual") != "Actual":
            return None
        return profiles.check_priority(item["attributeValue"])

    async def set_variables_checked(p: dict[str, Any]) -> Reply:
        items = p["setVariableData"]
        refusals = [refusal(item) for item in items]
        if not any(refusals):
            return await set_variables(p)  # the common case: untouched
        check_limits(dm, items, "SetVariables", "setVariableData")
        others = [item for item, why in zip(items, refusals, strict=True) if why is None]
        done = iter((await set_variables({"setVariableData": others})).payload[
            "setVariableResult"] if others else [])
        results = []
        for item, why in zip(items, refusals, strict=True):
            if why is None:
                results.append(next(done))
                continue
            log.warning("NetworkConfigurationPriority %s rejected: %s",
                        item["attributeValue"], why)
            results.append({
                "attributeStatus": "Rejected",
                "attributeType": item.get("attributeType", "Actual"),
                "component": item["component"],
                "variable": item["variable"],
                "attributeStatusInfo": {"reasonCode": "InvalidNetworkConf",
                                        "additionalInfo": why[:512]},
            })
        return Reply({"setVariableResult": results})

    return {"SetNetworkProfile": set_network_profile, "SetVariables": set_variables_checked}


def handlers_16(
    profiles: NetworkProfiles, change_configuration: Any, reconnect: Any
) -> dict[str, Any]:
    """ChangeConfiguration SecurityProfile: raised only, then a reconnect with it
    (1.6 whitepaper A05.FR.01-08); every other key goes to `change_configuration`."""
    from .connection import Reply

    async def change(p: dict[str, Any]) -> Reply:
        if str(p["key"]).casefold() != "securityprofile":
            return await change_configuration(p)
        status, why = profiles.raise_security_profile_16(str(p["value"]))
        if status != "Accepted":
            log.warning("ChangeConfiguration SecurityProfile=%s Rejected: %s", p["value"], why)
            return Reply({"status": status})

        async def after() -> None:
            reconnect()

        return Reply({"status": status}, after)

    return {"ChangeConfiguration": change}

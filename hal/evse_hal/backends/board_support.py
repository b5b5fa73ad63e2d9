"""The logic behind an EV-communication module, independent of its transport.

A module (one per EVSE) drives the control pilot, measures pilot and proximity, runs
ISO 15118 and may switch the power contactor. The station talks to it in the handful
of messages of board_messages (the shape real board-support interfaces have), carried
by a `BoardLink` (can_bridge.CanLink over CAN; a UART link would be another).
`BoardSupport` offers the HAL devices: a ControlPilot, an EvBridge (with the Plug &
Charge traffic of board_pnc) and, when the module switches power itself, a Contactor.
All three are views of one link: the first view started opens it, the last one
stopped closes it.

Supervision: we send our heartbeat (and repeat the last command) every
`heartbeat_interval_s`; when the module's heartbeat counter has not moved for
`heartbeat_timeout_s` the EV side is gone: DeviceFault("pilot", evse, "HeartbeatLost")
and the pilot reads F, so the station ends the session, offers nothing and opens the
contactor. Both are undone when the heartbeat returns and the module reports again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from evse_hal.backends import board_pnc, iec61851
from evse_hal.backends.board_devices import (
    EV_CONNECTED,
    BoardContactor,
    BoardEvBridge,
    BoardPilot,
    BoardView,
)
from evse_hal.backends.board_messages import (
    BoardLink,
    DataKind,
    EvIdentity,
    EvStatus,
    Heartbeat,
    Iso15118Data,
    ModuleMessage,
    PilotCommand,
    PilotStatus,
    Telemetry,
)
from evse_hal.clock import Clock
from evse_hal.interfaces import (
    ContactorChanged,
    DeviceError,
    DeviceFault,
    HalEvent,
    PilotChanged,
    PilotState,
)

log = logging.getLogger(__name__)

HEARTBEAT_LOST = "HeartbeatLost"
EV_REQUESTING = ("C", "D")
# Module error flag -> the HAL device and fault the station hears.
ERROR_FAULTS: dict[str, tuple[str, str]] = {
    "diode_fault": ("pilot", "diode_fault"),
    "pilot_short": ("pilot", "pilot_short"),
    "rcd_tripped": ("pilot", "rcd_tripped"),
    "proximity_invalid": ("pilot", "proximity_invalid"),
    "overtemperature": ("pilot", "overtemperature"),
    "relay_welded": ("contactor", "welded"),
    "internal": ("pilot", "module_internal_error"),
    "controller_timeout": ("pilot", "controller_timeout"),
}


# --- the logic ---------------------------------------------------------------------
class BoardSupport:
    def __init__(
        self,
        link: BoardLink,
        evse_id: int,
        clock: Clock,
        *,
        heartbeat_interval_s: float = 0.5,
        heartbeat_timeout_s: float = 2.0,
        power_switching: bool = False,
        power_confirm_timeout_s: float = 2.0,
    ) -> None:
        self.link = link
        self.evse_id = evse_id
        self.clock = clock
        self.heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.power_confirm_timeout_s = power_confirm_timeout_s
        self.pilot = BoardPilot(self)
        self.ev_bridge = BoardEvBridge(self)
        self.contactor: BoardContactor | None = BoardContactor(self) if power_switching else None

        self.status = PilotStatus(None)
        self.ev = EvStatus()
        self.evccid: str | None = None
        self.telemetry: dict[str, float] = {}
        self.data: dict[DataKind, bytes] = {}
        self.module_protocol: int | None = None
        self.command = PilotCommand()
        self.requested_a = 0.0
        self.heartbeat_lost = False
        self.reported_state: PilotState = "A"

        self._views: set[BoardView] = set()
        self._open = False
        self._task: asyncio.Task[None] | None = None
        self._counter = 0
        self._module_counter: int | None = None
        self._alive_since = 0.0  # monotonic time of the module's last heartbeat (or open)
        self._next_beat = 0.0
        self._faults: set[tuple[str, str]] = set()
        self._power_mismatch_since: float | None = None
        self._heard = asyncio.Event()
        self._data_listeners: list[Callable[[Iso15118Data], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_failing = False  # a send failed; logged once until one works again

    # -- views come and go ---------------------------------------------------------
    async def attach(self, view: BoardView) -> None:
        if not self._open:
            # A reopened link starts afresh, as a device does after start(): nothing
            # heard, nothing reported yet.
            self.status, self.reported_state = PilotStatus(None), "A"
            self.heartbeat_lost, self._module_counter = False, None
            self._faults.clear()
            self._heard.clear()
            self._forget_ev()
            await self.link.open(self._receive)
            self._open = True
            self._alive_since = self.clock.monotonic()
            self._next_beat = self._alive_since
            self._task = asyncio.create_task(self._supervise(), name=f"evse{self.evse_id}-bsp")
        self._views.add(view)

    async def detach(self, view: BoardView) -> None:
        self._views.discard(view)
        if self._views or not self._open:
            return
        self._open = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # Plug & Charge answers still in flight would write to a closed link.
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        await self.link.close()

    @property
    def is_open(self) -> bool:
        return self._open

    # -- commands ------------------------------------------------------------------
    def update_command(self, **changes: object) -> None:
        """Change the command and send it at once (it is also repeated with every
        heartbeat, so a lost frame heals)."""
        values = {**self.command.__dict__, **changes}
        self.command = PilotCommand(**values)  # type: ignore[arg-type]
        if self._open:
            try:
                self.link.send_command(self.command)
            except DeviceError as err:
                self._send_failed(err)
            else:
                self._send_worked()

    def offer(self, amps: float) -> None:
        """Offer `amps`, limited by the cable (proximity) and IEC 61851's 6..80 A."""
        if not amps >= 0 or amps == float("inf"):
            raise ValueError(f"offered current must be a finite value >= 0 A, got {amps}")
        self.requested_a = amps
        self._apply_offer()

    def _apply_offer(self) -> None:
        amps = self.requested_a
        if self.status.proximity_a:
            amps = min(amps, self.status.proximity_a)
        amps = iec61851.offered_current(amps)
        duty = iec61851.duty_for_current(amps, digital_communication=self.ev.hlc_active)
        # Not `enable`: the pilot's start sets it and its stop clears it, and a late
        # EvStatus, heartbeat loss or unplug after the stop must not switch the PWM on.
        self.update_command(duty_percent=duty, x1=duty == iec61851.NO_PWM_DUTY, max_current_a=amps)

    # -- what the module says --------------------------------------------------------
    def _receive(self, message: ModuleMessage) -> None:
        match message:
            case Heartbeat(counter=counter, protocol_version=version):
                self.module_protocol = version
                if counter != self._module_counter:  # a repeated counter is a hung module
                    self._module_counter = counter
                    self._alive_since = self.clock.monotonic()
                    self._heard.set()
                    if self.heartbeat_lost:
                        self._set_heartbeat_lost(False)
            case PilotStatus():
                self._pilot_status(message)
            case EvStatus():
                hlc_changed = message.hlc_active != self.ev.hlc_active
                self.ev = message
                if hlc_changed:
                    self._apply_offer()  # 5 % duty with ISO 15118, the nominal duty without
            case EvIdentity(evccid=evccid):
                self.evccid = evccid
            case Telemetry(values=values):
                self.telemetry.update(values)
            case Iso15118Data():
                self.data[message.kind] = message.data
                self._plug_and_charge(message)
                for listener in list(self._data_listeners):
                    listener(message)

    def _plug_and_charge(self, message: Iso15118Data) -> None:
        try:
            event = board_pnc.event_from_data(self.evse_id, message)
        except board_pnc.BadPayload as err:
            log.warning("ev_bridge: EVSE %d: bad %s payload from the module: %s",
                        self.evse_id, message.kind.name, err)
            return
        if event is not None:
            self._report("ev_bridge", event)

    def send_soon(self, data: Iso15118Data) -> None:
        """Send a long payload without waiting (for the EvBridge's synchronous
        answers); a failure is logged."""
        if not self._open:
            log.warning("ev_bridge: EVSE %d: link closed, %s not sent", self.evse_id,
                        data.kind.name)
            return
        self._spawn(self._send_logged(data))

    async def _send_logged(self, data: Iso15118Data) -> None:
        try:
            await self.link.send_data(data)
        except DeviceError as err:
            log.error("%s", err)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pilot_status(self, status: PilotStatus) -> None:
        before = self.status
        self.status = status
        for flag in sorted(before.errors ^ status.errors):
            device, fault = ERROR_FAULTS.get(flag, ("pilot", flag))
            self._set_fault(device, fault, flag in status.errors)
        if status.proximity_a != before.proximity_a and self.requested_a:
            self._apply_offer()
        if status.state is not None and status.state not in EV_CONNECTED:
            self._forget_ev()  # the EV left; what it said is void
        if (
            self.contactor is not None
            and status.power_on != before.power_on
            and not self.heartbeat_lost
        ):
            self.contactor.report(ContactorChanged(self.evse_id, status.power_on))
        self._report_pilot()

    def _report_pilot(self) -> None:
        if self.heartbeat_lost:
            state: PilotState = "F"
        elif self.status.state is None:
            return  # nothing fresh from the module yet
        else:
            state = self.status.state
        if state != self.reported_state:
            self.reported_state = state
            self.pilot.report(PilotChanged(self.evse_id, state))

    # -- supervision ---------------------------------------------------------------------
    async def _supervise(self) -> None:
        tick = min(self.heartbeat_interval_s, self.heartbeat_timeout_s / 4)
        while True:
            self.check()
            await asyncio.sleep(tick)

    def check(self) -> None:
        """Send what is due and judge the module's heartbeat and the power path now."""
        now = self.clock.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_interval_s
            self._counter = (self._counter + 1) % 256
            try:
                self.link.send_heartbeat(self._counter)
                self.link.send_command(self.command)
            except DeviceError as err:
                self._send_failed(err)
            else:
                self._send_worked()
        if not self.heartbeat_lost and now - self._alive_since > self.heartbeat_timeout_s:
            self._set_heartbeat_lost(True)
        if self.contactor is not None and not self.heartbeat_lost:
            self._check_power(now)

    def _send_failed(self, err: DeviceError) -> None:
        """A send failed (can0 down, bus-off): said once, not with every heartbeat;
        the module then misses our heartbeat and stops charging on its side."""
        if self._send_failing:
            log.debug("%s", err)
            return
        self._send_failing = True
        log.error("%s (further send errors are not logged until sending works again)", err)

    def _send_worked(self) -> None:
        if self._send_failing:
            self._send_failing = False
            log.warning("ev_bridge: EVSE %d: sending on %s works again", self.evse_id,
                        self.link.description)

    def _set_heartbeat_lost(self, lost: bool) -> None:
        self.heartbeat_lost = lost
        if lost:
            log.error(
                "ev_bridge: EVSE %d: no heartbeat from the EV module on %s for %.1f s",
                self.evse_id, self.link.description, self.heartbeat_timeout_s,
            )
            # Stale from now on; the contactor is as last seen until the module says more.
            self.status = PilotStatus(
                None, power_on=self.status.power_on, errors=self.status.errors
            )
            self._forget_ev()
            self._heard.clear()
        else:
            log.info("ev_bridge: EVSE %d: EV module heartbeat is back", self.evse_id)
        self._set_fault("pilot", HEARTBEAT_LOST, lost)
        self._report_pilot()

    def _forget_ev(self) -> None:
        if self.ev.hlc_active:
            self.ev = EvStatus()
            self._apply_offer()
        self.ev, self.evccid = EvStatus(), None
        self.data.clear()

    def _check_power(self, now: float) -> None:
        """The module switches power: it must follow our permission and the EV's
        request within power_confirm_timeout_s, or the contactor is reported."""
        wanted = self.command.allow_power_on and self.status.state in EV_REQUESTING
        on = self.status.power_on
        if wanted == on or (on and self.command.allow_power_on):
            self._power_mismatch_since = None
            # A welded contactor stays reported: it needs a person on site.
            self._set_fault("contactor", "stuck_open", False)
            return
        if self._power_mismatch_since is None:
            self._power_mismatch_since = now
        elif now - self._power_mismatch_since > self.power_confirm_timeout_s:
            self._set_fault("contactor", "welded" if on else "stuck_open", True)

    # -- faults --------------------------------------------------------------------------
    def _set_fault(self, device: str, fault: str, active: bool) -> None:
        key = (device, fault)
        if active == (key in self._faults):
            return
        (self._faults.add if active else self._faults.discard)(key)
        self._report(device, DeviceFault(device, self.evse_id, fault, active))
        if not active:
            # A station may clear every fault of a device on one clear: say again
            # which ones still hold.
            for other_device, other in sorted(self._faults):
                if other_device == device:
                    self._report(device, DeviceFault(device, self.evse_id, other, True))

    @property
    def faults(self) -> set[tuple[str, str]]:
        return set(self._faults)

    def _report(self, device: str, event: HalEvent) -> None:
        """To the view of that device when it is started, else to any started view: a
        station that starts only the pilot still hears the module's contactor faults."""
        views = sorted(self._views, key=lambda v: v.name != device)
        for view in views:
            if view.started:
                view.report(event)
                return

    # -- probe -----------------------------------------------------------------------------
    async def probe(self) -> str:
        """Open (unless open), wait for one module heartbeat, describe what it says."""
        opened_here = not self._open
        probe_view = BoardView("probe", self)
        if opened_here:
            await self.attach(probe_view)
        try:
            try:
                await asyncio.wait_for(self._heard.wait(), self.heartbeat_timeout_s)
            except TimeoutError:
                raise DeviceError(
                    f"{self.link.port}: no heartbeat from the EV module"
                    f" ({self.link.address}) within {self.heartbeat_timeout_s:g} s"
                ) from None
            # The pilot status is cyclic (100 ms in the DBC): give it a moment.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + min(1.0, self.heartbeat_timeout_s)
            while self.status.state is None and loop.time() < deadline:
                await asyncio.sleep(0.01)
            state = self.status.state or "unknown"
            cable = f", cable {self.status.proximity_a:g} A" if self.status.proximity_a else ""
            return (
                f"EV module protocol {self.module_protocol} ({self.link.address}),"
                f" pilot {state}{cable}"
            )
        finally:
            if opened_here:
                await self.detach(probe_view)

    def add_data_listener(self, listener: Callable[[Iso15118Data], None]) -> None:
        self._data_listeners.append(listener)

"""The HAL devices an EV-communication module stands behind: views of one
BoardSupport (see board_support), which owns the link and the logic.

- BoardPilot: ControlPilot (PilotChanged from the module; offered current as PWM duty)
- BoardContactor: Contactor, when the module switches power itself
- BoardEvBridge: EvBridge (what the EV says over ISO 15118, Plug & Charge answers)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from evse_hal.backends import board_pnc, iec61851
from evse_hal.backends.board_messages import DataKind, Iso15118Data
from evse_hal.interfaces import Emit, HalEvent, OcspRequestData, PilotState

if TYPE_CHECKING:
    from evse_hal.backends.board_support import BoardSupport

EV_CONNECTED = ("B", "C", "D")


class BoardView:
    """One HAL device backed by the shared module link."""

    def __init__(self, name: str, board: BoardSupport) -> None:
        self.name = name
        self.board = board
        self.evse_id = board.evse_id
        self._emit: Emit | None = None

    @property
    def started(self) -> bool:
        return self._emit is not None

    async def start(self, emit: Emit) -> None:
        await self.board.attach(self)
        self._emit = emit

    async def stop(self) -> None:
        self._emit = None
        await self.board.detach(self)

    def report(self, event: HalEvent) -> None:
        if self._emit is not None:
            self._emit(event)

    async def probe(self) -> str:
        return await self.board.probe()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} evse={self.evse_id} on {self.board.link.description}>"


class BoardPilot(BoardView):
    """ControlPilot: PilotChanged from the module; offered current as PWM duty."""

    def __init__(self, board: BoardSupport) -> None:
        super().__init__("pilot", board)

    async def start(self, emit: Emit) -> None:
        await super().start(emit)
        self.board.update_command(enable=True)

    async def stop(self) -> None:
        # The port goes off before the link closes: no PWM, no power, state F or E.
        self.board.requested_a = 0.0
        self.board.update_command(
            enable=False, x1=True, duty_percent=iec61851.NO_PWM_DUTY, allow_power_on=False,
            max_current_a=0.0,
        )
        await super().stop()

    async def set_offered_current(self, amps: float) -> None:
        self.board.offer(amps)

    async def force_state_f(self, on: bool) -> None:
        """Pilot at -12 V (EVSE not available), for faults the station wants the EV to see."""
        self.board.update_command(state_f=on)

    @property
    def state(self) -> PilotState:
        return self.board.reported_state

    @property
    def offered_current_a(self) -> float:
        return self.board.command.max_current_a


class BoardContactor(BoardView):
    """Contactor when the module switches power: close() allows power on (the module
    closes when the EV asks, state C/D); `closed` is the module's mirror contact."""

    def __init__(self, board: BoardSupport) -> None:
        super().__init__("contactor", board)

    async def stop(self) -> None:
        self.board.update_command(allow_power_on=False)
        await super().stop()

    async def close(self) -> None:
        self.board.update_command(allow_power_on=True)

    async def open(self) -> None:
        self.board.update_command(allow_power_on=False)

    @property
    def closed(self) -> bool:
        return self.board.status.power_on


class BoardEvBridge(BoardView):
    """EvBridge: what the EV said over ISO 15118, as the module relays it."""

    def __init__(self, board: BoardSupport) -> None:
        super().__init__("ev_bridge", board)

    @property
    def pilot(self) -> BoardPilot:
        return self.board.pilot

    @property
    def contactor(self) -> BoardContactor | None:
        return self.board.contactor

    @property
    def evccid(self) -> str | None:
        """The full EVCCID when the module sent one (ISO-TP), else the short form."""
        full = self.board.data.get(DataKind.EVCCID)
        if full is not None:
            return full.decode("ascii", "replace")
        return self.board.evccid

    def ev_info(self) -> dict[str, float | bool | None]:
        b = self.board
        plugged = b.reported_state in EV_CONNECTED and not b.heartbeat_lost
        needs = self.charging_needs()
        info: dict[str, float | bool | None] = {
            "plugged": plugged,
            "iso15118": plugged and b.ev.hlc_active,
            "soc_percent": b.ev.soc_percent,
            "max_current_a": b.ev.max_current_a,
            "battery_wh": b.ev.battery_wh,
            "energy_request_wh": b.ev.energy_request_wh,
        }
        for key in ("battery_wh", "energy_request_wh"):
            value = needs.get(key)
            if info[key] is None and isinstance(value, int | float):
                info[key] = float(value)
        return info

    def charging_needs(self) -> dict[str, object]:
        """The last charging needs (ISO-TP kind 0x02) as a dict; {} when none or broken."""
        raw = self.board.data.get(DataKind.CHARGING_NEEDS)
        if raw is None:
            return {}
        try:
            needs = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return {}
        return needs if isinstance(needs, dict) else {}

    def iso15118_data(self, kind: DataKind) -> bytes | None:
        """The last payload of `kind` the module sent (EXI blobs, hash data, ...)."""
        return self.board.data.get(kind)

    async def send_iso15118_data(self, kind: DataKind, data: bytes) -> None:
        await self.board.link.send_data(Iso15118Data(kind, data))

    # -- Plug & Charge answers (evse_hal.interfaces.EvBridge) -----------------------------
    def ev_certificate_response(self, status: str, exi_response: str) -> None:
        self.board.send_soon(board_pnc.ev_certificate_response(status, exi_response))

    def contract_authorization(self, status: str, certificate_status: str | None) -> None:
        self.board.send_soon(board_pnc.contract_authorization(status, certificate_status))

    def certificate_status_response(
        self, request: OcspRequestData, status: str, ocsp_result: str | None
    ) -> None:
        self.board.send_soon(board_pnc.certificate_status_response(request, status, ocsp_result))

    def add_data_listener(self, listener: Callable[[Iso15118Data], None]) -> None:
        self.board.add_data_listener(listener)

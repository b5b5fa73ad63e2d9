"""The raw-frame tap between a station's websocket and its `ocpp` ChargePoint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

FROM_STATION = "<-"
TO_STATION = "->"

# (station id, direction, raw frame)
FrameHook = Callable[[str, str, str], None]


class TextConnection(Protocol):
    async def recv(self) -> str | bytes: ...

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class FrameLink:
    """What the ChargePoint sees as its connection; every frame passes `observe` first.

    Tapping here rather than in the ChargePoint sees frames the `ocpp` package would
    drop or answer itself (unparsable JSON, unknown actions), which is exactly what a
    developer debugging a station needs to see.
    """

    def __init__(self, connection: TextConnection, station_id: str, observe: FrameHook):
        self._connection = connection
        self.station_id = station_id
        self._observe = observe

    async def recv(self) -> str:
        frame = await self._connection.recv()
        # OCPP-J mandates text frames; decode a stray binary one so it still shows in the log.
        text = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
        self._observe(self.station_id, FROM_STATION, text)
        return text

    async def send(self, frame: str) -> None:
        # Logged before the write so a frame that kills the connection is still on record.
        self._observe(self.station_id, TO_STATION, frame)
        await self._connection.send(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)


def format_frame_line(station_id: str, direction: str, frame: str, when: datetime) -> str:
    return f"{when.strftime('%H:%M:%S.%f')[:-3]} {station_id} {direction} {frame}"

"""Displays: drivers "terminal", "png" and "framebuffer", and the one renderer they and
the mock control API's /api/display.png share. Pillow is imported only when an image
is drawn.

Options of `[hal.display]`, by driver:
  terminal     path    where the text goes (default: standard output); a tty gets the
                       screen cleared before each redraw
               ansi    clear the screen before each redraw (default: whether the
                       stream is a tty)
  png          path    the PNG file (required); replaced atomically (temp + rename),
                       so a viewer never reads half a file
               width   pixels (default 480)
               height  pixels (default 272)
  framebuffer  device  the Linux framebuffer (default "/dev/fb0")
               sysfs   the directory holding fbN/{virtual_size,bits_per_pixel,stride}
                       (default "/sys/class/graphics")
               width, height  the area drawn, from the top left (default: the whole
                       virtual size)
               rgb_order  "rgb" (default: RGB565 / XRGB8888 as the kernel's
                       fbdev drivers use) or "bgr" for panels wired the other way round

Every driver redraws only when the text changes. A missing device, directory or
permission raises DeviceError naming the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from evse_hal.backends import OptionError, option, reject_unknown
from evse_hal.clock import Clock
from evse_hal.interfaces import DeviceError, Emit

if TYPE_CHECKING:
    from PIL import Image

FOREGROUND = (255, 255, 255)
BACKGROUND = (0, 0, 0)


# --- rendering ---------------------------------------------------------------------
def render_image(text: str, width: int, height: int) -> Image.Image:
    """`text` as white on black, word-wrapped, in the largest font size (up to a
    sixth of the height) at which it fits."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    margin = max(2, min(width, height) // 40)
    size = max(8, height // 6)
    while True:
        font = _font(size)
        lines = _wrap(text, functools.partial(draw.textlength, font=font), width - 2 * margin)
        line_height = size * 1.2
        if len(lines) * line_height <= height - 2 * margin or size <= 8:
            break
        size = max(8, int(size * 0.85))
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_height), line, fill=FOREGROUND, font=font)
    return image


def render_png(text: str, width: int = 480, height: int = 272) -> bytes:
    buffer = io.BytesIO()
    render_image(text, width, height).save(buffer, format="PNG")
    return buffer.getvalue()


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or without FreeType: fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, measure: Callable[[str], float], width: float) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and measure(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


# --- drivers -----------------------------------------------------------------------
class _TextDisplay:
    """The Display protocol; subclasses draw. show() before start() is drawn at start."""

    name = "display"
    evse_id = 0

    def __init__(self) -> None:
        self._text = ""
        self._drawn: str | None = None
        self._started = False

    @property
    def text(self) -> str:
        return self._text

    async def start(self, emit: Emit) -> None:
        await asyncio.to_thread(self._open)
        self._started = True
        await self._redraw()

    async def stop(self) -> None:
        self._started = False
        self._drawn = None
        await asyncio.to_thread(self._close)

    async def show(self, text: str) -> None:
        self._text = text
        if self._started:
            await self._redraw()

    async def _redraw(self) -> None:
        if self._text != self._drawn:
            text = self._text
            await asyncio.to_thread(self._draw, text)
            self._drawn = text

    def _open(self) -> None: ...

    def _close(self) -> None: ...

    def _draw(self, text: str) -> None:
        raise NotImplementedError


class TerminalDisplay(_TextDisplay):
    def __init__(self, path: str | None, ansi: bool | None) -> None:
        super().__init__()
        self.path = path
        self._ansi = ansi
        self._stream: IO[str] | None = None
        self._owned = False

    async def probe(self) -> str:
        self._open()
        self._close()
        return f"terminal display on {self.path or 'standard output'}"

    def _open(self) -> None:
        if self.path is None:
            self._stream, self._owned = sys.stdout, False
        else:
            try:
                self._stream = open(self.path, "a", encoding="utf-8")
            except OSError as err:
                raise DeviceError(f"display: cannot open {self.path}: {err.strerror}") from None
            self._owned = True
        if self._ansi is None:
            self._ansi = self._stream.isatty()

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and self._owned:
            stream.close()

    def _draw(self, text: str) -> None:
        if self._stream is None:
            return
        if not self._ansi and not text:
            return  # a blank screen is nothing to print on a plain stream
        clear = "\x1b[H\x1b[2J" if self._ansi else ""
        try:
            self._stream.write(f"{clear}{text}\n")
            self._stream.flush()
        except OSError as err:
            raise DeviceError(f"display: writing {self.path or 'stdout'}: {err}") from None


class PngDisplay(_TextDisplay):
    def __init__(self, path: str, width: int, height: int) -> None:
        super().__init__()
        self.path = Path(path)
        self.width = width
        self.height = height

    async def probe(self) -> str:
        self._open()
        return f"PNG display {self.width}x{self.height} at {self.path}"

    def _open(self) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            raise DeviceError(f"display: {folder} (for {self.path}) is not a directory")
        if not os.access(folder, os.W_OK):
            raise DeviceError(f"display: permission denied writing to {folder}")

    def _draw(self, text: str) -> None:
        data = render_png(text, self.width, self.height)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as err:
            raise DeviceError(f"display: writing {self.path}: {err.strerror or err}") from None


class FramebufferDisplay(_TextDisplay):
    def __init__(
        self,
        device: str,
        sysfs: str,
        size: tuple[int | None, int | None],
        rgb_order: str,
    ) -> None:
        super().__init__()
        self.device = device
        self._sysfs = Path(sysfs) / Path(device).name
        self._size = size
        self._bgr = rgb_order == "bgr"
        self._fd: int | None = None
        self.width = self.height = self.bpp = self.stride = 0

    async def probe(self) -> str:
        self._open()
        self._close()
        return f"framebuffer {self.device} {self.width}x{self.height} {self.bpp} bpp"

    def _open(self) -> None:
        self._geometry()
        try:
            self._fd = os.open(self.device, os.O_WRONLY)
        except FileNotFoundError:
            raise DeviceError(f"display: no framebuffer {self.device}") from None
        except PermissionError:
            raise DeviceError(
                f"display: permission denied on {self.device} (add the user to the video group)"
            ) from None
        except OSError as err:
            raise DeviceError(f"display: cannot open {self.device}: {err.strerror}") from None

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _geometry(self) -> None:
        def read(name: str) -> str | None:
            try:
                return (self._sysfs / name).read_text().strip()
            except FileNotFoundError:
                return None
            except OSError as err:
                raise DeviceError(f"display: reading {self._sysfs / name}: {err}") from None

        size, bpp = read("virtual_size"), read("bits_per_pixel")
        if size is None or bpp is None:
            raise DeviceError(f"display: no framebuffer {self.device} ({self._sysfs} missing)")
        try:
            virtual_w, virtual_h = (int(v) for v in size.split(","))
            self.bpp = int(bpp)
            stride = read("stride")
            self.stride = int(stride) if stride else virtual_w * self.bpp // 8
        except ValueError:
            raise DeviceError(f"display: unreadable geometry in {self._sysfs}") from None
        if self.bpp not in (16, 24, 32):
            raise DeviceError(f"display: {self.device} has {self.bpp} bpp; 16, 24 or 32 work")
        want_w, want_h = self._size
        self.width = min(want_w or virtual_w, virtual_w)
        self.height = min(want_h or virtual_h, virtual_h)

    def _draw(self, text: str) -> None:
        if self._fd is None:
            return
        rows = self.pixels(render_image(text, self.width, self.height))
        row_bytes = self.width * self.bpp // 8
        try:
            if self.stride == row_bytes:
                os.pwrite(self._fd, rows, 0)
                return
            for y in range(self.height):  # padded rows, or an area narrower than the screen
                row = rows[y * row_bytes : (y + 1) * row_bytes]
                os.pwrite(self._fd, row, y * self.stride)
        except OSError as err:
            raise DeviceError(f"display: writing {self.device}: {err.strerror}") from None

    def pixels(self, image: Image.Image) -> bytes:
        """The image in the framebuffer's little-endian pixel format, rows unpadded."""
        from PIL import Image as PilImage
        from PIL import ImageChops

        if self.bpp == 32:
            return image.tobytes("raw", "RGBX" if self._bgr else "BGRX")
        if self.bpp == 24:
            return image.tobytes("raw", "RGB" if self._bgr else "BGR")
        red, green, blue = image.split()
        if self._bgr:
            red, blue = blue, red
        # RGB565, low byte first; the bit fields do not overlap, so adding is OR-ing.
        high = ImageChops.add(red.point(lambda v: v & 0xF8), green.point(lambda v: v >> 5))
        low = ImageChops.add(green.point(lambda v: (v & 0x1C) << 3), blue.point(lambda v: v >> 3))
        return PilImage.merge("LA", (low, high)).tobytes()


# --- create ------------------------------------------------------------------------
def _size(options: Mapping[str, Any], key: str, default: int | None) -> int | None:
    if key not in options and default is None:
        return None
    value = option(options, key, int, default)
    if not 1 <= value <= 16384:
        raise OptionError(key, "must be between 1 and 16384 pixels")
    return value


def create_terminal(options: Mapping[str, Any], evse_id: int, clock: Clock) -> TerminalDisplay:
    reject_unknown(options, {"path", "ansi"})
    path = option(options, "path", str, "") or None
    ansi = option(options, "ansi", bool, False) if "ansi" in options else None
    return TerminalDisplay(path, ansi)


def create_png(options: Mapping[str, Any], evse_id: int, clock: Clock) -> PngDisplay:
    reject_unknown(options, {"path", "width", "height"})
    width, height = _size(options, "width", 480), _size(options, "height", 272)
    assert width is not None and height is not None
    return PngDisplay(option(options, "path", str), width, height)


def create_framebuffer(
    options: Mapping[str, Any], evse_id: int, clock: Clock
) -> FramebufferDisplay:
    reject_unknown(options, {"device", "sysfs", "width", "height", "rgb_order"})
    order = option(options, "rgb_order", str, "rgb")
    if order not in ("rgb", "bgr"):
        raise OptionError("rgb_order", 'expected "rgb" or "bgr"')
    return FramebufferDisplay(
        option(options, "device", str, "/dev/fb0"),
        option(options, "sysfs", str, "/sys/class/graphics"),
        (_size(options, "width", None), _size(options, "height", None)),
        order,
    )


DRIVERS: dict[str, Callable[[Mapping[str, Any], int, Clock], _TextDisplay]] = {
    "terminal": create_terminal,
    "png": create_png,
    "framebuffer": create_framebuffer,
}


def create(
    options: Mapping[str, Any], evse_id: int, clock: Clock, driver: str | None = None
) -> _TextDisplay:
    """The backend convention's entry point. One module serves three driver names: the
    caller passes which as `driver`, or leaves it in `options["driver"]` (a section
    passed whole), or calls DRIVERS[name] directly."""
    rest = {k: v for k, v in options.items() if k != "driver"}
    name = driver if driver is not None else option(options, "driver", str)
    if name not in DRIVERS:
        raise OptionError("driver", f"expected one of {', '.join(DRIVERS)}, got {name!r}")
    return DRIVERS[name](rest, evse_id, clock)

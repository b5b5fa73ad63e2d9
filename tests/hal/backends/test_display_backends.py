"""Display drivers "terminal", "png" and "framebuffer" (issue 7 item 5): a real pty for
the terminal, PNG files decoded with Pillow, and a regular file standing in for
/dev/fb0 with fake sysfs geometry."""

from __future__ import annotations

import io
import os
import pty
from pathlib import Path
from typing import Any

import pytest
from evse_hal.backends import OptionError
from evse_hal.backends.display import (
    FramebufferDisplay,
    create,
    render_image,
    render_png,
)
from evse_hal.clock import FakeClock
from evse_hal.interfaces import DeviceError
from PIL import Image

TEXT = "EVSE 1: charging, meter 12.34 kWh | EVSE 2: available"


def make(driver: str, **options: Any) -> Any:
    return create(options, 0, FakeClock(), driver=driver)


# --- renderer ----------------------------------------------------------------------
def test_render_png_decodes_with_the_right_size_and_shows_the_text() -> None:
    image = Image.open(io.BytesIO(render_png(TEXT, 320, 240)))
    assert (image.format, image.size) == ("PNG", (320, 240))
    assert image.convert("L").getbbox() is not None  # something is drawn
    blank = Image.open(io.BytesIO(render_png("", 320, 240)))
    assert blank.convert("L").getbbox() is None


def test_long_text_is_wrapped_inside_the_image() -> None:
    image = render_image(TEXT * 3, 160, 120)
    left, top, right, bottom = image.convert("L").getbbox() or (0, 0, 0, 0)
    assert right < 160 and bottom < 120 and bottom - top > 30  # several lines


# --- terminal ----------------------------------------------------------------------
async def test_terminal_redraws_only_on_change(tmp_path: Path) -> None:
    path = tmp_path / "display.txt"
    display = make("terminal", path=str(path))
    await display.show("EVSE 1: available")  # before start: drawn at start
    await display.start(lambda e: None)
    await display.show("EVSE 1: available")
    await display.show("EVSE 1: tap your card")
    await display.stop()
    assert path.read_text() == "EVSE 1: available\nEVSE 1: tap your card\n"
    assert display.text == "EVSE 1: tap your card"


async def test_terminal_on_a_tty_clears_the_screen() -> None:
    master, slave = pty.openpty()
    try:
        display = make("terminal", path=os.ttyname(slave))
        await display.start(lambda e: None)
        await display.show("EVSE 1: charging")
        await display.stop()
        out = os.read(master, 4096)
        assert out == b"\x1b[H\x1b[2J\r\n\x1b[H\x1b[2JEVSE 1: charging\r\n"
    finally:
        os.close(master)
        os.close(slave)


async def test_terminal_on_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    display = make("terminal")
    await display.start(lambda e: None)
    await display.show("hello")
    await display.stop()
    assert capsys.readouterr().out == "hello\n"


async def test_terminal_path_that_cannot_be_opened(tmp_path: Path) -> None:
    display = make("terminal", path=str(tmp_path / "no" / "tty"))
    with pytest.raises(DeviceError, match=f"display: cannot open {tmp_path}/no/tty"):
        await display.start(lambda e: None)


# --- png ---------------------------------------------------------------------------
async def test_png_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "display.png"
    display = make("png", path=str(path), width=200, height=100)
    await display.start(lambda e: None)
    first = Image.open(path)
    assert first.size == (200, 100) and first.convert("L").getbbox() is None
    await display.show(TEXT)
    shown = Image.open(path)
    assert shown.size == (200, 100) and shown.convert("L").getbbox() is not None
    stamp = path.stat().st_mtime_ns
    await display.show(TEXT)  # unchanged: not rewritten
    assert path.stat().st_mtime_ns == stamp
    assert sorted(os.listdir(tmp_path)) == ["display.png"]  # no temp files left
    await display.stop()


async def test_png_in_a_missing_directory(tmp_path: Path) -> None:
    display = make("png", path=str(tmp_path / "missing" / "display.png"))
    with pytest.raises(DeviceError, match="missing"):
        await display.start(lambda e: None)
    with pytest.raises(DeviceError, match="missing"):
        await display.probe()


# --- framebuffer -------------------------------------------------------------------
def fake_fb(tmp_path: Path, width: int, height: int, bpp: int, stride: int) -> dict[str, str]:
    sysfs = tmp_path / "graphics"
    (sysfs / "fb0").mkdir(parents=True)
    (sysfs / "fb0" / "virtual_size").write_text(f"{width},{height}\n")
    (sysfs / "fb0" / "bits_per_pixel").write_text(f"{bpp}\n")
    (sysfs / "fb0" / "stride").write_text(f"{stride}\n")
    device = tmp_path / "fb0"
    device.write_bytes(b"\xaa" * stride * height)
    return {"device": str(device), "sysfs": str(sysfs)}


def lit_pixel(image: Image.Image) -> tuple[int, int]:
    """The first pixel that is neither background nor fully white."""
    for y in range(image.height):
        for x in range(image.width):
            if image.getpixel((x, y)) not in ((0, 0, 0), (255, 255, 255)):
                return x, y
    raise AssertionError("nothing drawn")


def rgb565(r: int, g: int, b: int) -> bytes:
    return ((r >> 3) << 11 | (g >> 2) << 5 | b >> 3).to_bytes(2, "little")


async def test_framebuffer_16_bpp(tmp_path: Path) -> None:
    options = fake_fb(tmp_path, 64, 32, 16, 128)
    display = make("framebuffer", **options)
    assert await display.probe() == f"framebuffer {options['device']} 64x32 16 bpp"
    await display.start(lambda e: None)
    await display.show("Hi")
    await display.stop()
    data = Path(options["device"]).read_bytes()
    image = render_image("Hi", 64, 32)
    x, y = lit_pixel(image)
    offset = y * 128 + x * 2
    assert data[offset : offset + 2] == rgb565(*image.getpixel((x, y)))
    assert data[0:2] == b"\x00\x00"  # background, written
    assert len(data) == 128 * 32


async def test_framebuffer_32_bpp_with_padded_rows(tmp_path: Path) -> None:
    options = fake_fb(tmp_path, 30, 20, 32, 128)  # rows of 120 bytes, stride 128
    display = make("framebuffer", **options)
    await display.start(lambda e: None)
    await display.show("Hi")
    await display.stop()
    data = Path(options["device"]).read_bytes()
    image = render_image("Hi", 30, 20)
    x, y = lit_pixel(image)
    r, g, b = image.getpixel((x, y))
    offset = y * 128 + x * 4
    assert data[offset : offset + 4] == bytes((b, g, r, 0))  # XRGB8888, little endian
    assert data[120:128] == b"\xaa" * 8  # the padding is not ours


def test_pixel_formats_at_known_colours() -> None:
    image = Image.new("RGB", (2, 1), (255, 0, 0))
    image.putpixel((1, 0), (0, 0, 255))
    fb = FramebufferDisplay("/dev/fb0", "/sys/class/graphics", (None, None), "rgb")
    fb.bpp = 16
    assert fb.pixels(image) == bytes((0x00, 0xF8, 0x1F, 0x00))
    fb.bpp = 32
    assert fb.pixels(image) == bytes((0, 0, 255, 0, 255, 0, 0, 0))
    swapped = FramebufferDisplay("/dev/fb0", "/sys/class/graphics", (None, None), "bgr")
    swapped.bpp = 16
    assert swapped.pixels(image) == bytes((0x1F, 0x00, 0x00, 0xF8))


async def test_framebuffer_missing_device_names_the_path(tmp_path: Path) -> None:
    options = fake_fb(tmp_path, 64, 32, 16, 128)
    os.unlink(options["device"])
    display = make("framebuffer", **options)
    with pytest.raises(DeviceError, match=f"no framebuffer {options['device']}$"):
        await display.start(lambda e: None)
    nothing = make("framebuffer", device="/dev/fb7", sysfs=str(tmp_path / "none"))
    with pytest.raises(DeviceError, match="no framebuffer /dev/fb7"):
        await nothing.probe()


async def test_framebuffer_unsupported_depth(tmp_path: Path) -> None:
    display = make("framebuffer", **fake_fb(tmp_path, 64, 32, 8, 64))
    with pytest.raises(DeviceError, match="8 bpp"):
        await display.probe()


# --- create ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("driver", "options", "key"),
    [
        ("png", {}, "path"),
        ("png", {"path": "x.png", "width": 0}, "width"),
        ("terminal", {"colour": True}, "colour"),
        ("framebuffer", {"rgb_order": "grb"}, "rgb_order"),
        ("lcd", {}, "driver"),
    ],
)
def test_option_errors_name_the_option(driver: str, options: dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError) as caught:
        make(driver, **options)
    assert caught.value.key == key


def test_driver_from_the_section() -> None:
    display = create({"driver": "png", "path": "/tmp/x.png"}, 0, FakeClock())
    assert type(display).__name__ == "PngDisplay"

"""Fixtures and helpers every test directory may use.

The loopback simulators of the backend tests (rfid_support, meter_support in
tests/hal/backends) serve the unit and end-to-end tests too: one copy each.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from gpiozero.pins.mock import MockFactory

SUPPORT = str(Path(__file__).resolve().parent / "hal" / "backends")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """gpiozero's MockFactory as the pin factory of every Device for one test; the
    previous factory is back afterwards, every pin released."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    mock = MockFactory()
    Device.pin_factory = mock
    try:
        yield mock
    finally:
        mock.reset()
        Device.pin_factory = previous

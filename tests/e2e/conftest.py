"""Fixtures for the end-to-end tests (see e2e_support)."""

from e2e_support import csms, station_factory

__all__ = ["csms", "station_factory"]

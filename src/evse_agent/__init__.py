"""evse-agent: station-side software of an EV charging station."""

__version__ = "0.1.0"

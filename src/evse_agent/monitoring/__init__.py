"""Monitoring (OCPP 2.0.1 functional block N): variable monitors, hard-wired monitors
for hardware faults, NotifyEvent and NotifyMonitoringReport. Sans-I/O; see engine.py."""

from .engine import MonitoringEngine

__all__ = ["MonitoringEngine"]

"""Simulated IoT devices: realistic signals, injected anomalies and malformed messages, with ground truth."""

from engine.sim.devices import Fleet, FleetConfig, Label, SimMessage

__all__ = ["Fleet", "FleetConfig", "Label", "SimMessage"]

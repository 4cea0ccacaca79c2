"""Connectors: MQTT sources and publishers, in-memory sources, message decoding and the per-device
window state the IoT flow keeps. Import the submodules you need (this package imports nothing, so the
server can use `engine.connectors.mqtt` without pulling in Bytewax)."""

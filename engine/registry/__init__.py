"""The model registry: versioned artifacts with manifests and an append-only live history (stdlib + msgspec)."""

from engine.registry.errors import HistoryError, RegistryError, UnknownModelError
from engine.registry.manifest import DataInfo, HistoryEntry, ImageInput, Manifest, TensorSpec
from engine.registry.store import LiveState, Registry, default_registry_path, sha256_file

__all__ = [
    "DataInfo",
    "HistoryEntry",
    "HistoryError",
    "ImageInput",
    "LiveState",
    "Manifest",
    "Registry",
    "RegistryError",
    "TensorSpec",
    "UnknownModelError",
    "default_registry_path",
    "sha256_file",
]

"""The server's one frozen configuration, built at the edge (CLI, TOML, environment) and passed in.

    # serve.toml (every key optional; a [serve] table or top-level keys)
    [serve]
    registry = "registry"
    host = "127.0.0.1"
    port = 8000
    models = ["churn"]          # ONNX models for /v1/predict; empty = every tabular ONNX model in the registry
    recommender = "recommender" # the recommender's registry name; "" = no recommendations endpoint
    spool_dir = "spool"         # accepted/rejected interactions for the interactions flow; "" = none
    state_file = ""             # real-time state written by the interactions flow (warm start); "" = none
    admin_token = ""            # prefer $TIDEGATE_ADMIN_TOKEN; empty = admin endpoints disabled

Precedence: command-line flags > environment ($TIDEGATE_REGISTRY, $TIDEGATE_ADMIN_TOKEN) > file > defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from engine.errors import UsageError

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class ServeConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything `tidegate serve` needs. Paths are strings ("" = off) so the object encodes to JSON as is."""

    registry: str = "registry"
    host: str = "127.0.0.1"
    port: Port = 8000
    models: tuple[str, ...] = ()
    recommender: str = "recommender"
    spool_dir: str = ""
    state_file: str = ""
    admin_token: str = ""
    ort_threads: Positive = 1  # intra-op threads per ONNX session (one core per server process)
    max_instances: Positive = 1024  # rows per /v1/predict request
    max_body_bytes: Positive = 4 * 1024 * 1024  # request body cap of the fast routes (413 above)
    predict_batch_rows: Positive = 256  # rows per coalesced ONNX call (engine.serve.batching); 1 = none
    predict_batch_wait: NonNegative = 8  # event-loop iterations a batch may wait for more requests (0: none)
    max_interactions: Positive = 1000  # records per /v1/interactions request
    max_k: Positive = 100
    recent_items: Positive = 50  # real-time items kept per user
    max_users: Positive = 100_000  # users kept in the real-time state (least recently active evicted)
    watch_interval_s: float = 1.0  # how often the registry's live history is checked for promotes (0 = never)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    dashboard_mqtt: str = ""  # broker URL of the IoT flow's live topic: mounts /dashboard ("" = no dashboard)
    live_topic: str = "tidegate/live"

    def __repr__(self) -> str:  # never print the token
        shown = msgspec.structs.replace(self, admin_token="***" if self.admin_token else "")
        fields = ", ".join(f"{f}={getattr(shown, f)!r}" for f in self.__struct_fields__)
        return f"ServeConfig({fields})"

    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_token)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> ServeConfig:
        return msgspec.json.decode(data, type=cls)


def load_config(path: Path | None = None, *, env: Mapping[str, str] | None = None, **overrides: Any) -> ServeConfig:
    """File (optional) < environment < overrides (None values are ignored); UsageError naming the bad key."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            msg = f"cannot read the server config {path}: {exc}"
            raise UsageError(msg) from exc
        values.update(doc.get("serve", doc))
    env = env or {}
    if env.get("TIDEGATE_REGISTRY"):
        values["registry"] = env["TIDEGATE_REGISTRY"]
    if env.get("TIDEGATE_ADMIN_TOKEN"):
        values["admin_token"] = env["TIDEGATE_ADMIN_TOKEN"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("registry", "spool_dir", "state_file"):
        if isinstance(values.get(key), Path):
            values[key] = str(values[key])
    try:
        return msgspec.convert(values, ServeConfig)
    except msgspec.ValidationError as exc:
        where = f" in {path}" if path else ""
        msg = f"bad server config{where}: {exc}"
        raise UsageError(msg) from exc

"""A tabular model's instances as a typed msgspec Struct built from its manifest, and its ONNX feeds.

`/v1/predict` decodes the body straight into `{"instances": [Instance, …]}` with a decoder built for the
model, so msgspec checks every value's type in C while it parses (no Python pass per value), and the feeds
are built a column group at a time from the rows' tuples (one numpy call per dtype, views per input):

    number input   float | null, within the dtype's range (null: NaN)
    int64 input    int in the int64 range (no null: the model has no missing-value convention for it)
    string input   str | null (null: "")

Every input column is required (send null for an unknown value); other keys are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Annotated, Any

import msgspec
import numpy as np

from engine.registry import Manifest

_F32_MAX = float(np.finfo(np.float32).max)
_TYPES: dict[str, Any] = {
    "float32": Annotated[float, msgspec.Meta(ge=-_F32_MAX, le=_F32_MAX)] | None,
    "float64": float | None,
    "int64": Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)],
    "string": str | None,
}
_NUMPY: dict[str, Any] = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "string": object}
_AT = re.compile(r" - at `\$\.?(.*)`$")
_MISSING = re.compile(r"^Object missing required field `(.*)`")


class BadInput(Exception):
    """A request value the model cannot take; `field` says where (e.g. `instances[2].tenure_months`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field + ": " + message if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class _Group:
    """The inputs of one dtype: where they sit in an instance's tuple and their ONNX names."""

    dtype: Any
    take: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    names: tuple[str, ...]
    nullable_strings: bool


class Instances:
    """The instance type of one model, its request decoder, and how decoded rows become ONNX feeds."""

    def __init__(self, manifest: Manifest) -> None:
        columns = [i.column or i.name for i in manifest.inputs]
        fields = [(f"f{j}", _TYPES[i.dtype]) for j, i in enumerate(manifest.inputs)]
        self.row_type: type[msgspec.Struct] = msgspec.defstruct(
            "Instance", fields, rename={f"f{j}": c for j, c in enumerate(columns)}, frozen=True
        )
        request = msgspec.defstruct(
            "PredictRequest", [("instances", list[self.row_type])], forbid_unknown_fields=True, frozen=True
        )
        self._decoder = msgspec.json.Decoder(request)
        self._rows = list[self.row_type]  # type: ignore[name-defined]
        groups = []
        for dtype in dict.fromkeys(i.dtype for i in manifest.inputs):
            idx = [j for j, i in enumerate(manifest.inputs) if i.dtype == dtype]
            take = itemgetter(*idx) if len(idx) > 1 else (lambda t, j=idx[0]: (t[j],))
            names = tuple(manifest.inputs[j].name for j in idx)
            groups.append(_Group(_NUMPY[dtype], take, names, dtype == "string"))
        self._groups = tuple(groups)
        self.blank = {c: (0 if i.dtype == "int64" else None) for c, i in zip(columns, manifest.inputs, strict=True)}

    def decode(self, body: bytes) -> list[Any]:
        """The request body's instances; BadInput naming the field (e.g. `instances[0].contract`)."""
        try:
            return self._decoder.decode(body).instances  # type: ignore[attr-defined,no-any-return]
        except msgspec.ValidationError as exc:
            raise _bad(str(exc)) from None

    def rows(self, instances: Sequence[dict[str, Any]]) -> list[Any]:
        """Instances given as dicts (as in JSON), checked the same way as a decoded body."""
        try:
            return msgspec.convert(list(instances), self._rows, strict=True)
        except msgspec.ValidationError as exc:
            raise _bad(str(exc), "$.instances") from None

    def feeds(self, rows: Sequence[Any]) -> dict[str, np.ndarray]:
        """The ONNX feeds ([n, 1] per input) for decoded rows."""
        tuples = [msgspec.structs.astuple(r) for r in rows]
        out: dict[str, np.ndarray] = {}
        for g in self._groups:
            flat = list(chain.from_iterable(map(g.take, tuples)))  # row-major; a flat list converts fastest
            if g.nullable_strings and None in flat:
                flat = ["" if x is None else x for x in flat]
            block = np.array(flat, dtype=g.dtype).reshape(len(tuples), len(g.names)).T.copy()  # None -> NaN
            for i, name in enumerate(g.names):
                out[name] = block[i : i + 1].T  # [n, 1], a contiguous view
        return out


def _bad(text: str, root: str = "$") -> BadInput:
    """msgspec's message as a BadInput naming the field the way requests name it."""
    at = _AT.search(text)
    path = at.group(1) if at else ""
    if root != "$":
        path = "instances" + path if path.startswith("[") else ("instances." + path if path else "instances")
    message = text[: at.start()] if at else text
    missing = _MISSING.match(message)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
        message = "missing column (send null for an unknown value)"
    return BadInput(path, message)

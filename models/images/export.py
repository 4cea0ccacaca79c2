"""ONNX export of the trained network (with its softmax) and the parity check that gates registering it.

The graph takes `image` (N, 3, H, W) float32 — `engine.serve.classify.to_input` of the decoded image — and
returns `probabilities` (N, K); the batch size is dynamic. It is exported with torch's `torch.export`-based
exporter (onnxscript) at opset 18. Parity: ONNX Runtime vs torch (the exported network, on CPU) on the
validation images; the largest absolute difference of probabilities must be ≤ 1e-4, else ExportError.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import msgspec
import numpy as np
import torch

from engine.registry import ImageInput, TensorSpec
from models.images.errors import ExportError
from models.images.loop import predict_proba
from models.images.network import Probabilities, TransferNet
from models.training.export import Parity, session

OPSET = 18
TOLERANCE = 1e-4
INPUT = "image"
OUTPUT = "probabilities"


class ImageExport(msgspec.Struct, frozen=True, kw_only=True):
    parity: Parity
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    size_bytes: int
    opset: int
    seconds: float


def to_onnx(net: TransferNet, spec: ImageInput) -> bytes:
    """The network on CPU, in eval mode, followed by a softmax, as ONNX bytes (dynamic batch)."""
    model = Probabilities(copy.deepcopy(net).cpu()).eval()
    example = torch.zeros(2, 3, spec.height, spec.width)
    batch = torch.export.Dim("batch", min=1, max=4096)
    log = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log), torch.no_grad():
            # torch 2.13's exporter trips over its own deprecated pytree API; nothing we can change
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes=({0: batch},),
                opset_version=OPSET,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; any failure stops the run with its reason
        first = (str(exc).splitlines() or [""])[0][:200]
        msg = f"the network did not export to ONNX ({type(exc).__name__}: {first}); try another --image-size"
        raise ExportError(msg) from exc
    assert program is not None
    return bytes(program.model_proto.SerializeToString())


def check_parity(onnx_bytes: bytes, net: TransferNet, inputs: np.ndarray, *, tolerance: float = TOLERANCE) -> Parity:
    """ONNX Runtime vs torch on `inputs` (model inputs, N × 3 × H × W float32); ExportError when they disagree."""
    sess = session(onnx_bytes)
    got = np.concatenate([sess.run(None, {INPUT: inputs[i : i + 64]})[0] for i in range(0, len(inputs), 64)])
    cpu = copy.deepcopy(net).cpu()
    ref = predict_proba(cpu, torch.from_numpy(inputs), 64, torch.device("cpu"))
    diff = float(np.abs(got.astype(np.float64) - ref).max()) if len(inputs) else 0.0
    mismatches = int((got.argmax(1) != ref.argmax(1)).sum())
    parity = Parity(
        rows=len(inputs), output=OUTPUT, max_abs_diff=diff, tolerance=tolerance, label_mismatches=mismatches
    )
    if diff > tolerance:
        msg = (
            f"ONNX Runtime and torch disagree by {diff:.2e} (> {tolerance:.0e}) on {len(inputs)} validation images "
            f"({mismatches} different labels): do not serve this export"
        )
        raise ExportError(msg)
    return parity


def io_specs(onnx_bytes: bytes) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    sess = session(onnx_bytes)

    def spec(t: object) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else -1 for d in t.shape)  # type: ignore[attr-defined]
        return TensorSpec(name=t.name, dtype="float32", shape=shape)  # type: ignore[attr-defined]

    return tuple(spec(i) for i in sess.get_inputs()), tuple(spec(o) for o in sess.get_outputs())

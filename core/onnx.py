"""ONNX export and ONNX Runtime sessions shared by the stages' fast CPU path.

:func:`export_module` writes a PyTorch module to ONNX with a dynamic batch axis (the classic
TorchScript exporter: it needs no extra package), simplifies it with onnxslim, checks it with
``onnx.checker`` and compares it with PyTorch on the example inputs. :func:`create_session`
opens a model with thread settings suited to the machine.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)
OPSET = 17


class ExportMismatch(RuntimeError):
    """The ONNX model does not reproduce PyTorch within the tolerance."""


def export_module(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    atol: float = 1e-3,
) -> float:
    """Export ``module`` (eval mode) to ``path``; returns the max abs difference to PyTorch.

    Every input and output gets a dynamic batch axis named ``batch``.
    """
    import onnx
    import onnxslim

    module = module.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {name: {0: "batch"} for name in (*input_names, *output_names)}
    raw = path.with_suffix(".raw.onnx")
    with torch.no_grad():
        torch.onnx.export(module, example_inputs, str(raw), input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    slim = onnxslim.slim(str(raw))
    onnx.save(slim, str(path))
    raw.unlink(missing_ok=True)
    onnx.checker.check_model(str(path))
    diff = compare(module, example_inputs, path, output_names)
    if diff > atol:
        raise ExportMismatch(f"{path.name}: ONNX differs from PyTorch by {diff:.2e} (tolerance {atol:.0e})")
    log.info("%s: max |ONNX - PyTorch| = %.2e", path.name, diff)
    return diff


def compare(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, output_names: Sequence[str]) -> float:
    with torch.no_grad():
        reference = module(*inputs)
    if isinstance(reference, dict):
        reference = [reference[name] for name in output_names]
    elif isinstance(reference, torch.Tensor):
        reference = [reference]
    session = create_session(path)
    feeds = {meta.name: tensor.numpy() for meta, tensor in zip(session.get_inputs(), inputs)}
    outputs = session.run(list(output_names), feeds)
    return float(max(np.abs(r.numpy() - o).max() for r, o in zip(reference, outputs)))


def create_session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session using every core (or ``threads``) with full graph optimization."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or int(os.environ.get("SCALPSCOPE_THREADS", 0)) or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

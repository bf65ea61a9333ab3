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
    """An ONNX Runtime CPU session using every core (or ``threads``) with full graph optimization.

    The CPU memory arena is off: on 56 pictures `analyze` peaked at 1.48 GB instead of 1.68 GB
    for 4 % fewer images per second (two runs each, this 2-core machine).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or int(os.environ.get("SCALPSCOPE_THREADS", "0")) or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """An ONNX Runtime session called like the PyTorch module it was exported from.

    Takes and returns torch tensors, so each stage's pre- and post-processing stays the one
    PyTorch code path; ``dict_output`` returns ``{output name: tensor}`` like the classifier.
    """

    def __init__(self, path: Path, dict_output: bool = False, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = create_session(self.path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.dict_output = dict_output

    def __call__(self, *inputs: torch.Tensor):
        feeds = {name: np.ascontiguousarray(t.detach().cpu().float().numpy()) for name, t in zip(self.input_names, inputs)}
        outputs = [torch.from_numpy(o) for o in self.session.run(self.output_names, feeds)]
        if self.dict_output:
            return dict(zip(self.output_names, outputs))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def eval(self) -> OnnxRunner:  # stages call .eval() on their model; nothing to switch here
        return self


# ----------------------------------------------------------------------------- whole pipeline
MANIFEST = "onnx.json"


def export_pipeline(weights_dir: Path, out: Path, atol: float = 1e-3) -> dict:
    """Export gate, detector, segmenter and classifier of ``weights_dir`` to ONNX in ``out``.

    Each export is compared with PyTorch on sample-sized inputs (max abs difference recorded,
    ``atol`` enforced). ``out/onnx.json`` names the PyTorch weights (by sha256) each file came
    from, so a stale export is never used with newer weights.
    """
    import shutil

    from core.io import atomic_write_json, sha256_file
    from pipeline import load_stages

    weights_dir, out = Path(weights_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages = load_stages(weights_dir, hair=False)
    torch.manual_seed(0)
    files: dict[str, dict] = {}
    sources = stages.sha256s()

    size = int(stages.gate.config["input_size"])
    gate_in = (torch.rand(2, 3, size, size) * 255,)
    diff = export_module(stages.gate.extractor, gate_in, out / "gate.onnx", ["images"], ["features"], atol)
    files["gate"] = {"file": "gate.onnx", "max_abs_diff": diff, "source": sources["gate"]}

    refiner = stages.refiner
    crop = refiner.geometry.crop_size
    seg_in = (torch.rand(3, 4, crop, crop),)
    diff = export_module(refiner, seg_in, out / "segmenter.onnx", ["crops"], ["logits"], atol)
    files["segmenter"] = {"file": "segmenter.onnx", "max_abs_diff": diff, "source": sources["segmenter"]}

    grader = stages.grader
    s = grader.size
    cls_in = (torch.randn(2, 3, s, s), torch.rand(2, grader.n_mask_channels, s, s))
    heads = [h.name for h in grader.heads]
    diff = export_module(grader.model, cls_in, out / "classifier.onnx", ["image", "mask"], heads, atol)
    files["classifier"] = {"file": "classifier.onnx", "max_abs_diff": diff, "source": sources["classifier"]}

    detector = stages.detector
    exported = Path(detector.model.export(format="onnx", imgsz=detector.imgsz, dynamic=True, simplify=True,
                                          opset=OPSET, device="cpu", verbose=False))
    shutil.move(str(exported), out / "detector.onnx")
    files["detector"] = {"file": "detector.onnx", "imgsz": detector.imgsz, "classes": detector.classes,
                         "source": sources["detector"], "checked": "boxes compared in tests/test_onnx.py"}
    for info in files.values():
        info["sha256"] = sha256_file(out / info["file"])
    for name in ("gate", "detector", "segmenter", "classifier"):  # the configs travel with the exports
        shutil.copyfile(weights_dir / f"{name}.json", out / f"{name}.json")
    manifest = {"format": "onnx", "opset": OPSET, "weights_dir": str(weights_dir), "files": files}
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def onnx_dir_for(weights_dir: Path) -> Path:
    """Where ``export onnx`` writes by default: ``<weights>/onnx``."""
    return Path(weights_dir) / "onnx"


def matching_export(stages, folder: Path) -> dict | None:
    """The manifest in ``folder`` if every file there was exported from these very weights."""
    import json

    manifest_path = Path(folder) / MANIFEST
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    current = stages.sha256s()
    files = manifest.get("files", {})
    if any(files.get(k, {}).get("source") != v for k, v in current.items()):
        return None
    if not all((Path(folder) / files[k]["file"]).is_file() for k in current):
        return None
    return manifest


def attach_onnx(stages, folder: Path, threads: int | None = None) -> None:
    """Run every stage's network on ONNX Runtime (pre- and post-processing unchanged)."""
    from ultralytics import YOLO

    folder = Path(folder)
    stages.gate.extractor = OnnxRunner(folder / "gate.onnx", threads=threads)
    stages.refiner.runtime = OnnxRunner(folder / "segmenter.onnx", threads=threads)
    stages.grader.model = OnnxRunner(folder / "classifier.onnx", dict_output=True, threads=threads)
    stages.detector.model = YOLO(str(folder / "detector.onnx"), task="detect")

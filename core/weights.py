"""Weights travel with their config: a ``<stage>.json`` beside every weight file.

The config says what a caller must know to use the weights right (architecture, input size,
normalization, class and indicator names), where they came from (training data, command)
and how good they are (validation scores), plus the file's sha256 so a swapped or corrupted
file is caught before it grades anyone's scalp.

>>> save_safetensors(model.state_dict(), Path("weights/segmenter.safetensors"), {"stage": "segmenter"})  # doctest: +SKIP
>>> state, config = load_safetensors(Path("weights/segmenter.safetensors"))                              # doctest: +SKIP
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from core.io import atomic_write_bytes, atomic_write_json, sha256_file

#: The bundled weights folder, used when no ``--weights`` is given.
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: Weight file names inside a weights folder, by stage.
STAGE_FILES = {"detector": "detector.pt", "segmenter": "segmenter.safetensors", "classifier": "classifier.safetensors"}


class WeightsError(RuntimeError):
    """Missing, mismatched or corrupted weights; the message names the file and the fix."""


def config_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def provenance() -> dict[str, Any]:
    """Versions and time stamped into every config, so a score can be traced to its code."""
    import torch

    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": torch.__version__, "python": platform.python_version()}


def write_config(weights: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Write ``config`` (plus the weight file's sha256) beside ``weights``; returns it."""
    full = {**config, "file": weights.name, "sha256": sha256_file(weights)}
    full.setdefault("provenance", provenance())
    atomic_write_json(config_path(weights), full)
    return full


def read_config(weights: Path, verify: bool = True) -> dict[str, Any]:
    """The config beside ``weights``; with ``verify`` the file's sha256 must match it."""
    path = config_path(weights)
    if not weights.is_file():
        raise WeightsError(f"{weights} not found; train it ('python pipeline.py train ...') or pass --weights DIR")
    if not path.is_file():
        raise WeightsError(f"{path} missing: every weight file needs its config JSON beside it")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise WeightsError(f"{path} is not valid JSON ({err.msg})") from err
    if verify:
        actual = sha256_file(weights)
        if config.get("sha256") != actual:
            raise WeightsError(
                f"{weights} sha256 {actual[:12]}... does not match its config ({str(config.get('sha256'))[:12]}...): "
                "the file was changed or corrupted; restore it or retrain"
            )
    return config


def save_safetensors(state_dict: dict, weights: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Save tensors as safetensors (atomically) and their config beside them."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write_bytes(weights, save(tensors, metadata={"stage": str(config.get("stage", ""))}))
    return write_config(weights, config)


def load_safetensors(weights: Path, verify: bool = True) -> tuple[dict, dict[str, Any]]:
    from safetensors.torch import load_file

    config = read_config(weights, verify=verify)
    return load_file(str(weights)), config


def stage_file(weights_dir: Path, stage: str) -> Path:
    if stage not in STAGE_FILES:
        raise WeightsError(f"unknown stage {stage!r}; one of {', '.join(STAGE_FILES)}")
    return Path(weights_dir) / STAGE_FILES[stage]


def short_hash(config: dict[str, Any]) -> str:
    return f"sha256:{config.get('sha256', '')}"


def load_architecture(cls: Any, weights: Path, architecture: str, train_hint: str, verify: bool = True) -> Any:
    """Rebuild ``cls(**config["arch"], pretrained=False)`` from a safetensors file, strictly.

    The config must name ``architecture`` and every tensor must fit the rebuilt network;
    anything else is a :class:`WeightsError` naming the file and the mismatch. The returned
    module carries its config as ``weights_config`` and is in eval mode.
    """
    state, config = load_safetensors(weights, verify=verify)
    if config.get("architecture") != architecture or not isinstance(config.get("arch"), dict):
        raise WeightsError(
            f"{weights}: config says architecture {config.get('architecture')!r}, not {architecture!r}; "
            f"these are not {train_hint}"
        )
    arch = dict(config["arch"])
    arch["decoder_channels"] = tuple(arch.get("decoder_channels", ()))
    try:
        module = cls(**arch, pretrained=False)
    except (TypeError, ValueError, RuntimeError) as err:
        raise WeightsError(f"{weights}: its config's 'arch' cannot build a {architecture} ({err})") from err
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys
        )
        raise WeightsError(
            f"{weights}: tensors do not match the architecture its config describes ({details}); "
            "the file and its JSON belong to different models: retrain or restore the pair"
        )
    module.load_state_dict(state, strict=True)
    module.weights_config = config
    return module.eval()

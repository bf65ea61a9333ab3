"""Grade images with a trained classifier: the inference API the pipeline uses.

>>> grader = SeverityGrader.load("weights/classifier.safetensors")              # doctest: +SKIP
>>> result = grader.predict([rgb], [lesion_mask])[0]                             # doctest: +SKIP
>>> result["hair_loss"]                                                          # doctest: +SKIP
{'grade': 'mid', 'probs': {'low': 0.12, 'mid': 0.71, 'high': 0.17}}
>>> result["indicators"]["dandruff"]                                             # doctest: +SKIP
{'grade': 1, 'probs': [0.2, 0.6, 0.15, 0.05]}
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.weights import WeightsError, load_safetensors
from fusion.heads import HeadSpec
from fusion.inputs import prepare
from fusion.model import SeverityClassifier


def build_model(config: dict[str, Any], pretrained: bool = False) -> SeverityClassifier:
    """The architecture a config describes (weights not loaded unless ``pretrained``)."""
    heads = [HeadSpec.from_dict(h) for h in config["heads"]]
    mask = config.get("mask") or {}
    return SeverityClassifier(heads, backbone=config["backbone"], pretrained=pretrained,
                              dropout=config.get("dropout", 0.2), freeze_blocks=config.get("freeze_blocks", 0),
                              mask_channels=mask.get("channels"), coverage=mask.get("coverage") or "sqrt",  # older configs
                              coverage_gain=mask.get("coverage_gain", 1.0), coverage_copies=mask.get("coverage_copies", 1),
                              contrast_blocks=mask.get("contrast_blocks") or (), contrast_heads=mask.get("contrast_heads") or ())


def load_classifier(path: str | Path, device: str | torch.device = "cpu", verify: bool = True) -> tuple[SeverityClassifier, dict[str, Any]]:
    """Model (eval mode, on ``device``) and config from ``classifier.safetensors`` + its JSON."""
    path = Path(path)
    state, config = load_safetensors(path, verify=verify)
    if config.get("stage") != "classifier":
        raise WeightsError(f"{path} holds {config.get('stage')!r} weights, not a classifier; pass weights from 'train classifier'")
    model = build_model(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise WeightsError(f"{path} does not fit the architecture its config describes ({str(err).splitlines()[0]}); retrain it") from err
    return model.to(device).eval(), config


class SeverityGrader:
    """Six 0-3 indicator grades, the Low/Mid/High hair-loss grade and native stages, with
    temperature-calibrated probabilities, for RGB images and their optional lesion masks."""

    def __init__(self, model: SeverityClassifier, config: dict[str, Any], device: str | torch.device = "cpu") -> None:
        self.model = model.eval()
        self.config = config
        self.device = torch.device(device)
        self.heads = [HeadSpec.from_dict(h) for h in config["heads"]]
        self.size = int(config["input_size"])
        self.mean = tuple(config["normalization"]["mean"])
        self.std = tuple(config["normalization"]["std"])
        self.temperatures: dict[str, float] = dict(config.get("temperatures") or {})
        self.uses_masks = bool(config.get("mask", {}).get("trained_with_masks", True))
        self.untrained = list(config.get("untrained_heads", []))
        self.mask_channels: list[str] | None = (config.get("mask") or {}).get("channels")
        self.n_mask_channels = len(self.mask_channels) if self.mask_channels else 1

    def lesion_map(self, region_masks: np.ndarray, kinds: list[str]) -> np.ndarray | None:
        """What this classifier takes as a close-up's mask, from the segmenter's masks (R x H x W)
        and each region's kind: the union (H x W) or one layer per ``mask_channels`` kind
        (H x W x K). No region gives all zeros, "no lesion found", as in training, where a
        close-up without outlines has an empty mask (None would mean "mask unknown")."""
        if len(region_masks) != len(kinds):
            raise ValueError(f"{len(region_masks)} region masks but {len(kinds)} kinds")
        if not self.mask_channels:
            return region_masks.max(axis=0) if len(region_masks) else np.zeros(region_masks.shape[1:], np.float32)
        layers = np.zeros((*region_masks.shape[1:], len(self.mask_channels)), np.float32)
        for mask, kind in zip(region_masks, kinds):
            if kind in self.mask_channels:
                channel = self.mask_channels.index(kind)
                np.maximum(layers[:, :, channel], mask, out=layers[:, :, channel])
        return layers

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", verify: bool = True) -> SeverityGrader:
        model, config = load_classifier(path, device, verify)
        return cls(model, config, device)

    @property
    def sha256(self) -> str:
        return f"sha256:{self.config.get('sha256', '')}"

    @torch.no_grad()
    def logits(self, images: list[np.ndarray], masks: list[np.ndarray | None] | None = None, batch_size: int = 8,
               flip_tta: bool = False) -> dict[str, np.ndarray]:
        """Raw logits per head (N x outputs); ``flip_tta`` averages them with the mirrored image's."""
        masks = list(masks) if masks is not None else [None] * len(images)
        if len(masks) != len(images):
            raise ValueError(f"{len(images)} images but {len(masks)} masks; pass one mask (or None) per image")
        chunks: dict[str, list[np.ndarray]] = {h.name: [] for h in self.heads}
        for start in range(0, len(images), batch_size):
            pairs = [prepare(rgb, mask if self.uses_masks else None, self.size, self.mean, self.std, self.n_mask_channels)
                     for rgb, mask in zip(images[start:start + batch_size], masks[start:start + batch_size])]
            image = torch.stack([p[0] for p in pairs]).to(self.device, memory_format=torch.channels_last)
            mask = torch.stack([p[1] for p in pairs]).to(self.device)
            out = self.model(image, mask)
            if flip_tta:
                mirrored = self.model(image.flip(-1), mask.flip(-1))
                out = {k: (v + mirrored[k]) / 2 for k, v in out.items()}
            for name, value in out.items():
                chunks[name].append(value.float().cpu().numpy())
        return {name: np.concatenate(parts) for name, parts in chunks.items()}

    def probabilities(self, images: list[np.ndarray], masks: list[np.ndarray | None] | None = None,
                      batch_size: int = 8, flip_tta: bool = False) -> dict[str, np.ndarray]:
        """Calibrated probabilities per head (N x classes)."""
        logits = self.logits(images, masks, batch_size, flip_tta)
        return {h.name: h.probabilities(torch.from_numpy(logits[h.name]).double(), self.temperatures.get(h.name, 1.0)).numpy()
                for h in self.heads}

    def predict(self, images: list[np.ndarray], masks: list[np.ndarray | None] | None = None,
                batch_size: int = 8, flip_tta: bool = False) -> list[dict[str, Any]]:
        """One dict per image: ``indicators`` (name → grade 0-3 and four probabilities),
        ``hair_loss`` (grade low|mid|high and probabilities), ``native`` (head → grade and
        probabilities on a source's own scale), ``native_stage`` (the first of those) and
        ``untrained`` (heads that saw no label in training: their grades mean nothing)."""
        probs = self.probabilities(images, masks, batch_size, flip_tta)
        results = []
        for i in range(len(images)):
            result: dict[str, Any] = {"indicators": {}, "hair_loss": None, "native": {}, "native_stage": None,
                                      "untrained": self.untrained}
            for head in self.heads:
                p = probs[head.name][i]
                grade = int(p.argmax())
                if head.kind == "indicator":
                    result["indicators"][head.source] = {"grade": grade, "probs": [round(float(v), 4) for v in p]}
                else:
                    entry = {"grade": head.classes[grade], "probs": {c: round(float(v), 4) for c, v in zip(head.classes, p)}}
                    if head.kind == "hair_loss":
                        result["hair_loss"] = entry
                    else:
                        result["native"][head.name] = entry
                        result["native_stage"] = result["native_stage"] or entry
            results.append(result)
        return results

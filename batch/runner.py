"""The resumable batch job behind ``python pipeline.py analyze PATH... --out DIR``.

Contract (DESIGN.md, "Batch analysis contract"):

- inputs are files and folders, walked recursively for jpg/jpeg/png/bmp/webp (any case);
- each image gets ``OUT/<relative path>.json`` and an overlay ``OUT/<relative path>.png``,
  each written to a temporary file and renamed, the JSON last: it marks the image done;
- a rerun skips images whose JSON exists and is newer than the image and the weights;
- a bad file becomes one ``errors.csv`` row (path, reason) and the run goes on.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from core.analysis import Analysis
from core.images import ImageError, LoadedImage, load_image
from core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from core.taxonomy import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)
ERROR_SUFFIX = ".error.json"


class Analyzer(Protocol):
    """What the runner needs of a pipeline: batched analysis of decoded images."""

    def analyze_batch(self, images: Sequence[LoadedImage], names: Sequence[str]) -> list[Analysis]: ...

    @property
    def weights_mtime(self) -> float: ...


@dataclass(frozen=True)
class Item:
    """One image of the job: where it is and the key its outputs are named by."""

    path: Path
    key: str  # relative output path without suffix, e.g. "sub/a.jpg"

    def json_path(self, out: Path) -> Path:
        return out / f"{self.key}.json"

    def overlay_path(self, out: Path) -> Path:
        return out / f"{self.key}.png"

    def error_path(self, out: Path) -> Path:
        return out / f"{self.key}{ERROR_SUFFIX}"


@dataclass
class BatchResult:
    done: list[Item] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)
    failed: list[tuple[Item, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return len(self.done) / self.seconds if self.seconds > 0 else 0.0


def discover(paths: Sequence[Path], out: Path | None = None) -> list[Item]:
    """Every image under ``paths`` with a unique output key; folders are walked recursively."""
    items: list[Item] = []
    out_resolved = out.resolve() if out else None
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        prefix = f"{root.name}/" if len(paths) > 1 and root.is_dir() else ""
        if root.is_file():
            items.append(Item(root, root.name))
            continue
        for path in sorted(root.rglob("*")):
            if out_resolved and out_resolved in path.resolve().parents:
                continue  # never analyze our own overlays when OUT sits inside the input
            if path.suffix.lower() in IMAGE_EXTENSIONS and not path.is_dir():
                items.append(Item(path, prefix + path.relative_to(root).as_posix()))
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"two inputs map to the same output name ({dupes[0]}); pass their common parent folder instead")
    return items


def is_done(item: Item, out: Path, weights_mtime: float, models: dict[str, str] | None = None,
            overlay: bool = True) -> bool:
    """Outputs exist (the overlay too, when ``overlay``), are newer than the picture and the
    weights, and (given ``models``) were made by those same models: a run with the hair meter
    switched on redoes the pictures analysed without it."""
    json_path = item.json_path(out)
    try:
        finished = json_path.stat().st_mtime
        source = item.path.stat().st_mtime
    except OSError:
        return False
    if not (finished >= source and finished >= weights_mtime and (not overlay or item.overlay_path(out).exists())):
        return False
    if models is None:
        return True
    try:
        return json.loads(json_path.read_text(encoding="utf-8")).get("models") == models
    except (OSError, ValueError):
        return False


def _prefetch(items: Sequence[Item], depth: int) -> Iterator[tuple[Item, LoadedImage | ImageError]]:
    """Decode images on a background thread so the cores never idle on JPEG decode."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = object()

    def worker() -> None:
        for item in items:
            try:
                slots.put((item, load_image(item.path)))
            except ImageError as err:
                slots.put((item, err))
            except Exception as err:  # noqa: BLE001 - an unexpected decoder crash is still one bad file
                slots.put((item, ImageError(f"{item.path}: cannot read image ({type(err).__name__}: {err})")))
        slots.put(stop)

    threading.Thread(target=worker, daemon=True, name="scalpscope-decode").start()
    while (entry := slots.get()) is not stop:
        yield entry


def _reason(err: Exception, item: Item) -> str:
    text = str(err)
    prefix = f"{item.path}: "
    return text.removeprefix(prefix)


def _record_failure(item: Item, out: Path, reason: str, result: BatchResult) -> None:
    atomic_write_json(item.error_path(out), {"image": str(item.path), "reason": reason, "time": time.time()})
    result.failed.append((item, reason))
    log.warning("%s: %s", item.path, reason)


def _write_outputs(item: Item, analysis: Analysis, rgb: np.ndarray, out: Path, overlay: bool) -> None:
    import io

    from PIL import Image

    if overlay:
        buffer = io.BytesIO()
        Image.fromarray(analysis.plot(rgb)).save(buffer, format="PNG", compress_level=1)
        atomic_write_bytes(item.overlay_path(out), buffer.getvalue())
    atomic_write_text(item.json_path(out), analysis.to_json())  # last: marks the image done
    item.error_path(out).unlink(missing_ok=True)


def run_batch(
    analyzer: Analyzer,
    items: Sequence[Item],
    out: Path,
    batch_size: int = 8,
    force: bool = False,
    overlay: bool = True,
    progress: bool = True,
    on_done: Callable[[Item, Analysis, np.ndarray], None] | None = None,
) -> BatchResult:
    """Analyze ``items`` into ``out``; finished images are skipped unless ``force``.

    ``on_done`` is called for every image whose outputs were written (e.g. to record it in
    the history database).
    """
    out.mkdir(parents=True, exist_ok=True)
    result = BatchResult()
    weights_mtime = analyzer.weights_mtime
    models = getattr(analyzer, "models", None)
    todo = []
    for item in items:
        if not force and is_done(item, out, weights_mtime, models, overlay):
            result.skipped.append(item)
        else:
            todo.append(item)
    if result.skipped:
        log.info("%d images already analyzed with these weights; skipping them (--force redoes)", len(result.skipped))
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="img", desc="analyze", disable=not progress, smoothing=0.1)
    pending: list[tuple[Item, LoadedImage]] = []

    def flush() -> None:
        if not pending:
            return
        images = [loaded for _, loaded in pending]
        try:
            analyses = analyzer.analyze_batch(images, [str(item.path) for item, _ in pending])
        except Exception as err:  # noqa: BLE001 - one bad image must not sink its batch: retry one by one
            if len(pending) == 1:
                _record_failure(pending[0][0], out, f"analysis failed ({type(err).__name__}: {err})", result)
                bar.update(1)
                pending.clear()
                return
            singles = list(pending)
            pending.clear()
            for single in singles:
                pending.append(single)
                flush()
            return
        for (item, loaded), analysis in zip(pending, analyses):
            try:
                _write_outputs(item, analysis, loaded.rgb, out, overlay)
                result.done.append(item)
            except OSError as err:
                _record_failure(item, out, f"cannot write outputs ({err})", result)
                continue
            if on_done is not None:
                on_done(item, analysis, loaded.rgb)
        bar.update(len(pending))
        pending.clear()

    for item, loaded in _prefetch(todo, depth=max(2, 2 * batch_size)):
        if isinstance(loaded, ImageError):
            _record_failure(item, out, _reason(loaded, item), result)
            bar.update(1)
            continue
        pending.append((item, loaded))
        if len(pending) >= batch_size:
            flush()
    flush()
    bar.close()
    result.seconds = time.perf_counter() - start
    return result


def collect(items: Sequence[Item], out: Path) -> tuple[list[tuple[Item, Analysis]], list[tuple[Item, str]]]:
    """The finished analyses and recorded failures of ``items`` as they are on disk now."""
    import json

    analyses, errors = [], []
    for item in items:
        json_path, error_path = item.json_path(out), item.error_path(out)
        if json_path.exists():
            analyses.append((item, Analysis.from_json(json_path.read_text(encoding="utf-8"))))
        elif error_path.exists():
            errors.append((item, json.loads(error_path.read_text(encoding="utf-8"))["reason"]))
    return analyses, errors

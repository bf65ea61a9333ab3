"""Write synthetic close-ups as a dataset folder (``images/``, ``masks/``, ``dataset.jsonl``)."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.io import atomic_write_json
from core.taxonomy import INDICATOR_GRADES, INDICATORS
from datasets.folder import JSONL_NAME, DatasetError, DatasetFolder
from datasets.records import Region, Sample
from datasets.synth.grading import AREA_GRADE_CUTS, REDUCTION_GRADE_CUTS
from datasets.synth.render import Subject, SynthScalp, clear_grades, render_scalp

log = logging.getLogger(__name__)

#: Bump whenever the drawing or labelling changes, so datasets say which generator made them.
GENERATOR_VERSION = "1.1"  # 1.1: hair shafts of exact real-valued width, shaded by distance
DATASET_NAME = "synthetic"
JPEG_QUALITY = 92
#: Consecutive pictures share one synthetic subject, as a person gets several scope shots.
IMAGES_PER_SUBJECT = 3
# 1-bit PNGs at low compression: 5x faster to write than 8-bit ones, and smaller; readers
# get 0/255 back from cv2 IMREAD_GRAYSCALE (as DatasetFolder.region_mask reads them), bool from PIL.
_PNG_PARAMS = [cv2.IMWRITE_PNG_BILEVEL, 1, cv2.IMWRITE_PNG_COMPRESSION, 1]


def generate(
    n: int,
    out: Path,
    seed: int = 0,
    size: tuple[int, int] = (640, 480),
    images_per_subject: int = IMAGES_PER_SUBJECT,
    progress: bool = True,
    clear: bool = False,
) -> DatasetFolder:
    """Render ``n`` synthetic close-ups into the dataset folder ``out`` and return it.

    The same ``seed`` gives byte-identical images, masks and records. Every sample is a
    close-up with exact region masks (one PNG each), six indicator grades (targets balanced
    over 0-3 by :func:`balanced_grades`, labels measured from the drawing), the Low/Mid/High
    hair-loss grade, per-hair truth in ``meta["hair"]`` and ``split`` left unset for
    ``data split`` to assign. ``dataset.json`` records the seed, version and grading cuts.

    ``clear`` makes the detector's sanity set instead: 2-3 kinds per picture, each one clear
    region in a quadrant of its own (see :func:`render_scalp`); grades are not balanced.

    >>> ds = generate(6, Path("runs/synth"), seed=0)       # doctest: +SKIP
    >>> ds.samples[0].image, ds.samples[0].meta["view"]    # doctest: +SKIP
    ('images/synth_00000.jpg', 'closeup')
    """
    if n < 0:
        raise ValueError(f"the number of synthetic images must be 0 or more, got {n}")
    if images_per_subject < 1:
        raise ValueError(f"images_per_subject must be 1 or more, got {images_per_subject}")
    out = Path(out)
    _refuse_other_dataset(out)
    _remove_stale(out)
    rng = np.random.default_rng(seed)
    samples = []
    subject: Subject | None = None
    targets: list[dict[str, int]] = []
    for index in tqdm(range(n), desc="synth", unit="img", disable=not progress):
        if index % images_per_subject == 0:
            subject = Subject.sample(rng, f"synth_subject_{index // images_per_subject:05d}")
        if not targets:
            targets = [clear_grades(rng)] if clear else balanced_grades(rng)
        scalp = render_scalp(rng, size, subject, grades=targets.pop(), clear=clear)
        samples.append(_write_scalp(out, f"synth_{index:05d}", scalp, seed, index))
    dataset = DatasetFolder(root=out, samples=samples, name=DATASET_NAME)
    dataset.save()
    info = {"name": DATASET_NAME, "seed": seed, "generator_version": GENERATOR_VERSION, "n": n, "size": list(size),
            "layout": "clear" if clear else "default",
            "grading": {"area_grade_cuts": {k: list(v) for k, v in AREA_GRADE_CUTS.items()},
                        "reduction_grade_cuts": list(REDUCTION_GRADE_CUTS)}}
    atomic_write_json(out / "dataset.json", info)
    log.info("wrote %d synthetic close-ups to %s", n, out)
    return dataset


def balanced_grades(rng: np.random.Generator) -> list[dict[str, int]]:
    """Target grades for the next four pictures: each indicator takes each grade 0-3 once.

    Independent draws leave a grade missing from small datasets now and then; shuffled
    blocks keep every grade equally common at any dataset size, indicators still unrelated.
    """
    columns = {name: rng.permutation(len(INDICATOR_GRADES)) for name in INDICATORS}
    return [{name: int(column[row]) for name, column in columns.items()} for row in range(len(INDICATOR_GRADES))]


def to_sample(scalp: SynthScalp, stem: str, seed: int, index: int) -> Sample:
    """The dataset record of a rendered scalp whose files are named after ``stem``."""
    height, width = scalp.rgb.shape[:2]
    regions = [
        Region(box=region.box, kind=region.kind, grade=region.grade, mask=_region_mask_name(stem, number, region.kind))
        for number, region in enumerate(scalp.regions)
    ]
    hair = scalp.hair
    meta = {
        "view": "closeup",
        "subject": scalp.subject.subject_id,
        "synthetic": True,
        "hair": {
            "count": hair.count,
            "thickness_px": hair.thickness_px,
            "mask": f"masks/{stem}_hair.png",
            "density_level": hair.density_level,
            "hairs_per_cm2": hair.hairs_per_cm2,
            "colour": scalp.subject.hair.colour,
        },
        "grading_measures": scalp.measures,
    }
    source = {"dataset": DATASET_NAME, "generator_version": GENERATOR_VERSION, "seed": seed, "index": index}
    return Sample(
        image=f"images/{stem}.jpg",
        width=width,
        height=height,
        regions=regions,
        indicators=dict(scalp.indicators),
        hair_loss=scalp.hair_loss,
        meta=meta,
        source=source,
        split=None,
    )


def _write_scalp(out: Path, stem: str, scalp: SynthScalp, seed: int, index: int) -> Sample:
    sample = to_sample(scalp, stem, seed, index)
    bgr = cv2.cvtColor(scalp.rgb, cv2.COLOR_RGB2BGR)
    _replace_file(out / sample.image, _encode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]))
    for region, record in zip(scalp.regions, sample.regions):
        _replace_file(out / str(record.mask), _encode_mask(region.mask))
    _replace_file(out / sample.meta["hair"]["mask"], _encode_mask(scalp.hair.mask))
    return sample


def _replace_file(path: Path, data: bytes) -> None:
    """Write beside ``path`` and rename into place: readers never see half a file.

    Unlike ``core.io.atomic_write_bytes`` this skips fsync: a dozen files per picture made
    fsync most of the run time, and ``dataset.jsonl``, written durably last, is what makes
    the pictures part of a dataset.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _encode(extension: str, image: np.ndarray, params: list[int]) -> bytes:
    ok, data = cv2.imencode(extension, image, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {extension} image of shape {image.shape}")
    return data.tobytes()


def _encode_mask(mask: np.ndarray) -> bytes:
    # A bool array viewed as bytes is 0/1, which a 1-bit PNG stores as is: no copy, no scaling.
    return _encode(".png", np.ascontiguousarray(mask).view(np.uint8), _PNG_PARAMS)


def _region_mask_name(stem: str, number: int, kind: str) -> str:
    return f"masks/{stem}_{number:02d}_{kind}.png"


def _refuse_other_dataset(out: Path) -> None:
    """Never overwrite an imported dataset: only an empty folder or an earlier synthetic one."""
    if not (out / JSONL_NAME).exists():
        return
    info = out / "dataset.json"
    name = json.loads(info.read_text(encoding="utf-8")).get("name") if info.is_file() else None
    if name != DATASET_NAME:
        raise DatasetError(
            f"{out} already holds a dataset ({name or 'unnamed'}); give 'data synth' an empty folder "
            f"or one it made before"
        )


def _remove_stale(out: Path) -> None:
    """Delete files an earlier, larger run left behind; only generator-named files are touched."""
    for folder, pattern in (("images", "synth_*.jpg"), ("masks", "synth_*.png")):
        for path in (out / folder).glob(pattern):
            path.unlink()

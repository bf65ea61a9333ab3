"""``data check``: what would break training or evaluation, found before it does.

Errors (exit code 1): missing, empty, unreadable or corrupt images; boxes out of bounds or
degenerate; the same image in two splits. Warnings: unlabelled images, images on disk with
no record, duplicates within a split.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from core.images import ImageError, load_image
from core.taxonomy import SPLITS
from datasets.folder import DatasetFolder
from datasets.readers import is_image

#: Tolerance for boxes that touch the border (annotation tools round outward).
BOX_TOLERANCE_PX = 1.0
#: Boxes thinner than this on either side cannot be learnt from.
MIN_BOX_SIDE_PX = 1.0


@dataclass
class Problem:
    severity: str  # "error" | "warning"
    file: str
    reason: str


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    histogram: dict[str, Counter] = field(default_factory=dict)
    n_images: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def table(self, limit: int = 30) -> str:
        splits = [*SPLITS, "none"]
        labels = sorted(set().union(*self.histogram.values())) if self.histogram else []
        head = f"{'label':<40}" + "".join(f"{s:>8}" for s in splits)
        lines = [f"{self.n_images} images", head, "-" * len(head)]
        lines += [
            f"{label:<40}" + "".join(f"{self.histogram.get(s, Counter())[label]:>8}" for s in splits) for label in labels
        ]
        reasons = Counter((p.severity, p.reason.split(":")[0]) for p in self.problems)
        lines.append("")
        lines.append(f"{len(self.errors)} errors, {len(self.warnings)} warnings")
        for (severity, reason), count in sorted(reasons.items()):
            lines.append(f"  {severity:<8} {count:>6}  {reason}")
        for problem in sorted(self.problems, key=lambda p: p.severity != "error")[:limit]:
            lines.append(f"  {problem.severity}: {problem.file}: {problem.reason}")
        if len(self.problems) > limit:
            lines.append(f"  ... {len(self.problems) - limit} more (see --json)")
        return "\n".join(lines)


def check_dataset(folder: DatasetFolder, decode: bool = True) -> CheckReport:
    """Validate every record and image of a dataset folder."""
    report = CheckReport(n_images=len(folder))
    add = report.problems.append
    hashes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    referenced: set[Path] = set()
    for sample in tqdm(folder.samples, desc="check", unit="img", leave=False):
        path = folder.image_path(sample)
        referenced.add(path.resolve())
        split = sample.split or "none"
        report.histogram.setdefault(split, Counter()).update(sample.label_keys())
        if not path.exists():
            add(Problem("error", sample.image, "image missing: the record points to no file"))
            continue
        data = path.read_bytes()
        if not data:
            add(Problem("error", sample.image, "empty image file: 0 bytes"))
            continue
        hashes[hashlib.sha1(data).hexdigest()].append((sample.image, split))
        if decode:
            try:
                loaded = load_image(path)
            except ImageError as err:
                add(Problem("error", sample.image, f"unreadable image: {str(err).split(': ', 1)[-1]}"))
                continue
            width, height = loaded.original_size
        else:
            width, height = sample.width or 0, sample.height or 0
        if sample.width and sample.height and (sample.width, sample.height) != (width, height):
            add(Problem("warning", sample.image, f"size mismatch: record {sample.width}x{sample.height}, file {width}x{height}"))
        for index, region in enumerate(sample.regions):
            x1, y1, x2, y2 = region.box
            if x2 - x1 < MIN_BOX_SIDE_PX or y2 - y1 < MIN_BOX_SIDE_PX:
                add(Problem("error", sample.image, f"degenerate box: region {index} ({region.kind}) {region.box}"))
            if min(x1, y1) < -BOX_TOLERANCE_PX or x2 > width + BOX_TOLERANCE_PX or y2 > height + BOX_TOLERANCE_PX:
                add(Problem("error", sample.image, f"box out of bounds: region {index} {region.box} in {width}x{height}"))
        if sample.label_keys() == ["negative"] and not sample.meta.get("negative"):
            add(Problem("warning", sample.image, "no labels: a negative or an unlabelled image"))
    for dupes in hashes.values():
        if len(dupes) > 1:
            splits = {s for _, s in dupes}
            severity = "error" if len(splits - {"none"}) > 1 else "warning"
            names = ", ".join(i for i, _ in dupes)
            reason = "duplicate image across splits" if severity == "error" else "duplicate image"
            add(Problem(severity, dupes[0][0], f"{reason}: {names}"))
    images_dir = folder.root / "images"
    if images_dir.is_dir():
        for path in images_dir.rglob("*"):
            if is_image(path) and path.resolve() not in referenced:
                add(Problem("warning", str(path.relative_to(folder.root)), "image without a record in dataset.jsonl"))
    return report

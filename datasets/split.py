"""Deterministic, multi-label iterative stratification over groups.

Sechidis, Tsoumakas & Vlahavas (2011), "On the stratification of multi-label data", applied
to groups instead of single samples: every sample of a group (one subject, or the augmented
copies of one source photo) lands in the same split, so nothing leaks between splits.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from core.taxonomy import SPLITS
from datasets.records import Sample


@dataclass(frozen=True)
class SplitReport:
    counts: dict[str, Counter]  # split -> label key -> number of images
    sizes: dict[str, int]
    groups: dict[str, int]

    def table(self) -> str:
        labels = sorted(set().union(*self.counts.values()))
        head = f"{'label':<40}" + "".join(f"{s:>8}" for s in SPLITS)
        lines = [head, "-" * len(head)]
        lines += [f"{label:<40}" + "".join(f"{self.counts[s][label]:>8}" for s in SPLITS) for label in labels]
        lines.append("-" * len(head))
        lines.append(f"{'images':<40}" + "".join(f"{self.sizes[s]:>8}" for s in SPLITS))
        lines.append(f"{'groups (subjects / source photos)':<40}" + "".join(f"{self.groups[s]:>8}" for s in SPLITS))
        return "\n".join(lines)


def stratified_split(
    samples: list[Sample], ratios: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> SplitReport:
    """Assign ``sample.split`` for every sample in place and report per-split label counts."""
    if len(ratios) != len(SPLITS) or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"--ratios needs three non-negative numbers (train val test), got {ratios}")
    ratio = np.asarray(ratios, dtype=float) / sum(ratios)
    rng = np.random.default_rng(seed)

    members: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        members[sample.group].append(sample)
    names = sorted(members)
    rng.shuffle(names)  # seed decides ties, not file order
    labels = {g: Counter(k for s in members[g] for k in s.label_keys()) for g in names}

    totals = Counter()
    for counts in labels.values():
        totals.update(counts)
    want_label = {label: ratio * count for label, count in totals.items()}
    want_size = ratio * len(samples)
    remaining = dict(labels)
    assignment: dict[str, int] = {}

    while remaining:
        left = Counter()
        for counts in remaining.values():
            left.update(counts)
        left = +left
        if not left:
            chosen = list(remaining)
            label = None
        else:
            # The rarest label still unassigned is placed first: it is the hardest to balance.
            label = min(left, key=lambda k: (left[k], k))
            chosen = [g for g in remaining if label in remaining[g]]
        for group in chosen:
            size = len(members[group])
            if label is None:
                keys = [(want_size[i], rng.random()) for i in range(len(SPLITS))]
            else:
                keys = [(want_label[label][i], want_size[i], rng.random()) for i in range(len(SPLITS))]
            target = max(range(len(SPLITS)), key=lambda i: keys[i])
            assignment[group] = target
            for key, count in remaining[group].items():
                want_label[key][target] -= count
            want_size[target] -= size
            del remaining[group]

    for group, target in assignment.items():
        for sample in members[group]:
            sample.split = SPLITS[target]
    return split_report(samples)


def split_report(samples: list[Sample]) -> SplitReport:
    counts = {s: Counter() for s in SPLITS}
    sizes = {s: 0 for s in SPLITS}
    groups: dict[str, set[str]] = {s: set() for s in SPLITS}
    for sample in samples:
        if sample.split is None:
            continue
        counts[sample.split].update(sample.label_keys())
        sizes[sample.split] += 1
        groups[sample.split].add(sample.group)
    return SplitReport(counts, sizes, {s: len(g) for s, g in groups.items()})

"""From a hair mask to hair *shafts*: skeleton, junctions, direction grouping, widths.

A mask counts pixels; a trichologist counts shafts. The mask is thinned to its skeleton and
cut at its branch points into segments. Each segment gets a width (mask area over skeleton
length, away from its ends) and, where it is a stretch in which two or three hairs lie side
by side, a *multiplicity*. At every junction the segment ends are paired by direction: two
ends that continue each other (nearly opposite directions, little sideways offset) are one
hair passing through; the rest are hairs that end there. Short bridges between two branch
points (what a skeleton makes of an X crossing) are merged into one junction first, and
short spurs (what it makes of a ragged edge) are dropped. Broken shafts (a gap in the mask
along one hair) are re-joined when two free ends face each other across a small gap, or,
when the traced mask is the network's centre lines, across a longer one that the hair mask
fills (the centre line broke, the shaft did not).

Each segment is then split into ``multiplicity`` strands, the pairings tie strands together,
and every connected group of strands is one :class:`Shaft`, so ``len(shafts)`` is the count.

>>> import cv2
>>> mask = np.zeros((120, 120), np.uint8)
>>> _ = cv2.line(mask, (10, 10), (110, 110), 1, 5)
>>> _ = cv2.line(mask, (10, 110), (110, 10), 1, 5)
>>> len(trace_shafts(mask > 0))
2
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

_EIGHT = np.ones((3, 3), bool)
_OFFSETS = ((-1, 0), (0, -1), (0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))  # 4-neighbours first


@dataclass(frozen=True)
class TraceParams:
    """How shafts are traced from a mask; the defaults suit 2-40 px wide hairs.

    Args:
        min_area_px: mask components smaller than this are specks, not hairs.
        fill_holes_px: holes up to this size are filled first (a hair crossing another at a
            small angle leaves a sliver of skin between them that would make a loop).
        max_pass_angle_deg: two ends at a junction are one hair when their directions deviate
            from a straight continuation by less than this.
        spur_factor: a branch with a free end shorter than ``spur_factor`` x the junction's
            half-width (+2 px) is a ragged edge, not a hair.
        bridge_factor: a segment between two junctions shorter than ``bridge_factor`` x the
            sum of their half-widths (+2 px) is the middle of one crossing.
        gap_px: free ends facing each other this close (x the local width, at least
            ``min_gap_px``) are one broken shaft.
        gap_offset_factor: across a gap, the far end may lie at most this many widths (+
            ``offset_px``) off the line the near end points along.
        side_by_side_ratio: a segment at least this many times as wide as the hair it
            continues into holds two (or three) hairs side by side.
        min_length_px: shafts shorter than this are dropped (in px of skeleton).
        offset_factor, offset_px: two ends that continue each other may lie at most
            ``offset_factor`` x their mean width + ``offset_px`` off each other's line.
        offset_weight: pairings are ranked by bend (degrees) + ``offset_weight`` x sideways
            step (px), smallest first.
        corner_deg: a skeleton that turns by more than this within a few widths is two hairs
            meeting (a V at a shared follicle), not one hair bending; it is cut there.
        support_gap_widths: when shafts are traced on centre lines with the hair mask as
            ``support``, free ends facing each other up to this many hair widths apart are one
            shaft if the straight gap between them lies in the hair mask (a centre line that
            broke inside an unbroken shaft).
        support_inside: share of the gap's pixels that must lie in the support mask.
        min_length_widths, short_length_widths, near_widths: which traced shafts are counted
            as hairs (:func:`hair.measure.counted_shafts`): shorter than ``min_length_widths``
            of their own widths, never (unless at the frame's edge); shorter than
            ``short_length_widths``, only where they lie alone, more than ``near_widths``
            widths from every longer counted shaft: nearer, they are pieces of it (the
            network's centre lines break some shafts into stretches a few widths long, and a
            defocused shaft's rims read as short lines beside it). A short hair standing alone
            (a regrowing one) still counts; one lying against a longer hair does not.

    The gap joining and the counting rule were chosen on 100 synthetic val scenes (seed 2000)
    by the share of scenes counted within 10 % of the countable hairs; the model card
    (``weights/MODEL_CARD.md``, hair meter) lists what was compared.
    """

    min_area_px: int = 24
    fill_holes_px: int = 12
    max_pass_angle_deg: float = 20.0
    spur_factor: float = 2.0
    bridge_factor: float = 2.5
    gap_px: float = 2.5
    min_gap_px: float = 8.0
    gap_offset_factor: float = 1.0
    side_by_side_ratio: float = 1.6
    min_length_px: float = 6.0
    offset_factor: float = 0.75
    offset_px: float = 2.5
    corner_deg: float = 55.0
    offset_weight: float = 4.0
    support_gap_widths: float = 8.0
    support_inside: float = 0.95
    min_length_widths: float = 1.5
    short_length_widths: float = 4.0
    near_widths: float = 2.0


@dataclass
class Segment:
    """A stretch of skeleton between two branch points or free ends."""

    path: np.ndarray  # K x 2 int (row, col), ordered from end 0 to end 1
    nodes: list[int]  # junction id at end 0 and end 1; -1 = free end
    width: float = 0.0  # full width across the shaft, px
    length: float = 0.0  # along the skeleton, px
    multiplicity: int = 1  # hairs lying side by side in it
    directions: list[np.ndarray] = field(default_factory=list)  # unit (row, col) at each end, pointing inwards
    on_border: list[bool] = field(default_factory=list)  # free end touches the image edge


@dataclass
class Shaft:
    """One hair: the skeleton pieces it runs along, its width and length in pixels."""

    paths: list[np.ndarray]  # skeleton pixel paths (row, col), one per segment it uses
    width_px: float
    length_px: float


# ============================================================================= public entry
def trace_shafts(
    mask: np.ndarray, params: TraceParams = TraceParams(), support: np.ndarray | None = None
) -> list[Shaft]:
    """The hair shafts of a boolean mask (H x W), one :class:`Shaft` per hair.

    ``support`` is the hair mask when ``mask`` holds centre lines: gaps in the centre lines
    that the hair mask bridges are joined (see ``TraceParams.support_gap_widths``).
    """
    mask = clean_mask(np.asarray(mask, bool), params)
    if not mask.any():
        return []
    distance = ndimage.distance_transform_edt(mask)
    skeleton = skeletonize(mask)
    segments, junction_radius = _segments(skeleton, distance)
    shape = mask.shape
    _drop_spurs_and_bridges(segments, junction_radius, distance, shape, params)
    _split_at_corners(segments, junction_radius, distance, params)
    for segment in segments.values():
        segment.length = _path_length(segment.path)
        segment.directions = [_end_direction(segment, end, junction_radius) for end in (0, 1)]
        segment.on_border = [segment.nodes[end] < 0 and _near_border(segment.path[-end], shape) for end in (0, 1)]
    _measure_widths(segments, mask, skeleton, junction_radius)
    pairs = _pair_at_junctions(segments, params)
    pairs += _bridge_gaps(segments, params, None if support is None else np.asarray(support, bool))
    _side_by_side(segments, pairs, params)
    return _assemble(segments, pairs, params)


def clean_mask(mask: np.ndarray, params: TraceParams = TraceParams()) -> np.ndarray:
    """Drop specks and fill pinholes, so the skeleton has no loops or stubs from noise."""
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n:
        sizes = np.bincount(labels.ravel())
        mask = (sizes >= params.min_area_px)[labels] & mask
    if params.fill_holes_px > 0:
        holes, n = ndimage.label(~mask)
        if n:
            sizes = np.bincount(holes.ravel())
            small = sizes <= params.fill_holes_px
            small[0] = False
            # A hole that touches the border is background around the image, never a pinhole.
            edge = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
            small[edge] = False
            mask = mask | small[holes]
    return mask


# ============================================================================= skeleton graph
def _segments(skeleton: np.ndarray, distance: np.ndarray) -> tuple[dict[int, Segment], dict[int, float]]:
    """Cut the skeleton at its branch points into ordered segments; junction half-widths."""
    neighbours = ndimage.convolve(skeleton.astype(np.uint8), _EIGHT.astype(np.uint8), mode="constant") - 1
    branch = skeleton & (neighbours >= 3)
    junctions, n_junctions = ndimage.label(branch, structure=_EIGHT)
    junction_radius = {}
    if n_junctions:
        radius = ndimage.maximum(distance, junctions, index=np.arange(1, n_junctions + 1))
        junction_radius = {j: float(r) for j, r in zip(range(1, n_junctions + 1), np.atleast_1d(radius))}
    rest = skeleton & ~branch
    pieces, _n_pieces = ndimage.label(rest, structure=_EIGHT)
    height, width = skeleton.shape
    segments: dict[int, Segment] = {}
    slices = ndimage.find_objects(pieces)
    for index, window in enumerate(slices, start=1):
        if window is None:
            continue
        rows, cols = np.nonzero(pieces[window] == index)
        pixels = set(zip((rows + window[0].start).tolist(), (cols + window[1].start).tolist()))
        path = _order(pixels)
        nodes = []
        for end in (path[0], path[-1]):
            node = -1
            r, c = end
            for dr, dc in _OFFSETS:
                rr, cc = r + dr, c + dc
                if 0 <= rr < height and 0 <= cc < width and junctions[rr, cc]:
                    node = int(junctions[rr, cc])
                    break
            nodes.append(node)
        if len(path) == 1 and nodes[0] != -1:
            # A single pixel between two junctions: find both.
            r, c = path[0]
            found = {int(junctions[r + dr, c + dc]) for dr, dc in _OFFSETS
                     if 0 <= r + dr < height and 0 <= c + dc < width and junctions[r + dr, c + dc]}
            nodes = sorted(found)[:2] + [-1] * (2 - min(2, len(found)))
        segments[index] = Segment(np.asarray(path, np.int32), nodes)
    return segments, junction_radius


def _order(pixels: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pixels of a thin 8-connected piece as a path from one end to the other."""
    if len(pixels) == 1:
        return list(pixels)

    def neighbours(p: tuple[int, int]) -> list[tuple[int, int]]:
        return [(p[0] + dr, p[1] + dc) for dr, dc in _OFFSETS if (p[0] + dr, p[1] + dc) in pixels]

    def walk(current: tuple[int, int]) -> list[tuple[int, int]]:
        """Pixels from current onwards, each the first unseen neighbour of the one before."""
        steps = []
        while (step := next((q for q in neighbours(current) if q not in seen), None)) is not None:
            steps.append(step)
            seen.add(step)
            current = step
        return steps

    start = min(pixels, key=lambda p: (len(neighbours(p)), p))
    seen = {start}
    path = [start, *walk(start)]
    if len(seen) < len(pixels):
        # Rare thick knots (a 2x2 block): walk on from the start the other way as well.
        path = walk(start)[::-1] + path
    return path


def _path_length(path: np.ndarray) -> float:
    if len(path) < 2:
        return 1.0
    steps = np.diff(path.astype(np.float64), axis=0)
    return float(np.sqrt((steps * steps).sum(axis=1)).sum() + 1.0)


def _near_border(point: np.ndarray, shape: tuple[int, int], margin: int = 3) -> bool:
    r, c = int(point[0]), int(point[1])
    return r < margin or c < margin or r >= shape[0] - margin or c >= shape[1] - margin


# ============================================================================= clean-up
def _drop_spurs_and_bridges(
    segments: dict[int, Segment], radius: dict[int, float], distance: np.ndarray, shape: tuple[int, int],
    params: TraceParams,
) -> None:
    """Remove skeleton artefacts: spurs at ragged edges, bridges inside crossings.

    Thresholds scale with the half-width of the widest *hair* meeting at a junction (the
    median distance-transform along its segments), not with the blob at the junction, which
    grows wherever many hairs pile up; and a merged junction may not grow wider than one
    crossing, so a dense tangle is not swallowed into one node.
    """
    half_width = {key: float(np.median(distance[s.path[:, 0], s.path[:, 1]])) for key, s in segments.items()}
    hair_radius: dict[int, float] = {}
    corners: dict[int, list[np.ndarray]] = {}
    degree: dict[int, int] = {}
    for key, segment in segments.items():
        for end, node in enumerate(segment.nodes):
            if node >= 0:
                hair_radius[node] = max(hair_radius.get(node, 0.0), half_width[key])
                corners.setdefault(node, []).append(segment.path[-end].astype(np.float64))
                degree[node] = degree.get(node, 0) + 1
    centres = {node: [np.mean(points, axis=0)] for node, points in corners.items()}
    parent = {node: node for node in degree}

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    changed = True
    while changed:
        changed = False
        for key in sorted(segments, key=lambda k: len(segments[k].path)):
            segment = segments[key]
            a, b = (find(n) if n >= 0 else -1 for n in segment.nodes)
            length = len(segment.path)
            if a >= 0 and b >= 0 and a != b:
                reach = params.bridge_factor * (hair_radius[a] + hair_radius[b]) + 2
                if length > reach or len(centres[a]) + len(centres[b]) > 8:
                    continue
                union = centres[a] + centres[b]
                extent = max(float(np.hypot(*(p - q))) for p in union for q in union)
                if extent <= 2 * reach:
                    # Merge the two junctions into one: a crossing seen as two branch points.
                    parent[b] = a
                    radius[a] = max(radius.get(a, 0.0), radius.get(b, 0.0))
                    hair_radius[a] = max(hair_radius[a], hair_radius[b])
                    centres[a] = union
                    degree[a] += degree[b] - 2
                    del segments[key]
                    changed = True
            elif (a >= 0) != (b >= 0):
                node = a if a >= 0 else b
                end = segment.path[-1] if a >= 0 else segment.path[0]
                if (degree[node] >= 3 and length <= params.spur_factor * hair_radius[node] + 2
                        and not _near_border(end, shape)):
                    degree[node] -= 1
                    del segments[key]
                    changed = True
            elif a >= 0 and a == b and length <= params.bridge_factor * 2 * hair_radius[a] + 2:
                degree[a] -= 2
                del segments[key]  # a tiny loop at one junction: a pinhole the filling missed
                changed = True
    for segment in segments.values():
        segment.nodes = [find(n) if n >= 0 else -1 for n in segment.nodes]


def _split_at_corners(
    segments: dict[int, Segment], radius: dict[int, float], distance: np.ndarray, params: TraceParams
) -> None:
    """Cut segments where the skeleton turns sharply.

    Two hairs leaving one follicle at an acute angle make a V whose skeleton is one unbroken
    curve, with no branch point; a shaft never bends that sharply over a few widths. The cut
    is a new junction of two ends, which the pairing then keeps apart.
    """
    limit = math.radians(params.corner_deg)
    next_node = max([n for s in segments.values() for n in s.nodes] + list(radius) + [0]) + 1
    next_key = max(segments, default=0) + 1
    queue = list(segments)
    while queue:
        key = queue.pop()
        path = segments[key].path.astype(np.float64)
        n = len(path)
        half = np.maximum(distance[segments[key].path[:, 0], segments[key].path[:, 1]], 1.0)
        best, where = 0.0, -1
        for i in range(3, n - 3):
            step = int(max(4, round(2.0 * half[i])))
            if i - step < 0 or i + step >= n:
                continue
            before, after = path[i] - path[i - step], path[i + step] - path[i]
            cosine = float(np.dot(before, after)) / (np.hypot(*before) * np.hypot(*after) + 1e-9)
            turn = math.acos(max(-1.0, min(1.0, cosine)))
            if turn > best:
                best, where = turn, i
        if best < limit:
            continue
        node = next_node
        next_node += 1
        radius[node] = float(half[where])
        segment = segments[key]
        first = Segment(segment.path[: where + 1], [segment.nodes[0], node])
        second = Segment(segment.path[where:], [node, segment.nodes[1]])
        segments[key] = first
        segments[next_key] = second
        queue += [key, next_key]
        next_key += 1


# ============================================================================= geometry
def _end_direction(segment: Segment, end: int, radius: dict[int, float], reach_px: float = 12.0) -> np.ndarray:
    """Unit (row, col) direction into the segment from ``end``, read beyond the junction zone.

    A straight line is fitted (principal axis) to the stretch from the junction's edge to
    ``reach_px`` (or three junction radii) further in; a skeleton bends inside a junction.
    """
    path = segment.path if end == 0 else segment.path[::-1]
    node = segment.nodes[end]
    n = len(path)
    skip = min(round(radius.get(node, 1.0)) if node >= 0 else 0, n // 3)
    reach = min(n, skip + int(max(reach_px, 3 * radius.get(node, 2.0))))
    stretch = path[skip:reach].astype(np.float64)
    if len(stretch) < 2:
        stretch = path.astype(np.float64)
    if len(stretch) < 2:
        return np.array([0.0, 1.0])
    centred = stretch - stretch.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    direction = axes[0]
    if float(np.dot(direction, stretch[-1] - stretch[0])) < 0:
        direction = -direction
    return direction


def _measure_widths(segments: dict[int, Segment], mask: np.ndarray, skeleton: np.ndarray, radius: dict[int, float]) -> None:
    """Width of each segment: the mask area it owns divided by its length, away from its ends.

    Every mask pixel belongs to its nearest skeleton pixel; near a junction or a free end the
    territory is not a slab across the shaft, so those stretches are left out. Short segments
    fall back to twice the distance transform on the skeleton.
    """
    owner = np.full(mask.shape, -1, np.int64)
    interior = np.zeros(mask.shape, bool)
    distance = ndimage.distance_transform_edt(mask)
    lengths: dict[int, float] = {}
    for key, segment in segments.items():
        path = segment.path
        owner[path[:, 0], path[:, 1]] = key
        margins = [radius.get(node, 0.0) + 1.0 if node >= 0 else distance[tuple(path[-end])] + 1.0 for end, node in
                   enumerate(segment.nodes)]
        arc = np.concatenate([[0.0], np.cumsum(np.sqrt((np.diff(path.astype(np.float64), axis=0) ** 2).sum(axis=1)))])
        inner = (arc >= margins[0]) & (arc <= arc[-1] - margins[1])
        if inner.sum() >= 3:
            interior[path[inner, 0], path[inner, 1]] = True
            # Each skeleton pixel owns a slab one step long: add one mean step to the span.
            lengths[key] = float(arc[inner][-1] - arc[inner][0]) + float(np.mean(np.diff(arc)))
    _, (rows, cols) = ndimage.distance_transform_edt(owner < 0, return_indices=True)
    nearest_owner = owner[rows, cols]
    nearest_inner = interior[rows, cols]
    counted = mask & nearest_inner
    areas = np.bincount(nearest_owner[counted], minlength=max(segments, default=0) + 1)
    for key, segment in segments.items():
        if key in lengths and lengths[key] > 0:
            segment.width = float(areas[key]) / lengths[key]
        else:
            values = distance[segment.path[:, 0], segment.path[:, 1]]
            segment.width = max(1.0, 2.0 * float(np.median(values)) - 1.0)


# ============================================================================= grouping
Pair = tuple[int, int, int, int]  # (segment a, end of a, segment b, end of b)


def _ends_at(segments: dict[int, Segment]) -> dict[int, list[tuple[int, int]]]:
    """For each junction, the (segment, end) pairs that meet there."""
    ends_at: dict[int, list[tuple[int, int]]] = {}
    for key, segment in segments.items():
        for end, node in enumerate(segment.nodes):
            if node >= 0:
                ends_at.setdefault(node, []).append((key, end))
    return ends_at


def _pair_at_junctions(segments: dict[int, Segment], params: TraceParams) -> list[Pair]:
    """At each junction pair the ends that continue each other, best continuation first."""
    limit = math.cos(math.radians(params.max_pass_angle_deg))
    pairs: list[Pair] = []
    for ends in _ends_at(segments).values():
        candidates = []
        for i in range(len(ends)):
            for j in range(i + 1, len(ends)):
                (a, ea), (b, eb) = ends[i], ends[j]
                if a == b:
                    continue
                straightness = -float(np.dot(segments[a].directions[ea], segments[b].directions[eb]))
                if straightness < limit:
                    continue
                offset = 0.5 * (_lateral_offset(segments[a], ea, segments[b], eb)
                                + _lateral_offset(segments[b], eb, segments[a], ea))
                if offset > params.offset_factor * (segments[a].width + segments[b].width) / 2 + params.offset_px:
                    continue
                # Bend and sideways step both say "not a continuation": rank by the two together.
                cost = math.degrees(math.acos(min(1.0, straightness))) + params.offset_weight * offset
                candidates.append((cost, ends[i], ends[j]))
        candidates.sort(key=lambda c: c[0])
        used: set[tuple[int, int]] = set()
        for _, first, second in candidates:
            if first in used or second in used:
                continue
            used.update((first, second))
            pairs.append((first[0], first[1], second[0], second[1]))
    return pairs


def _lateral_offset(a: Segment, ea: int, b: Segment, eb: int) -> float:
    """How far b's end lies off the line a's end points along (px): parallel shafts pass by."""
    pa = a.path[-ea].astype(np.float64)
    pb = b.path[-eb].astype(np.float64)
    direction = a.directions[ea]
    delta = pb - pa
    return abs(float(delta[0] * direction[1] - delta[1] * direction[0]))


def _bridge_gaps(segments: dict[int, Segment], params: TraceParams, support: np.ndarray | None = None) -> list[Pair]:
    """Pair free ends that face each other across a small gap: one shaft the mask broke.

    With a ``support`` mask (the hair mask under centre lines) the reach grows to
    ``support_gap_widths`` hair widths where the gap runs inside the support.
    """
    free = [(key, end) for key, s in segments.items() for end in (0, 1) if s.nodes[end] < 0 and not s.on_border[end]]
    if len(free) < 2:
        return []
    points = np.array([segments[k].path[-e] for k, e in free], np.float64)
    limit = math.cos(math.radians(params.max_pass_angle_deg))
    supported = support is not None and params.support_gap_widths > 0
    if supported:
        # Hair width at each free end: twice the support's distance transform there.
        support_distance = ndimage.distance_transform_edt(support)
        hair_width = 2.0 * support_distance[points[:, 0].astype(int), points[:, 1].astype(int)]
    candidates = []
    for i in range(len(free)):
        a, ea = free[i]
        reach = max(params.min_gap_px, params.gap_px * segments[a].width)
        long_reach = params.support_gap_widths * hair_width[i] if supported else 0.0
        delta = points - points[i]
        distance = np.hypot(delta[:, 0], delta[:, 1])
        for j in np.flatnonzero((distance <= max(reach, long_reach)) & (distance > 0)):
            if j <= i:
                continue
            b, eb = free[j]
            if a == b:
                continue
            gap = delta[j] / distance[j]
            # Directions point into each segment; across a gap a's end looks at b, and back.
            outward_a, outward_b = -segments[a].directions[ea], -segments[b].directions[eb]
            # Two pieces of one shaft: their directions continue each other, their ends face
            # each other, and the far end lies close to the near one's line (the network's
            # pieces of one shaft are often a pixel or two off each other's line).
            if float(np.dot(outward_a, -outward_b)) < limit or float(np.dot(outward_a, gap)) <= 0 \
                    or float(np.dot(outward_b, -gap)) <= 0:
                continue
            across = hair_width[i] if supported else segments[a].width
            if _lateral_offset(segments[a], ea, segments[b], eb) > params.gap_offset_factor * across + params.offset_px:
                continue
            if distance[j] > reach and not _inside(support, points[i], points[j], params.support_inside):
                continue
            candidates.append((distance[j], free[i], free[j]))
    candidates.sort(key=lambda c: c[0])
    used: set[tuple[int, int]] = set()
    pairs = []
    for _, first, second in candidates:
        if first in used or second in used:
            continue
        used.update((first, second))
        pairs.append((first[0], first[1], second[0], second[1]))
    return pairs


def _inside(support: np.ndarray | None, start: np.ndarray, stop: np.ndarray, share: float) -> bool:
    """Whether at least ``share`` of the straight line from ``start`` to ``stop`` lies in ``support``."""
    if support is None:
        return False
    steps = max(2, math.ceil(float(np.hypot(*(stop - start)))) + 1)
    line = np.rint(np.linspace(start, stop, steps)).astype(int)
    return float(support[line[:, 0], line[:, 1]].mean()) >= share


def _side_by_side(segments: dict[int, Segment], pairs: list[Pair], params: TraceParams) -> None:
    """Find stretches where hairs lie side by side: a segment about twice as wide as the
    hairs it continues into, where two of them leave on its far side.

    A segment that splits into two onward shafts at *both* of its ends (an X whose middle is
    drawn out: two hairs crossing at a shallow angle, or touching for a while) is two hairs
    as soon as it is clearly wider than either of them.
    """
    ends_at = _ends_at(segments)
    limit = math.cos(math.radians(params.max_pass_angle_deg))
    for key, segment in segments.items():
        best, splits = 1, []
        for end, node in enumerate(segment.nodes):
            if node < 0:
                continue
            onward = [
                (k, e) for k, e in ends_at[node]
                if k != key and -float(np.dot(segments[k].directions[e], segment.directions[end])) >= limit
            ]
            if len(onward) < 2:
                continue
            widths = sorted((segments[k].width for k, _ in onward), reverse=True)[:3]
            splits.append(widths)
            for count in (3, 2):
                if len(widths) >= count:
                    total = sum(widths[:count])
                    if 0.7 * total <= segment.width <= 1.35 * total and segment.width >= params.side_by_side_ratio * widths[0]:
                        best = max(best, count)
                        break
        if best == 1 and len(splits) == 2 and all(segment.width >= 1.2 * w[0] for w in splits):
            best = 2
        segment.multiplicity = best


def _assemble(segments: dict[int, Segment], pairs: list[Pair], params: TraceParams) -> list[Shaft]:
    """Strands (a segment's ``multiplicity`` copies) tied by the pairings → shafts."""
    strand_ids: dict[tuple[int, int], int] = {}
    for key, segment in segments.items():
        for copy in range(segment.multiplicity):
            strand_ids[(key, copy)] = len(strand_ids)
    parent = list(range(len(strand_ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Each end of a segment offers its copies, one per pairing that passes through it.
    free_copies = {(key, end): list(range(s.multiplicity)) for key, s in segments.items() for end in (0, 1)}
    # Side-by-side segments pass on to as many partners as they hold hairs.
    extra = _extra_pairs(segments, pairs, params)
    for a, ea, b, eb in pairs + extra:
        if not free_copies[(a, ea)] or not free_copies[(b, eb)]:
            continue
        ca, cb = free_copies[(a, ea)].pop(0), free_copies[(b, eb)].pop(0)
        ra, rb = find(strand_ids[(a, ca)]), find(strand_ids[(b, cb)])
        if ra != rb:
            parent[rb] = ra
    groups: dict[int, list[tuple[int, int]]] = {}
    for strand, index in strand_ids.items():
        groups.setdefault(find(index), []).append(strand)
    shafts = []
    for members in groups.values():
        keys = [key for key, _ in members]
        length = sum(segments[k].length for k in keys)
        if length < params.min_length_px:
            continue
        weights = np.array([segments[k].length for k in keys])
        widths = np.array([segments[k].width / segments[k].multiplicity for k in keys])
        single = np.array([segments[k].multiplicity == 1 for k in keys])
        if single.any():
            weights, widths = weights[single], widths[single]
        width = float(np.average(widths, weights=weights))
        shafts.append(Shaft([segments[k].path for k in keys], width, float(length)))
    return shafts


def _extra_pairs(segments: dict[int, Segment], pairs: list[Pair], params: TraceParams) -> list[Pair]:
    """For side-by-side segments, pair their spare copies with the next straightest ends."""
    extra: list[Pair] = []
    ends_at = _ends_at(segments)
    taken: dict[tuple[int, int], int] = {}
    for a, ea, b, eb in pairs:
        taken[(a, ea)] = taken.get((a, ea), 0) + 1
        taken[(b, eb)] = taken.get((b, eb), 0) + 1
    limit = math.cos(math.radians(params.max_pass_angle_deg))
    for key, segment in segments.items():
        if segment.multiplicity < 2:
            continue
        for end, node in enumerate(segment.nodes):
            if node < 0:
                continue
            spare = segment.multiplicity - taken.get((key, end), 0)
            options = sorted(
                ((-float(np.dot(segments[k].directions[e], segment.directions[end])), (k, e)) for k, e in ends_at[node]
                 if k != key),
                reverse=True,
            )
            for straightness, (k, e) in options:
                if spare <= 0 or straightness < limit:
                    break
                if taken.get((k, e), 0) >= segments[k].multiplicity:
                    continue
                extra.append((key, end, k, e))
                taken[(k, e)] = taken.get((k, e), 0) + 1
                taken[(key, end)] = taken.get((key, end), 0) + 1
                spare -= 1
    return extra

"""Relabel maps: YAML data that turns a source's class names into scalpscope labels.

A map names, for each source class, what it means here:

- ``kinds``: the region kinds a box or polygon of that class becomes (one region each);
- ``grade``: the region's ``low|mid|high`` grade, when the class carries one;
- ``hair_loss``: the image-level Low/Mid/High hair-loss grade;
- ``indicators``: image-level 0-3 grades (``{dandruff: 2}``);
- ``view``: ``closeup`` or ``head`` when it differs from the map's default.

Maps shipped with scalpscope live beside this file; ``--relabel MAP.yaml`` uses your own.
An unmapped class is an error naming the class, the file and the map to edit.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.taxonomy import HAIR_LOSS_GRADES, INDICATORS, VIEWS, check_hair_loss_grade, check_indicator

BUILTIN_DIR = Path(__file__).parent


class RelabelError(ValueError):
    """A class the map does not know, or a map that is malformed."""


def _normal(name: str) -> str:
    return " ".join(str(name).replace("_", " ").replace("-", " ").split()).casefold()


@dataclass(frozen=True)
class ClassRule:
    kinds: tuple[str, ...] = ()
    grade: str | None = None
    hair_loss: str | None = None
    indicators: dict[str, int] = field(default_factory=dict)
    view: str | None = None


@dataclass
class RelabelMap:
    name: str
    path: Path
    view: str | None = None
    classes: dict[str, ClassRule] = field(default_factory=dict)
    match_classes: tuple[str, ...] = ()
    native_scale: tuple[str, ...] = ()
    hair_loss_grades: dict[int, str] = field(default_factory=lambda: {0: "low", 1: "mid", 2: "high", 3: "high"})

    @classmethod
    def load(cls, path: str | Path) -> RelabelMap:
        path = Path(path)
        if not path.is_file():
            raise RelabelError(f"relabel map {path} not found; shipped maps: {', '.join(builtin_names())}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise RelabelError(f"relabel map {path} is not valid YAML ({err})") from err
        return cls.from_dict(data, path)

    @classmethod
    def builtin(cls, name: str) -> RelabelMap:
        return cls.load(BUILTIN_DIR / f"{name}.yaml")

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> RelabelMap:
        try:
            view = data.get("view")
            if view is not None and view not in VIEWS:
                raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
            classes = {str(k): _parse_rule(v or {}) for k, v in (data.get("classes") or {}).items()}
            grades = {int(k): check_hair_loss_grade(str(v)) for k, v in (data.get("hair_loss_grades") or {}).items()}
        except (ValueError, TypeError, AttributeError) as err:
            raise RelabelError(f"relabel map {path}: {err}") from err
        out = cls(
            name=str(data.get("name") or path.stem),
            path=path,
            view=view,
            classes=classes,
            match_classes=tuple(str(c) for c in (data.get("match") or {}).get("classes", [])),
            native_scale=tuple(str(c) for c in data.get("native_scale") or ()),
        )
        if grades:
            out.hair_loss_grades = grades
        return out

    def rule(self, class_name: str, file: str | Path) -> ClassRule:
        """The rule for a source class; unknown classes stop the import with what to edit."""
        if class_name in self.classes:
            return self.classes[class_name]
        wanted = _normal(class_name)
        for key, rule in self.classes.items():
            if _normal(key) == wanted:
                return rule
        raise RelabelError(
            f"class {class_name!r} in {file} is not in relabel map {self.path}; "
            f"add it under 'classes:' there (or pass --relabel YOUR_MAP.yaml)"
        )

    def knows(self, class_names: Iterable[str]) -> bool:
        normal = {_normal(k) for k in self.classes}
        return all(c in self.classes or _normal(c) in normal for c in class_names)

    def hair_loss_from_indicator(self, grade: int | None) -> str | None:
        if grade is None:
            return None
        if grade not in self.hair_loss_grades:
            raise RelabelError(f"relabel map {self.path} has no hair_loss_grades entry for grade {grade}")
        return self.hair_loss_grades[grade]

    def to_yaml(self) -> str:
        """The map as applied, written into the dataset folder as ``relabel.yaml``."""
        return self.path.read_text(encoding="utf-8")


def _parse_rule(raw: dict[str, Any]) -> ClassRule:
    if not isinstance(raw, dict):
        raise TypeError(f"each class maps to a table like {{kinds: [dandruff]}}, got {raw!r}")
    unknown = set(raw) - {"kinds", "grade", "hair_loss", "indicators", "view"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in class rule {raw!r}")
    kinds = tuple(check_indicator(k) for k in raw.get("kinds", ()))
    grade = check_hair_loss_grade(raw.get("grade"))
    hair_loss = check_hair_loss_grade(raw.get("hair_loss"))
    indicators = {check_indicator(k): int(v) for k, v in (raw.get("indicators") or {}).items()}
    for name, value in indicators.items():
        if value not in (0, 1, 2, 3):
            raise ValueError(f"indicator {name} grade must be 0-3, got {value}")
    view = raw.get("view")
    if view is not None and view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return ClassRule(kinds=kinds, grade=grade, hair_loss=hair_loss, indicators=indicators, view=view)


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def auto_map(class_names: Iterable[str], source: Path) -> RelabelMap:
    """Pick the shipped map that knows every class name of a source, preferring exact matches."""
    names = sorted(set(class_names))
    candidates = [RelabelMap.builtin(n) for n in builtin_names()]
    exact = [m for m in candidates if m.match_classes and set(m.match_classes) == set(names)]
    if exact:
        return exact[0]
    covering = [m for m in candidates if m.classes and m.knows(names)]
    if covering:
        return covering[0]
    raise RelabelError(
        f"no shipped relabel map knows all classes of {source} ({', '.join(names) or 'none'}); "
        f"write one (see datasets/relabel/*.yaml) and pass --relabel MAP.yaml"
    )


__all__ = ["HAIR_LOSS_GRADES", "INDICATORS", "ClassRule", "RelabelError", "RelabelMap", "auto_map", "builtin_names"]

"""A visit: one analysed picture of a person on a date, as the history store keeps it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from core.analysis import Analysis
from tracking.capture import CaptureProfile

log = logging.getLogger(__name__)

EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL = 36867

#: Where a visit date came from, most trusted first.
DATE_SOURCES = ("given", "exif", "mtime")


@dataclass(frozen=True)
class Visit:
    """One recorded analysis of a person's picture."""

    id: int
    subject: str
    visit_date: datetime
    date_source: str | None  # given | exif | mtime; None for visits recorded before schema v2
    view: str | None  # closeup | head
    image_path: Path
    image_sha256: str
    analysis: Analysis
    capture: CaptureProfile | None  # None for visits recorded before schema v2, until backfilled
    models: dict[str, str] = field(default_factory=dict)  # stage -> sha256 of the weights
    recorded_at: datetime | None = None
    has_overlay: bool = False

    @property
    def label(self) -> str:
        """How people name the visit: its date."""
        return self.visit_date.strftime("%Y-%m-%d")


def exif_date(path: Path) -> datetime | None:
    """``DateTimeOriginal`` from the picture's EXIF, or None when absent or unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            raw = img.getexif().get_ifd(EXIF_IFD).get(EXIF_DATETIME_ORIGINAL)
    except (OSError, ValueError, SyntaxError):
        return None
    if not raw:
        return None
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    try:
        return datetime.strptime(text.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        log.warning("%s: EXIF DateTimeOriginal %r is not a date; using the file time", path, text)
        return None


def parse_visit_date(value: date | datetime | str) -> datetime:
    """A visit date people give: a date, a datetime, or ISO text (``2024-05-01`` or ``2024-05-01T09:30``)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value).strip()).replace(tzinfo=None, microsecond=0)
    except ValueError as err:
        raise ValueError(f"visit date {value!r} is not a date: write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM") from err


def resolve_visit_date(image_path: Path, given: date | datetime | str | None = None) -> tuple[datetime, str]:
    """The visit date and where it came from: the date given, else EXIF ``DateTimeOriginal``,
    else the file's modification time.

    A date given wins because it is a person correcting the camera (a wrong clock, a photo
    copied off a phone, which resets the file time).
    """
    if given is not None:
        return parse_visit_date(given), "given"
    taken = exif_date(image_path)
    if taken is not None:
        return taken, "exif"
    return datetime.fromtimestamp(Path(image_path).stat().st_mtime).replace(microsecond=0), "mtime"

"""The history store: one SQLite file of analysed visits per person.

Nothing is written without a subject id: :meth:`HistoryStore.record` refuses an empty one,
and the command line opens a store only when ``--subject`` is given. Every write is one
transaction (WAL journal, ``synchronous=FULL``), so a process killed mid-write leaves the
visits committed before it, complete, and nothing of the one it was writing.
:meth:`HistoryStore.delete_subject` removes a person from every table, then VACUUMs and
checkpoints so their data does not linger in free pages or the journal.

>>> with HistoryStore("runs/history.sqlite") as store:                    # doctest: +SKIP
...     visit_id = store.record("alice", analysis, "visit1.jpg", rgb=loaded.rgb)
...     store.visits("alice")[-1].analysis.hair_loss.grade
'mid'
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np

from core.analysis import Analysis
from core.io import sha256_file
from tracking.capture import CaptureProfile, capture_profile
from tracking.schema import SUBJECT_TABLES, SchemaError, migrate
from tracking.visit import Visit, resolve_visit_date

log = logging.getLogger(__name__)

#: Long side of the overlay kept with each visit, so the history page survives a moved photo.
OVERLAY_SIDE = 720
MAX_SUBJECT_LENGTH = 128


class HistoryError(ValueError):
    """A history request that cannot be done; ``str(err)`` says what to do instead."""


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/scalpscope/history.sqlite``, else ``~/.local/share/scalpscope/history.sqlite``."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "scalpscope" / "history.sqlite"


def check_subject(subject: str | None) -> str:
    """A subject id as stored: trimmed, non-empty, printable, at most 128 characters."""
    text = "" if subject is None else str(subject).strip()
    if not text:
        raise HistoryError("a subject id is required to store or read a history (nothing is stored without one)")
    if len(text) > MAX_SUBJECT_LENGTH:
        raise HistoryError(f"subject id is {len(text)} characters long; use at most {MAX_SUBJECT_LENGTH}")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise HistoryError(f"subject id {text!r} contains control characters; use letters, digits and punctuation")
    return text


def _now() -> str:
    return datetime.now().replace(microsecond=0).isoformat()


def _overlay_jpeg(analysis: Analysis, rgb: np.ndarray) -> bytes | None:
    from PIL import Image

    try:
        overlay = Image.fromarray(analysis.plot(rgb))
    except Exception as err:  # noqa: BLE001 - a drawing bug must never lose the visit itself
        log.warning("%s: overlay not stored (%s: %s)", analysis.image, type(err).__name__, err)
        return None
    overlay.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    overlay.save(buffer, format="JPEG", quality=82)
    return buffer.getvalue()


class HistoryStore:
    """Visits of people over time in one SQLite file (created on first use unless ``create=False``)."""

    def __init__(self, path: str | Path | None = None, *, create: bool = True) -> None:
        self.path = Path(path).expanduser() if path else default_db_path()
        if not self.path.exists():
            if not create:
                raise HistoryError(
                    f"{self.path}: no history database here; record visits with 'analyze PATH --subject ID' "
                    "or pass the right --db"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Health data: readable by its owner only (SQLite gives -wal and -shm the same mode).
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA secure_delete = ON")  # deleted rows are zeroed, not left in free pages
            migrate(self._conn, name=str(self.path))
        except SchemaError as err:
            self._conn.close()
            raise HistoryError(str(err)) from err
        except sqlite3.DatabaseError as err:
            self._conn.close()
            raise HistoryError(f"{self.path}: not a readable SQLite database ({err}); pass another --db") from err

    # --------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HistoryStore({str(self.path)!r})"

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # --------------------------------------------------------------------- writing
    def record(
        self,
        subject: str,
        analysis: Analysis,
        image_path: str | Path,
        visit_date: date | datetime | str | None = None,
        rgb: np.ndarray | None = None,
        keep_overlay: bool = True,
    ) -> int:
        """Store one analysed picture as a visit of ``subject``; returns the visit id.

        Idempotent: a picture already recorded for this subject (same file bytes) returns its
        existing visit id and changes nothing. ``rgb`` is the decoded picture the analysis saw
        (``load_image(image_path).rgb`` when omitted); the capture profile and the stored
        overlay are taken from it. The visit date is ``visit_date`` when given, else EXIF
        ``DateTimeOriginal``, else the file's modification time.
        """
        subject = check_subject(subject)
        image_path = Path(image_path)
        try:
            image_sha256 = sha256_file(image_path)
        except FileNotFoundError as err:
            raise HistoryError(f"{image_path}: picture not found; a visit is recorded from the analysed file") from err
        existing = self._conn.execute(
            "SELECT id FROM visits WHERE subject = ? AND image_sha256 = ?", (subject, image_sha256)
        ).fetchone()
        if existing:
            log.info("%s is already visit %d of %s; not recorded twice", image_path, existing[0], subject)
            return int(existing[0])
        # The slow parts happen before the write lock is taken.
        if rgb is None:
            from core.images import load_image

            rgb = load_image(image_path).rgb
        profile = capture_profile(rgb)
        when, date_source = resolve_visit_date(image_path, visit_date)
        overlay = _overlay_jpeg(analysis, rgb) if keep_overlay else None
        with self._transaction():
            row = self._conn.execute(
                """INSERT INTO visits (subject, visit_date, date_source, view, image_path, image_sha256,
                                       analysis_json, capture_json, recorded_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (subject, image_sha256) DO NOTHING RETURNING id""",
                (
                    subject,
                    when.isoformat(),
                    date_source,
                    analysis.view,
                    str(image_path.resolve()),
                    image_sha256,
                    analysis.to_json(indent=None),
                    json.dumps(profile.to_dict()),
                    _now(),
                ),
            ).fetchone()
            if row is None:  # another process recorded the same picture meanwhile
                return int(
                    self._conn.execute(
                        "SELECT id FROM visits WHERE subject = ? AND image_sha256 = ?", (subject, image_sha256)
                    ).fetchone()[0]
                )
            visit_id = int(row[0])
            self._conn.executemany(
                "INSERT INTO visit_models (visit_id, stage, sha256) VALUES (?, ?, ?)",
                [(visit_id, stage, sha) for stage, sha in sorted(analysis.models.items())],
            )
            if overlay is not None:
                self._conn.execute("INSERT INTO overlays (visit_id, jpeg) VALUES (?, ?)", (visit_id, overlay))
        log.debug("recorded %s as visit %d of %s (%s, date from %s)", image_path, visit_id, subject, when, date_source)
        return visit_id

    def remember_report(self, subject: str, path: str | Path) -> None:
        """Note a page written about ``subject`` so that :meth:`delete_subject` removes it too."""
        subject = check_subject(subject)
        path = Path(path).resolve()
        with self._transaction():
            self._conn.execute(
                """INSERT INTO reports (subject, path, sha256, written_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (subject, path) DO UPDATE SET sha256 = excluded.sha256, written_at = excluded.written_at""",
                (subject, str(path), sha256_file(path), _now()),
            )

    def backfill_capture_profiles(self, subject: str) -> int:
        """Measure capture profiles that visits recorded before schema v2 lack, from pictures
        still on disk with the same bytes; returns how many were filled."""
        from core.images import ImageError, load_image

        subject = check_subject(subject)
        missing = self._conn.execute(
            "SELECT id, image_path, image_sha256 FROM visits WHERE subject = ? AND capture_json IS NULL", (subject,)
        ).fetchall()
        filled = 0
        for visit_id, image_path, image_sha256 in missing:
            path = Path(image_path)
            try:
                if sha256_file(path) != image_sha256:
                    continue
                profile = capture_profile(load_image(path).rgb)
            except (OSError, ImageError):
                continue
            with self._transaction():
                self._conn.execute(
                    "UPDATE visits SET capture_json = ? WHERE id = ?", (json.dumps(profile.to_dict()), visit_id)
                )
            filled += 1
        return filled

    def delete_subject(self, subject: str) -> int:
        """Remove every trace of ``subject``: visits, model hashes, stored overlays, and the
        pages ``history`` wrote (where unchanged since); then VACUUM. Returns the visits removed."""
        subject = check_subject(subject)
        with self._transaction():
            ids = [row[0] for row in self._conn.execute("SELECT id FROM visits WHERE subject = ?", (subject,))]
            reports = self._conn.execute("SELECT path, sha256 FROM reports WHERE subject = ?", (subject,)).fetchall()
            self._conn.executemany("DELETE FROM overlays WHERE visit_id = ?", [(i,) for i in ids])
            self._conn.executemany("DELETE FROM visit_models WHERE visit_id = ?", [(i,) for i in ids])
            self._conn.execute("DELETE FROM visits WHERE subject = ?", (subject,))
            self._conn.execute("DELETE FROM reports WHERE subject = ?", (subject,))
        for path_text, written_sha256 in reports:
            path = Path(path_text)
            try:
                if sha256_file(path) == written_sha256:
                    path.unlink()
                else:
                    log.warning("%s: a page about %s was edited since it was written; left in place", path, subject)
            except FileNotFoundError:
                pass
        if ids or reports:
            self.compact()
        return len(ids)

    def compact(self) -> None:
        """VACUUM and fold the WAL into the file, so deleted data is in neither."""
        self._conn.execute("VACUUM")
        busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("%s: another process holds the database; the journal is cleared when it closes", self.path)

    # --------------------------------------------------------------------- reading
    def subjects(self) -> dict[str, int]:
        """Every subject id with its number of visits."""
        rows = self._conn.execute("SELECT subject, count(*) FROM visits GROUP BY subject ORDER BY subject")
        return {subject: int(count) for subject, count in rows}

    def visits(self, subject: str) -> list[Visit]:
        """The visits of ``subject``, oldest first (by visit date, then by order recorded)."""
        subject = check_subject(subject)
        rows = self._conn.execute(
            """SELECT v.id, v.subject, v.visit_date, v.date_source, v.view, v.image_path, v.image_sha256,
                      v.analysis_json, v.capture_json, v.recorded_at,
                      EXISTS (SELECT 1 FROM overlays o WHERE o.visit_id = v.id)
               FROM visits v WHERE v.subject = ? ORDER BY v.visit_date, v.id""",
            (subject,),
        ).fetchall()
        models: dict[int, dict[str, str]] = {}
        for visit_id, stage, sha in self._conn.execute(
            """SELECT m.visit_id, m.stage, m.sha256 FROM visit_models m
               JOIN visits v ON v.id = m.visit_id WHERE v.subject = ?""",
            (subject,),
        ):
            models.setdefault(visit_id, {})[stage] = sha
        return [self._visit(row, models.get(row[0], {})) for row in rows]

    def overlay_jpeg(self, visit_id: int) -> bytes | None:
        """The overlay stored when the visit was recorded, as JPEG bytes."""
        row = self._conn.execute("SELECT jpeg FROM overlays WHERE visit_id = ?", (visit_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def row_counts(self, subject: str) -> dict[str, int]:
        """Rows of ``subject`` in each table (what ``--delete`` must bring to zero)."""
        subject = check_subject(subject)
        ids = "SELECT id FROM visits WHERE subject = ?"
        queries = {
            "visits": "SELECT count(*) FROM visits WHERE subject = ?",
            "visit_models": f"SELECT count(*) FROM visit_models WHERE visit_id IN ({ids})",
            "overlays": f"SELECT count(*) FROM overlays WHERE visit_id IN ({ids})",
            "reports": "SELECT count(*) FROM reports WHERE subject = ?",
        }
        return {table: int(self._conn.execute(queries[table], (subject,)).fetchone()[0]) for table in SUBJECT_TABLES}

    @staticmethod
    def _visit(row: tuple[Any, ...], models: dict[str, str]) -> Visit:
        (
            visit_id,
            subject,
            visit_date,
            date_source,
            view,
            image_path,
            image_sha256,
            analysis_json,
            capture_json,
            recorded_at,
            has_overlay,
        ) = row
        return Visit(
            id=int(visit_id),
            subject=subject,
            visit_date=datetime.fromisoformat(visit_date),
            date_source=date_source,
            view=view,
            image_path=Path(image_path),
            image_sha256=image_sha256,
            analysis=Analysis.from_json(analysis_json),
            capture=None if capture_json is None else CaptureProfile.from_dict(json.loads(capture_json)),
            models=models,
            recorded_at=datetime.fromisoformat(recorded_at) if recorded_at else None,
            has_overlay=bool(has_overlay),
        )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")

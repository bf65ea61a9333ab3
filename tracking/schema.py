"""The history database layout and its migrations.

The version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` is the ordered list of steps,
step ``n`` taking a database from version ``n`` to ``n + 1``. Each step runs in its own
transaction together with the version bump, so a crash leaves the database at the version
before or after the step, never half-way. Never edit a released step: append a new one.

Version 1 (first draft): ``visits`` only, model hashes inside the analysis JSON.
Version 2: model hashes in ``visit_models`` (filled from the JSON of existing visits), how the
visit date was found (``date_source``), the capture profile, stored overlays, and the pages
``history`` wrote (so ``--delete`` can remove them).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable


def _v1_visits(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE visits (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            visit_date TEXT NOT NULL,          -- ISO 8601, local time of the capture
            view TEXT,                         -- closeup | head | NULL
            image_path TEXT NOT NULL,
            image_sha256 TEXT NOT NULL,        -- sha256 of the file bytes
            analysis_json TEXT NOT NULL,       -- the full Analysis
            recorded_at TEXT NOT NULL,
            UNIQUE (subject, image_sha256)
        )"""
    )
    conn.execute("CREATE INDEX visits_by_subject ON visits (subject, visit_date)")


def _v2_models_capture_overlays(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE visits ADD COLUMN date_source TEXT")  # exif | mtime | given
    conn.execute("ALTER TABLE visits ADD COLUMN capture_json TEXT")  # CaptureProfile; NULL before v2
    conn.execute(
        """CREATE TABLE visit_models (
            visit_id INTEGER NOT NULL REFERENCES visits (id) ON DELETE CASCADE,
            stage TEXT NOT NULL,               -- detector | segmenter | classifier | ...
            sha256 TEXT NOT NULL,
            PRIMARY KEY (visit_id, stage)
        )"""
    )
    conn.execute(
        """CREATE TABLE overlays (
            visit_id INTEGER PRIMARY KEY REFERENCES visits (id) ON DELETE CASCADE,
            jpeg BLOB NOT NULL                 -- Analysis.plot at record time, downscaled
        )"""
    )
    conn.execute(
        """CREATE TABLE reports (
            subject TEXT NOT NULL,
            path TEXT NOT NULL,                -- absolute path of a page 'history' wrote
            sha256 TEXT NOT NULL,
            written_at TEXT NOT NULL,
            PRIMARY KEY (subject, path)
        )"""
    )
    rows = conn.execute("SELECT id, analysis_json FROM visits").fetchall()
    for visit_id, analysis_json in rows:
        # Plain JSON, not the Analysis class: a migration must read the data as it was then.
        models = json.loads(analysis_json).get("models") or {}
        conn.executemany(
            "INSERT INTO visit_models (visit_id, stage, sha256) VALUES (?, ?, ?)",
            [(visit_id, stage, sha) for stage, sha in sorted(models.items())],
        )


#: Step ``i`` takes a database from version ``i`` to ``i + 1``.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_visits, _v2_models_capture_overlays]
LATEST_VERSION = len(MIGRATIONS)

#: Every table that holds data of a person: ``delete_subject`` empties each of them.
SUBJECT_TABLES = ("visits", "visit_models", "overlays", "reports")


class SchemaError(RuntimeError):
    """The database is newer than this code, or not a history database."""


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = LATEST_VERSION, name: str = "history database") -> int:
    """Bring ``conn`` (opened with ``isolation_level=None``) up to ``target``; returns the version reached."""
    version = schema_version(conn)
    if version > LATEST_VERSION:
        raise SchemaError(
            f"{name}: schema version {version} is newer than this scalpscope understands ({LATEST_VERSION}); "
            "upgrade scalpscope or pass another --db"
        )
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise SchemaError(
            f"{name}: not a scalpscope history database (it has tables but no schema version); pass another --db"
        )
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = schema_version(conn)
            if version < target:
                MIGRATIONS[version](conn)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version

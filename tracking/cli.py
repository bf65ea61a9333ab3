"""The command line of longitudinal tracking: ``history ID`` and ``analyze ... --subject ID``.

Wiring, in ``pipeline.build_parser`` after the ``analyze`` parser is made::

    from tracking.cli import add_tracking_commands
    add_tracking_commands(sub, analyze)

and, in the ``analyze`` handler, around the batch run::

    with recorder_from_args(args) as record:           # a no-op unless --subject is given
        ...                                             # per finished image:
        record(analysis, item.path, loaded.rgb)
    print(record.summary())                             # "" without --subject

Nothing is stored unless ``--subject`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Self

import numpy as np

from core.analysis import Analysis
from tracking.change import CHANGE_PROBABILITY, compare
from tracking.store import HistoryError, HistoryStore, check_subject, default_db_path
from tracking.visit import parse_visit_date

log = logging.getLogger(__name__)

HISTORY_HELP = "a person's visits over time: timeline, trend charts and reliable changes (--delete erases them)"
DEFAULT_OUT = Path("runs/history")


# ----------------------------------------------------------------------------- argument types
def _subject_arg(text: str) -> str:
    try:
        return check_subject(text)
    except HistoryError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _date_arg(text: str) -> datetime:
    try:
        return parse_visit_date(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _threshold_arg(text: str) -> float:
    value = float(text)
    if not 0.5 < value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"--threshold {text}: use a probability above 0.5 and at most 1 (default {CHANGE_PROBABILITY})"
        )
    return value


def _db_help() -> str:
    return f"history database file (default: {default_db_path()}; $XDG_DATA_HOME moves it)"


# ----------------------------------------------------------------------------- parsers
def add_record_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--subject ID``, ``--db PATH`` and ``--visit-date`` for ``analyze``."""
    group = parser.add_argument_group(
        "history", "record each analysis as a visit of one person (nothing is stored without --subject)"
    )
    group.add_argument(
        "--subject",
        type=_subject_arg,
        metavar="ID",
        help="record every analysed picture as a visit of this person (use a pseudonym, not a name)",
    )
    group.add_argument("--db", type=Path, metavar="PATH", help=_db_help())
    group.add_argument(
        "--visit-date",
        type=_date_arg,
        metavar="YYYY-MM-DD",
        help="visit date to record (default: the photo's EXIF DateTimeOriginal, else its file time)",
    )
    return parser


def add_history_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``history ID [--db PATH] [--out DIR] [--delete] [--threshold P]``; sets ``handler=history``."""
    parser.add_argument(
        "subject", type=_subject_arg, metavar="ID", help="the person's subject id, as given to analyze --subject"
    )
    parser.add_argument("--db", type=Path, metavar="PATH", help=_db_help())
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"folder for the HTML page, written as DIR/<ID>.html (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--delete",
        action="store_true",
        help="erase ID completely: visits, stored overlays and the pages 'history' wrote, then compact the database",
    )
    parser.add_argument(
        "--threshold",
        type=_threshold_arg,
        default=CHANGE_PROBABILITY,
        metavar="P",
        help=f"probability a change must reach to be reported (default: {CHANGE_PROBABILITY})",
    )
    parser.set_defaults(handler=history)
    return parser


def add_tracking_commands(subparsers: argparse._SubParsersAction, analyze: argparse.ArgumentParser) -> None:
    """Add ``history`` to the subcommands and the recording options to ``analyze``."""
    add_record_arguments(analyze)
    add_history_arguments(subparsers.add_parser("history", help=HISTORY_HELP, description=HISTORY_HELP))


# ----------------------------------------------------------------------------- recording
def record_analysis(
    db: str | Path | None,
    subject: str,
    analysis: Analysis,
    image_path: str | Path,
    rgb: np.ndarray | None = None,
    visit_date: datetime | str | None = None,
) -> int:
    """Record one finished analysis as a visit of ``subject`` in ``db`` (default database when None)."""
    with HistoryStore(db) as store:
        return store.record(subject, analysis, image_path, visit_date=visit_date, rgb=rgb)


class Recorder:
    """Records the finished analyses of one ``analyze`` run as visits of one subject.

    Disabled (every call a no-op) when ``subject`` is None, so the caller needs no ``if``.
    A picture that cannot be recorded is logged and counted; the run goes on.
    """

    def __init__(self, db: str | Path | None, subject: str | None, visit_date: datetime | str | None = None) -> None:
        self.subject = None if subject is None else check_subject(subject)
        self.visit_date = visit_date
        self.store = HistoryStore(db) if self.subject else None
        self.recorded: list[int] = []
        self.declined: list[str] = []
        self.failed: list[tuple[str, str]] = []

    def __call__(self, analysis: Analysis, image_path: str | Path, rgb: np.ndarray | None = None) -> int | None:
        if self.store is None:
            return None
        if not analysis.is_scalp:
            # A picture that is not of the scalp says nothing about it: keep it out of the history.
            self.declined.append(str(image_path))
            return None
        try:
            visit_id = self.store.record(self.subject, analysis, image_path, visit_date=self.visit_date, rgb=rgb)
        except (HistoryError, OSError, ValueError) as err:
            log.warning("%s: not recorded in the history of %s (%s)", image_path, self.subject, err)
            self.failed.append((str(image_path), str(err)))
            return None
        self.recorded.append(visit_id)
        return visit_id

    def summary(self) -> str:
        """One line for people; empty when recording is off."""
        if self.store is None:
            return ""
        count = len(set(self.recorded))
        text = f"history: {count} visit{'' if count == 1 else 's'} of {self.subject} recorded in {self.store.path}"
        if self.declined:
            text += f"; {len(self.declined)} not recorded (not scalp photos)"
        if self.failed:
            text += f"; {len(self.failed)} failed (see the log)"
        return text

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recorder_from_args(args: argparse.Namespace) -> Recorder:
    """The :class:`Recorder` that ``analyze``'s ``--subject/--db/--visit-date`` ask for (a no-op without --subject).

    A database that cannot be opened ends the command with a message, before any analysis runs.
    """
    try:
        return Recorder(getattr(args, "db", None), getattr(args, "subject", None), getattr(args, "visit_date", None))
    except HistoryError as err:
        raise SystemExit(f"error: {err}") from err


# ----------------------------------------------------------------------------- history
def page_name(subject: str) -> str:
    """A file name for the subject's page: the id where it is file-safe, else a safe form plus a hash."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", subject).strip("._") or "subject"
    if safe != subject:
        safe += "-" + hashlib.sha256(subject.encode("utf-8")).hexdigest()[:8]
    return f"{safe}.html"


def history(args: argparse.Namespace) -> int:
    """``history ID``: print the timeline and changes, write the page; ``--delete`` erases ID."""
    from tracking.report import history_html, steps_of, timeline_table

    subject = args.subject
    db = args.db or default_db_path()
    if args.delete and not Path(db).exists():
        print(f"no history database at {db}: nothing of {subject} is stored")
        return 0
    try:
        with HistoryStore(db, create=False) as store:
            if args.delete:
                removed = store.delete_subject(subject)
                if not removed:
                    print(f"no visits of {subject} in {store.path}; nothing deleted")
                else:
                    print(
                        f"deleted {subject}: {removed} visits, their model hashes, stored overlays and history pages; "
                        f"{store.path} compacted"
                    )
                print("not touched: the pictures themselves and any 'analyze --out' folders")
                return 0
            store.backfill_capture_profiles(subject)
            visits = store.visits(subject)
            if not visits:
                print(
                    f"error: no visits of {subject} in {store.path} "
                    f"(subjects recorded there: {len(store.subjects())}; record visits with 'analyze PATH --subject {subject}')",
                    file=sys.stderr,
                )
                return 1
            steps = steps_of(visits, args.threshold)
            print(f"{subject}: {len(visits)} visits ({store.path})")
            print(timeline_table(visits, steps))
            if len(visits) >= 2:
                print()
                print("latest vs previous: " + steps[-1].summary())
                if len(visits) > 2:
                    print("latest vs baseline: " + compare(visits[0], visits[-1], args.threshold).summary())
            out = history_html(
                subject, visits, Path(args.out) / page_name(subject), args.threshold, stored_overlay=store.overlay_jpeg
            )
            store.remember_report(subject, out)
            print(f"page: {out}")
    except HistoryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0

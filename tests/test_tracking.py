"""tracking/: the history store, capture consistency, honest change detection, the page and the CLI.

Everything runs on synthetic close-ups drawn here and on ``Analysis`` records built here: the
trained models are not needed to test what the history does with their output.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.analysis import Analysis, GradeResult
from core.taxonomy import HAIR_LOSS_GRADES, INDICATORS
from tracking.capture import MIN_CONSISTENCY, capture_profile, consistency
from tracking.change import (
    BETTER,
    CHANGE_PROBABILITY,
    NO_RELIABLE_CHANGE,
    NOT_COMPARABLE,
    WORSE,
    compare,
    ordinal_change_probabilities,
)
from tracking.cli import Recorder, add_tracking_commands, page_name, recorder_from_args
from tracking.report import history_html, timeline_table
from tracking.schema import LATEST_VERSION, SUBJECT_TABLES
from tracking.store import HistoryError, HistoryStore, default_db_path

REPO = Path(__file__).resolve().parents[1]
MODELS = {"detector": "sha256:" + "d" * 64, "segmenter": "sha256:" + "e" * 64, "classifier": "sha256:" + "c" * 64}


# ----------------------------------------------------------------------------- synthetic pictures
def draw_scalp(
    seed: int = 0, n_hairs: int = 120, hair_width: int = 5, size: tuple[int, int] = (640, 480)
) -> np.ndarray:
    """A trichoscope-like close-up: mottled skin and curved dark hair shafts of a set width."""
    rng = np.random.default_rng(seed)
    width, height = size
    skin = np.full((height, width, 3), (200, 160, 140), np.float32) + rng.normal(0, 6, (height, width, 1)).astype(
        np.float32
    )
    skin = cv2.GaussianBlur(skin, (0, 0), 1.5)
    for _ in range(n_hairs):
        x, y = rng.uniform(-50, width + 50), rng.uniform(-50, height + 50)
        angle, length = rng.uniform(0, np.pi), rng.uniform(150, 400)
        points = []
        for _ in range(12):
            angle += rng.normal(0, 0.05)
            x, y = x + np.cos(angle) * length / 12, y + np.sin(angle) * length / 12
            points.append((x, y))
        cv2.polylines(skin, [np.int32(np.array(points) * 4)], False, (40, 30, 25), hair_width, cv2.LINE_AA, shift=2)
    return skin.clip(0, 255).astype(np.uint8)


def zoom(rgb: np.ndarray, factor: float) -> np.ndarray:
    """The same scalp under a stronger magnification: a centre crop blown up to the frame."""
    height, width = rgb.shape[:2]
    crop_h, crop_w = round(height / factor), round(width / factor)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return cv2.resize(rgb[top : top + crop_h, left : left + crop_w], (width, height), interpolation=cv2.INTER_LINEAR)


def save(folder: Path, name: str, rgb: np.ndarray, exif_date: str | None = None) -> Path:
    path = folder / name
    img = Image.fromarray(rgb)
    if exif_date:
        exif = Image.Exif()
        exif.get_ifd(0x8769)[36867] = exif_date
        img.save(path, format="JPEG", quality=92, exif=exif)
    else:
        img.save(path)
    return path


# ----------------------------------------------------------------------------- synthetic analyses
def peaked(grade: int, confidence: float, n: int) -> list[float]:
    probs = np.full(n, (1 - confidence) / (n - 1))
    probs[grade] = confidence
    return [float(p) for p in probs]


def make_analysis(
    image: str,
    grades: list[int] | int,
    hair_loss: str,
    view: str = "closeup",
    confidence: float = 0.9,
    models: dict[str, str] | None = None,
    is_scalp: bool = True,
) -> Analysis:
    grades = [grades] * 6 if isinstance(grades, int) else grades
    indicators = (
        {}
        if view == "head"
        else {name: GradeResult(g, peaked(g, confidence, 4)) for name, g in zip(INDICATORS, grades)}
    )
    return Analysis(
        image=image,
        size=(640, 480),
        is_scalp=is_scalp,
        scalp_score=0.98,
        view=view,
        view_confidence=0.95,
        hair_loss=GradeResult(
            hair_loss, dict(zip(HAIR_LOSS_GRADES, peaked(HAIR_LOSS_GRADES.index(hair_loss), confidence, 3)))
        ),
        indicators=indicators,
        hair={"count": 118, "mean_width_px": 7.5} if view == "closeup" else None,
        models=dict(models or MODELS),
    )


@pytest.fixture
def store(tmp_path: Path):
    with HistoryStore(tmp_path / "history.sqlite") as opened:
        yield opened


def record_two(
    store: HistoryStore,
    folder: Path,
    first: Analysis,
    second: Analysis,
    rgb1: np.ndarray,
    rgb2: np.ndarray,
    subject: str = "alice",
):
    path1, path2 = save(folder, "visit1.png", rgb1), save(folder, "visit2.png", rgb2)
    store.record(subject, first, path1, visit_date="2024-01-10", rgb=rgb1)
    store.record(subject, second, path2, visit_date="2024-06-02", rgb=rgb2)
    return store.visits(subject)


# ----------------------------------------------------------------------------- change detection
def test_known_worsening_is_reported_worse_and_the_reverse_better(store, tmp_path):
    # Two pictures of one scalp taken alike (another field of the same head): comparable captures.
    before, after = draw_scalp(seed=1), draw_scalp(seed=2)
    earlier, later = record_two(
        store, tmp_path, make_analysis("v1.png", 0, "low"), make_analysis("v2.png", 2, "high"), before, after
    )
    assert (earlier.visit_date, later.visit_date) == (datetime(2024, 1, 10), datetime(2024, 6, 2))
    comparison = compare(earlier, later)
    assert comparison.comparable and comparison.consistency.score >= MIN_CONSISTENCY
    for change in comparison.changes():
        assert change.status == WORSE, change
        assert change.p_worse >= 0.9 and change.p_better < 0.05
        assert "reaches" in change.reason
    assert all(change.status == BETTER for change in compare(later, earlier).changes())


def test_a_moved_top_grade_within_the_model_uncertainty_is_no_reliable_change(store, tmp_path):
    soft_before = make_analysis("v1.png", 1, "mid", confidence=0.5)
    soft_after = make_analysis("v2.png", 2, "high", confidence=0.5)
    earlier, later = record_two(store, tmp_path, soft_before, soft_after, draw_scalp(1), draw_scalp(2))
    comparison = compare(earlier, later)
    assert comparison.comparable
    for change in comparison.changes():
        assert change.earlier_grade != change.later_grade
        assert change.status == NO_RELIABLE_CHANGE, change
        assert change.p_worse < CHANGE_PROBABILITY and "within the model's uncertainty" in change.reason


def test_identical_captures_are_no_reliable_change(store, tmp_path):
    rgb = draw_scalp(seed=3)
    analysis = make_analysis("v.png", [1, 2, 1, 0, 2, 1], "mid", confidence=0.7)
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    Image.fromarray(rgb).save(first, compress_level=6)
    Image.fromarray(rgb).save(second, compress_level=1)  # the same pixels in other bytes: a second capture
    store.record("alice", analysis, first, visit_date="2024-01-10", rgb=rgb)
    store.record("alice", analysis, second, visit_date="2024-06-02")
    earlier, later = store.visits("alice")
    comparison = compare(earlier, later)
    assert comparison.consistency.score == pytest.approx(1.0)
    assert [c.status for c in comparison.changes()] == [NO_RELIABLE_CHANGE] * 7
    # With p == q neither direction can exceed (1 - sum p^2) / 2 <= 0.375.
    assert max(max(c.p_worse, c.p_better) for c in comparison.changes()) <= 0.375


def test_recording_the_same_picture_twice_is_idempotent(store, tmp_path):
    rgb = draw_scalp(seed=4)
    path = save(tmp_path, "once.png", rgb)
    first = store.record("alice", make_analysis("once.png", 1, "low"), path, rgb=rgb)
    again = store.record("alice", make_analysis("once.png", 3, "high"), path)  # bytes decide, not the analysis
    assert first == again
    (visit,) = store.visits("alice")
    assert visit.analysis.hair_loss.grade == "low"
    assert store.record("bob", make_analysis("once.png", 1, "low"), path, rgb=rgb) != first  # per subject


def test_closeup_versus_head_photo_is_not_comparable(store, tmp_path):
    closeup, head = draw_scalp(seed=5), draw_scalp(seed=6)
    earlier, later = record_two(
        store, tmp_path, make_analysis("c.png", 0, "low"), make_analysis("h.png", 0, "high", view="head"), closeup, head
    )
    comparison = compare(earlier, later)
    assert not comparison.comparable
    assert [c.status for c in comparison.changes()] == [NOT_COMPARABLE] * 7
    assert all("different views" in c.reason and c.probability is None for c in comparison.changes())


@pytest.mark.parametrize(
    ("degrade", "weakest"),
    [
        (lambda rgb: cv2.GaussianBlur(rgb, (0, 0), 2.0), {"sharpness"}),
        (lambda rgb: np.clip(rgb.astype(np.float32) * 1.6 + 30, 0, 255).astype(np.uint8), {"brightness", "highlights"}),
        (lambda rgb: zoom(rgb, 2.0), {"scale", "sharpness"}),
    ],
    ids=["blurred", "overexposed", "magnified-2x"],
)
def test_degraded_capture_scores_low_and_blocks_the_comparison(store, tmp_path, degrade, weakest):
    rgb = draw_scalp(seed=7)
    score = consistency(capture_profile(rgb), capture_profile(degrade(rgb)))
    assert score.score < 0.25 and not score.comparable
    assert score.weakest in weakest
    earlier, later = record_two(
        store, tmp_path, make_analysis("a.png", 0, "low"), make_analysis("b.png", 3, "high"), rgb, degrade(rgb)
    )
    comparison = compare(earlier, later)
    assert [c.status for c in comparison.changes()] == [NOT_COMPARABLE] * 7
    assert "taken too differently" in comparison.reason


def test_captures_taken_alike_score_high():
    rgb = draw_scalp(seed=8)
    alike = {
        "another field of the same scalp": draw_scalp(seed=9),
        "same picture saved at twice the resolution": cv2.resize(rgb, (1280, 960), interpolation=cv2.INTER_CUBIC),
        "fewer hairs (hair loss, a real change)": draw_scalp(seed=8, n_hairs=50),
        "JPEG quality 60": cv2.imdecode(
            cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], cv2.IMREAD_UNCHANGED
        ),
    }
    for what, other in alike.items():
        assert consistency(capture_profile(rgb), capture_profile(other)).score >= 0.7, what


def test_ordinal_change_probabilities():
    worse, better = ordinal_change_probabilities([0.9, 0.1, 0, 0], [0, 0.1, 0.8, 0.1])
    assert worse == pytest.approx(0.99) and better == 0.0  # the remaining 0.01 is a tie
    worse, better = ordinal_change_probabilities([0.1, 0.8, 0.1], [0.05, 0.15, 0.8])
    assert worse == pytest.approx(0.1 * 0.95 + 0.8 * 0.8) and better == pytest.approx(0.8 * 0.05 + 0.1 * 0.2)
    uniform = [0.25] * 4
    assert ordinal_change_probabilities(uniform, uniform) == pytest.approx((0.375, 0.375))
    with pytest.raises(ValueError, match="different lengths"):
        ordinal_change_probabilities([0.5, 0.5], [0.2, 0.3, 0.5])


def test_an_ungraded_indicator_and_different_models_are_said_so(store, tmp_path):
    before = make_analysis("a.png", 0, "low")
    after = make_analysis("b.png", 0, "low", models={**MODELS, "classifier": "sha256:" + "f" * 64})
    del after.indicators["sebum"]
    earlier, later = record_two(store, tmp_path, before, after, draw_scalp(10), draw_scalp(11))
    comparison = compare(earlier, later)
    assert comparison.indicators["sebum"].status == NOT_COMPARABLE
    assert "not graded on the 2024-06-02 visit" == comparison.indicators["sebum"].reason
    assert any("different classifier weights" in note for note in comparison.notes)


# ----------------------------------------------------------------------------- store
def test_visit_date_comes_from_exif_then_file_time_and_a_given_date_wins(store, tmp_path):
    rgb = draw_scalp(seed=12)
    with_exif = save(tmp_path, "exif.jpg", rgb, exif_date="2023:11:05 14:30:00")
    plain = save(tmp_path, "plain.png", draw_scalp(seed=13))
    os.utime(plain, (1_700_000_000, 1_700_000_000))
    store.record("alice", make_analysis("exif.jpg", 0, "low"), with_exif)
    store.record("alice", make_analysis("plain.png", 0, "low"), plain)
    store.record("bob", make_analysis("exif.jpg", 0, "low"), with_exif, visit_date="2024-02-29")
    by_name = {v.image_path.name: v for v in store.visits("alice")}
    assert (by_name["exif.jpg"].visit_date, by_name["exif.jpg"].date_source) == (datetime(2023, 11, 5, 14, 30), "exif")
    assert (by_name["plain.png"].visit_date, by_name["plain.png"].date_source) == (
        datetime.fromtimestamp(1_700_000_000),
        "mtime",
    )
    (bob,) = store.visits("bob")
    assert (bob.visit_date, bob.date_source) == (datetime(2024, 2, 29), "given")
    assert bob.models == MODELS and bob.capture is not None and bob.capture.hair_width_px is not None


def test_nothing_is_stored_without_a_subject(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "scalpscope" / "history.sqlite"
    rgb = draw_scalp(seed=14)
    path = save(tmp_path, "a.png", rgb)
    recorder = Recorder(None, None)  # analyze without --subject
    assert recorder(make_analysis("a.png", 0, "low"), path, rgb) is None and recorder.summary() == ""
    assert not default_db_path().exists()
    with HistoryStore(tmp_path / "h.sqlite") as store:
        for subject in ("", "   ", None):
            with pytest.raises(HistoryError, match="subject id is required"):
                store.record(subject, make_analysis("a.png", 0, "low"), path, rgb=rgb)
        assert store.subjects() == {}


def test_the_command_line_records_only_with_subject(tmp_path):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    analyze = sub.add_parser("analyze")
    analyze.add_argument("paths", nargs="+", type=Path)
    add_tracking_commands(sub, analyze)
    db = tmp_path / "h.sqlite"
    rgb = draw_scalp(seed=15)
    path = save(tmp_path, "a.png", rgb)
    with recorder_from_args(parser.parse_args(["analyze", str(path), "--db", str(db)])) as record:
        record(make_analysis("a.png", 0, "low"), path, rgb)
    assert not db.exists()
    args = parser.parse_args(
        ["analyze", str(path), "--subject", "alice", "--db", str(db), "--visit-date", "2024-03-01"]
    )
    with recorder_from_args(args) as record:
        record(make_analysis("a.png", 0, "low"), path, rgb)
        record(make_analysis("x.png", 0, "low", is_scalp=False), path, rgb)  # declined: not a scalp photo
    assert "1 visit of alice" in record.summary() and "1 not recorded" in record.summary()
    with HistoryStore(db, create=False) as store:
        assert [v.visit_date for v in store.visits("alice")] == [datetime(2024, 3, 1)]
    with pytest.raises(SystemExit):
        parser.parse_args(["analyze", str(path), "--subject", " "])


KILLED_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from core.analysis import Analysis, GradeResult
    from core.taxonomy import INDICATORS
    from tracking.store import HistoryStore

    folder = Path(sys.argv[1])
    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    models = {"detector": "sha256:" + "d" * 64, "classifier": "sha256:" + "c" * 64}
    with HistoryStore(folder / "history.sqlite") as store:
        for i in range(100000):
            path = folder / f"picture{i}.bin"
            path.write_bytes(i.to_bytes(8, "little") * 64)
            analysis = Analysis(image=str(path), size=(160, 120), is_scalp=True, scalp_score=0.9, view="closeup",
                                hair_loss=GradeResult("low", {"low": 0.8, "mid": 0.15, "high": 0.05}),
                                indicators={n: GradeResult(1, [0.1, 0.7, 0.1, 0.1]) for n in INDICATORS},
                                notes=["x" * 2000], models=models)
            visit_id = store.record("crash-subject", analysis, path, visit_date="2024-01-01", rgb=rgb)
            print(visit_id, flush=True)
""")


def test_killing_a_writer_mid_loop_leaves_a_consistent_database(tmp_path):
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    committed = []
    deadline = time.monotonic() + 60
    while len(committed) < 25 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        committed.append(int(line))
    time.sleep(0.013)  # land somewhere inside a later record() rather than between two
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL and len(committed) == 25, "the writer did not get going"

    conn = sqlite3.connect(tmp_path / "history.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
    with HistoryStore(tmp_path / "history.sqlite") as store:
        visits = store.visits("crash-subject")
        ids = [v.id for v in visits]
        assert set(committed) <= set(ids)  # every commit survived the kill
        assert len(ids) <= len(committed) + 1  # at most the one committed but not yet printed
        for visit in visits:  # and every row is whole
            assert len(visit.analysis.indicators) == 6 and visit.analysis.notes == ["x" * 2000]
            assert visit.models == {"detector": "sha256:" + "d" * 64, "classifier": "sha256:" + "c" * 64}
            assert visit.capture is not None and visit.has_overlay and store.overlay_jpeg(visit.id)[:2] == b"\xff\xd8"


def test_delete_leaves_no_trace_of_the_subject(tmp_path, capsys):
    db = tmp_path / "history.sqlite"
    subject = "alice-7f3c9e"
    with HistoryStore(db) as store:
        earlier, later = record_two(
            store,
            tmp_path,
            make_analysis("1.png", 0, "low"),
            make_analysis("2.png", 2, "high"),
            draw_scalp(16),
            draw_scalp(17),
            subject=subject,
        )
        bob_image = save(tmp_path, "bob.png", draw_scalp(18))
        store.record("bob", make_analysis("bob.png", 1, "mid"), bob_image)
    secrets = [subject.encode(), earlier.image_sha256.encode(), later.image_sha256.encode()]
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_tracking_commands(sub, sub.add_parser("analyze"))
    out = tmp_path / "pages"
    args = parser.parse_args(["history", subject, "--db", str(db), "--out", str(out)])
    assert args.handler(args) == 0
    page = out / page_name(subject)
    assert page.exists()

    args = parser.parse_args(["history", "--delete", subject, "--db", str(db)])
    assert args.handler(args) == 0
    assert "deleted alice-7f3c9e: 2 visits" in capsys.readouterr().out
    assert not page.exists()

    conn = sqlite3.connect(db)
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert set(tables) == set(SUBJECT_TABLES)
    assert conn.execute("SELECT count(*) FROM visits WHERE subject = ?", (subject,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM reports WHERE subject = ?", (subject,)).fetchone()[0] == 0
    for table in ("visit_models", "overlays"):  # no orphans: every row belongs to a remaining visit
        assert (
            conn.execute(f"SELECT count(*) FROM {table} WHERE visit_id NOT IN (SELECT id FROM visits)").fetchone()[0]
            == 0
        )
    for table in tables:  # and no cell of any table mentions the subject or their pictures
        for row in conn.execute(f"SELECT * FROM {table}"):
            text = " ".join(str(cell) for cell in row if not isinstance(cell, bytes))
            assert subject not in text and earlier.image_sha256 not in text, table
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with HistoryStore(db, create=False) as store:
        assert store.row_counts(subject) == dict.fromkeys(SUBJECT_TABLES, 0)
        assert len(store.visits("bob")) == 1 and store.row_counts("bob")["visit_models"] == 3
    # VACUUM + checkpoint: not even free pages or the journal hold the deleted bytes.
    for file in db.parent.glob(db.name + "*"):
        raw = file.read_bytes()
        assert not any(secret in raw for secret in secrets), file.name


def test_migrations_upgrade_a_version_1_database(tmp_path):
    db = tmp_path / "old.sqlite"
    rgb = draw_scalp(seed=19)
    picture = save(tmp_path, "old.png", rgb)
    from core.io import sha256_file

    old = make_analysis(str(picture), [1, 1, 0, 0, 2, 1], "mid")
    conn = sqlite3.connect(db)  # the version 1 layout, as it was written then
    conn.executescript("""
        CREATE TABLE visits (id INTEGER PRIMARY KEY, subject TEXT NOT NULL, visit_date TEXT NOT NULL, view TEXT,
            image_path TEXT NOT NULL, image_sha256 TEXT NOT NULL, analysis_json TEXT NOT NULL, recorded_at TEXT NOT NULL,
            UNIQUE (subject, image_sha256));
        CREATE INDEX visits_by_subject ON visits (subject, visit_date);
        PRAGMA user_version = 1;
    """)
    conn.execute(
        "INSERT INTO visits VALUES (7, 'carol', '2023-05-01T10:00:00', 'closeup', ?, ?, ?, '2023-05-01T10:05:00')",
        (str(picture), sha256_file(picture), old.to_json()),
    )
    conn.commit()
    conn.close()

    with HistoryStore(db) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION == 2
        (visit,) = store.visits("carol")
        assert (visit.id, visit.visit_date, visit.date_source) == (7, datetime(2023, 5, 1, 10), None)
        assert visit.models == MODELS  # moved out of the JSON by the migration
        assert visit.analysis.indicators["dandruff"].grade == 2 and visit.capture is None
        assert store.backfill_capture_profiles("carol") == 1
        assert store.visits("carol")[0].capture == capture_profile(rgb)
        new = save(tmp_path, "new.png", draw_scalp(seed=20))
        store.record("carol", make_analysis("new.png", 1, "mid"), new, visit_date="2024-05-01")
        assert compare(*store.visits("carol")).comparable

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match="newer than this scalpscope"):
        HistoryStore(db)


def test_a_file_that_is_not_a_history_database_is_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match="not a scalpscope history database"):
        HistoryStore(other)
    (tmp_path / "text.sqlite").write_text("hello, not a database" * 50)
    with pytest.raises(HistoryError, match="not a readable SQLite database"):
        HistoryStore(tmp_path / "text.sqlite")
    with pytest.raises(HistoryError, match="no history database"):
        HistoryStore(tmp_path / "absent.sqlite", create=False)


# ----------------------------------------------------------------------------- page and command
def test_history_prints_the_timeline_and_writes_a_self_contained_page(tmp_path, capsys):
    db = tmp_path / "history.sqlite"
    with HistoryStore(db) as store:
        rgbs = [draw_scalp(21), draw_scalp(22), draw_scalp(23)]
        grades = [([0, 1, 0, 0, 1, 0], "low"), ([0, 1, 0, 0, 2, 1], "mid"), ([1, 2, 1, 0, 3, 2], "high")]
        for i, (rgb, (g, hl)) in enumerate(zip(rgbs, grades)):
            path = save(tmp_path, f"v{i}.png", rgb)
            store.record(
                "dana",
                make_analysis(path.name, g, hl),
                path,
                visit_date=f"2024-0{2 * i + 1}-15",
                rgb=rgb,
                keep_overlay=i != 0,
            )
    (tmp_path / "v0.png").unlink()  # the first picture is gone and its overlay was not stored
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_tracking_commands(sub, sub.add_parser("analyze"))
    args = parser.parse_args(["history", "dana", "--db", str(db), "--out", str(tmp_path / "out")])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].startswith("dana: 3 visits")
    assert lines[1].split()[:4] == ["date", "view", "hair-loss", "grade"]
    assert [line.split()[0] for line in lines[3:6]] == ["2024-01-15", "2024-03-15", "2024-05-15"]
    assert "high 0.90" in lines[5] and "count 118" in lines[5]
    assert "latest vs previous: 2024-03-15 -> 2024-05-15" in printed and "latest vs baseline" in printed

    page = (tmp_path / "out" / "dana.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 7 + 2  # hair-loss grade, six indicators, two hair measurements
    assert page.count('src="data:image/jpeg;base64,') == 2
    assert "no longer at" in page and "No overlay was stored" in page
    assert "<link" not in page and "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "worse" in page and "capture consistency" in page


def test_history_of_an_unknown_subject_fails_cleanly(tmp_path, capsys):
    db = tmp_path / "history.sqlite"
    HistoryStore(db).close()
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_tracking_commands(sub, sub.add_parser("analyze"))
    args = parser.parse_args(["history", "nobody", "--db", str(db)])
    assert args.handler(args) == 1
    assert "no visits of nobody" in capsys.readouterr().err
    args = parser.parse_args(["history", "nobody", "--db", str(tmp_path / "absent.sqlite")])
    assert args.handler(args) == 1
    assert "no history database" in capsys.readouterr().err


def test_page_names_are_file_safe_and_distinct():
    assert page_name("alice") == "alice.html"
    assert page_name("a/b") != page_name("a_b") and "/" not in page_name("a/b")
    assert page_name("../../etc").startswith("etc-")


def test_history_html_with_one_visit(tmp_path):
    rgb = draw_scalp(24)
    path = save(tmp_path, "only.png", rgb)
    with HistoryStore(tmp_path / "h.sqlite") as store:
        store.record("erin", make_analysis("only.png", 1, "mid"), path, rgb=rgb, keep_overlay=False)
        visits = store.visits("erin")
    out = history_html("erin", visits, tmp_path / "erin.html")
    page = out.read_text(encoding="utf-8")
    assert "One visit so far" in page and "overlay drawn from the picture" in page
    assert timeline_table(visits).count("\n") == 2

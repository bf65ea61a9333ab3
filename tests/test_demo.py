"""The hackathon demo: its callback on real samples, and the page in a real browser."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port

from demo.app import DemoBackend, indicator_chart

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CHROMIUM = os.environ.get("SCALPSCOPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def backend(pipeline):
    return DemoBackend(pipeline)


def test_closeup_shows_overlay_grades_chart_and_advice(backend):
    overlay, label, chart, advice, status = backend.run(str(SAMPLES / "closeup_03.jpg"), "30-39", None, None, False)
    assert isinstance(overlay, np.ndarray) and overlay.ndim == 3
    assert label is None  # the Low/Mid/High grade is for photos of the head
    assert chart.count('class="scalp-row"') >= 1 and "data-grade=" in chart
    assert advice.strip() and "diagnosis" in advice.lower()
    assert "close-up" in status


def test_non_scalp_photo_is_declined_with_an_explanation(backend):
    _overlay, label, chart, advice, status = backend.run(str(SAMPLES / "not_scalp_cat.jpg"), None, None, None, False)
    assert label is None and advice == "" and "scalp-row" not in chart
    assert "does not look like a scalp photo" in status


def test_unreadable_upload_gets_a_message_not_a_traceback(backend, tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really")
    *_, status = backend.run(str(bad), None, None, None, False)
    assert status.startswith("### Could not read that file") and "Traceback" not in status


def test_camera_frames_arrive_as_arrays(backend):
    from core.images import load_image

    frame = load_image(SAMPLES / "head_04_level5.jpg").rgb
    overlay, label, *_ = backend.run(frame, None, None, None, False)
    assert overlay is not None and label is not None


def test_head_photo_shows_the_hair_loss_grade_and_no_indicator_chart(pipeline, backend):
    analysis = pipeline.analyze(SAMPLES / "head_05_level6.jpg")
    assert "scalp-row" not in indicator_chart(analysis)
    _, label, _, advice, status = backend.run(str(SAMPLES / "head_05_level6.jpg"), None, None, None, False)
    assert set(label) == {"LOW", "MID", "HIGH"} and abs(sum(label.values()) - 1) < 1e-3
    assert "head" in status and "hair loss" in advice.lower()


def _screenshot_dir(tmp_path: Path) -> Path:
    """Screenshots go to tmp; SCALPSCOPE_DOCS_SCREENSHOTS=1 writes them into docs/ (how docs/ got them)."""
    if os.environ.get("SCALPSCOPE_DOCS_SCREENSHOTS") == "1":
        return Path(__file__).resolve().parents[1] / "docs"
    return tmp_path


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def test_page_in_a_browser_upload_to_grades(pipeline, tmp_path):
    """Drive the real page in headless Chromium: upload a close-up, wait for the grades and advice;
    then upload a file that is not an image and get the friendly message."""
    if not CHROMIUM:
        pytest.skip("no chromium on this machine ('make browser' installs Debian's; the browser test needs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    from demo.app import build_demo

    shots = _screenshot_dir(tmp_path)
    not_image = tmp_path / "holiday.jpg"
    not_image.write_text("this is a text file with a .jpg name")
    port = free_port()
    app = build_demo(pipeline)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               allowed_paths=[str(SAMPLES)])
    try:
        with playwright.sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            assert "not a diagnosis" in page.inner_text("#intro")
            page.set_input_files("#upload input[type=file]", str(SAMPLES / "closeup_04.jpg"))
            page.wait_for_selector("#indicators .scalp-row", timeout=120_000)
            rows = page.query_selector_all("#indicators .scalp-row")
            grades = [int(r.get_attribute("data-grade")) for r in rows]
            assert grades and all(0 <= g <= 3 for g in grades)
            assert "close-up" in page.inner_text("#status")
            page.wait_for_function("document.querySelector('#advice').innerText.length > 40", timeout=30_000)
            assert "dermatologist" in page.inner_text("#advice").lower()
            page.screenshot(path=str(shots / "demo_closeup.png"), full_page=True)

            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.set_input_files("#upload input[type=file]", str(not_image))
            page.wait_for_function("document.querySelector('#status').innerText.includes('Could not read')", timeout=60_000)
            assert "Traceback" not in page.inner_text("body")
            page.screenshot(path=str(shots / "demo_not_an_image.png"), full_page=True)
            browser.close()
    finally:
        app.close()
    assert (shots / "demo_closeup.png").stat().st_size > 10_000


def test_batch_report_renders_in_a_browser(pipeline, tmp_path):
    """report.html is self-contained: opened from disk with no server, it shows charts and thumbnails."""
    if not CHROMIUM:
        pytest.skip("no chromium on this machine ('make browser' installs Debian's; the browser test needs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    from batch.job import analyze_paths

    outcome = analyze_paths(lambda: pipeline, [SAMPLES], tmp_path / "out")
    with playwright.sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(outcome.report.resolve().as_uri(), wait_until="load")
        text = page.inner_text("body")
        assert "not a diagnosis" in text.lower() and "closeup_01.jpg" in text
        loaded = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        assert loaded >= len(list(SAMPLES.glob("*.jpg")))
        assert page.query_selector_all("svg")
        page.screenshot(path=str(_screenshot_dir(tmp_path) / "batch_report.png"), full_page=False)
        browser.close()

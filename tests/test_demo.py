"""The hackathon demo: its callback on real samples, and the page in a real browser."""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from demo.app import DemoBackend, indicator_chart

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CHROMIUM = os.environ.get("SCALPSCOPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def pipeline():
    from pipeline import Pipeline

    return Pipeline(hair=False)


@pytest.fixture(scope="module")
def backend(pipeline):
    return DemoBackend(pipeline)


def test_closeup_shows_overlay_grades_chart_and_advice(backend):
    overlay, label, chart, advice, status = backend.run(str(SAMPLES / "closeup_03.jpg"), "30-39", None, None, False)
    assert isinstance(overlay, np.ndarray) and overlay.ndim == 3
    assert set(label) == {"LOW", "MID", "HIGH"} and abs(sum(label.values()) - 1) < 1e-3
    assert chart.count('class="scalp-row"') >= 1 and "data-grade=" in chart
    assert advice.strip() and "diagnosis" in advice.lower()
    assert "close-up" in status


def test_non_scalp_photo_is_declined_with_an_explanation(backend):
    overlay, label, chart, advice, status = backend.run(str(SAMPLES / "not_scalp_cat.jpg"), None, None, None, False)
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


def test_chart_is_empty_for_head_photos(pipeline):
    analysis = pipeline.analyze(SAMPLES / "head_05_level6.jpg")
    assert "scalp-row" not in indicator_chart(analysis)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_in_a_browser_upload_to_grades(pipeline, tmp_path):
    """Drive the real page in headless Chromium: upload a close-up, wait for the grades."""
    if not CHROMIUM:
        pytest.skip("no chromium on this machine ('make browser' installs Debian's; the browser test needs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    from demo.app import build_demo

    port = _free_port()
    app = build_demo(pipeline)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               allowed_paths=[str(SAMPLES)])
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            assert "not a diagnosis" in page.inner_text("#intro")
            page.set_input_files("#upload input[type=file]", str(SAMPLES / "closeup_04.jpg"))
            page.wait_for_selector("#indicators .scalp-row", timeout=120_000)
            rows = page.query_selector_all("#indicators .scalp-row")
            grades = [int(r.get_attribute("data-grade")) for r in rows]
            assert grades and all(0 <= g <= 3 for g in grades)
            assert "close-up" in page.inner_text("#status")
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
            browser.close()
    finally:
        app.close()
    assert (tmp_path / "demo.png").stat().st_size > 10_000

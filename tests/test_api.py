"""The HTTP API (FastAPI) on the bundled weights: contract, errors, and many clients at once."""
from __future__ import annotations

import base64
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

fastapi = pytest.importorskip("fastapi")
from conftest import free_port
from fastapi.testclient import TestClient

from demo.api import create_app

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(scope="module")
def client(pipeline):
    return TestClient(create_app(pipeline, max_upload_bytes=2 * 1024 * 1024))


def post(client, path: Path, content_type: str = "image/jpeg", **params):
    return client.post("/analyze", files={"image": (path.name, path.read_bytes(), content_type)}, params=params)


def test_health_and_version(client, pipeline):
    assert client.get("/health").json() == {"status": "ok"}
    version = client.get("/version").json()
    assert version["models"] == pipeline.stages.hashes() and version["scalpscope"]


def test_analyze_returns_the_analysis_with_advice_and_disclaimer(client):
    response = post(client, SAMPLES / "closeup_02.jpg")
    assert response.status_code == 200
    body = response.json()
    assert body["is_scalp"] and body["view"] == "closeup"
    assert body["indicators"] and "diagnosis" in body["disclaimer"]
    head = post(client, SAMPLES / "head_05_level6.jpg").json()
    assert head["view"] == "head" and set(head["hair_loss"]["probs"]) == {"low", "mid", "high"}
    assert body["advice"]["items"] or body["advice"].get("summary")
    assert "overlay_png_base64" not in body


def test_overlay_on_request_is_a_png_of_the_picture(client):
    from PIL import Image

    body = post(client, SAMPLES / "head_03_level4.jpg", overlay="true").json()
    overlay = Image.open(io.BytesIO(base64.b64decode(body["overlay_png_base64"])))
    assert overlay.format == "PNG" and overlay.height >= 100


def test_not_a_scalp_photo_is_declined(client):
    body = post(client, SAMPLES / "not_scalp_coffee.jpg").json()
    assert body["is_scalp"] is False and body["hair_loss"] is None and body["indicators"] == {}


@pytest.mark.parametrize(
    ("payload", "content_type", "status"),
    [
        (b"not an image at all", "text/plain", 415),
        (b"\xff\xd8\xff\xe0 truncated jpeg", "image/jpeg", 422),
        (b"", "image/png", 422),
        (b"\0" * (2 * 1024 * 1024 + 10), "image/jpeg", 413),
    ],
)
def test_bad_uploads_get_a_clear_status_and_message(client, payload, content_type, status):
    response = client.post("/analyze", files={"image": ("x", payload, content_type)})
    assert response.status_code == status
    assert response.json()["error"] and response.json()["status"] == status


def test_missing_image_field_is_a_422(client):
    assert client.post("/analyze").status_code == 422


def test_fifty_concurrent_clients_all_get_answers(pipeline):
    """A real uvicorn server: 50 clients at once, every one answered with its own picture's result."""
    import httpx
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(pipeline), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    pictures = [SAMPLES / "head_04_level5.jpg", SAMPLES / "not_scalp_cat.jpg"]

    def call(i: int) -> tuple[int, bool]:
        path = pictures[i % 2]
        with httpx.Client(timeout=300) as http:
            r = http.post(f"http://127.0.0.1:{port}/analyze", files={"image": (path.name, path.read_bytes(), "image/jpeg")})
        return r.status_code, r.json()["is_scalp"]

    try:
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(call, range(50)))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert [status for status, _ in results] == [200] * 50
    assert [scalp for _, scalp in results] == [i % 2 == 0 for i in range(50)]

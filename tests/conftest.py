"""Shared fixtures: where the real data lives, and small datasets built per test."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(os.environ.get("SCALPSCOPE_SHARED_DATA", REPO.parent / "shared" / "data"))

# No test may reach the network: ultralytics and others honour these.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (the real Roboflow exports); tests that need it skip without it."""
    if not (SHARED_DATA / "scalp-data" / "data.yaml").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (CI has it beside the clone; a user clone does not)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def scalp_mini() -> Path:
    return FIXTURES / "scalp-data-mini"


@pytest.fixture(scope="session")
def hair_loss_mini() -> Path:
    return FIXTURES / "hair-loss-mini"


@pytest.fixture(scope="session")
def pipeline():
    """The bundled weights/ loaded once for the whole run (tests only read from it)."""
    from pipeline import Pipeline

    return Pipeline(hair=False)


def free_port() -> int:
    """A TCP port nothing listens on now, for a test server on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

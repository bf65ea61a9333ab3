"""``data pull``: download a Roboflow Universe export with the official SDK, then import it.

Needs ``ROBOFLOW_API_KEY`` and network. Without either it fails with one sentence that says
which, and writes nothing: the download goes to a temporary folder first.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from pathlib import Path

from datasets.folder import DatasetFolder

log = logging.getLogger(__name__)
API_HOST = "api.roboflow.com"
#: Export formats the readers understand, by Roboflow's names for them.
PULL_FORMATS = {"yolov8": "roboflow-yolo", "yolov11": "roboflow-yolo", "coco": "roboflow-coco", "folder": "folders"}


class PullError(RuntimeError):
    """The download cannot happen; the message is one sentence for the user."""


def _reachable(host: str, timeout: float = 5.0) -> str | None:
    """None when ``host:443`` accepts a connection within ``timeout``, else the reason."""
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                outcome.append(None)
        except OSError as err:
            outcome.append(err.strerror or str(err))

    # Name lookup has no timeout of its own; a daemon thread bounds it.
    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 1)
    return outcome[0] if outcome else "timed out"


def pull(workspace: str, project: str, version: int, out: Path, fmt: str = "yolov8", relabel: Path | None = None) -> DatasetFolder:
    """Download ``workspace/project/version`` and import it into the dataset folder ``out``."""
    if fmt not in PULL_FORMATS:
        raise PullError(f"unknown --format {fmt!r}; use one of {', '.join(PULL_FORMATS)}")
    key = os.environ.get("ROBOFLOW_API_KEY", "").strip()
    if not key:
        raise PullError("ROBOFLOW_API_KEY is not set: copy your private API key from Roboflow's workspace settings and export it")
    reason = _reachable(API_HOST)
    if reason is not None:
        raise PullError(f"cannot reach {API_HOST} ({reason}): 'data pull' needs network access")
    from datasets.importer import import_dataset

    with tempfile.TemporaryDirectory(prefix="scalpscope-pull-") as tmp:
        try:
            import roboflow

            rf = roboflow.Roboflow(api_key=key)
            dataset = rf.workspace(workspace).project(project).version(int(version)).download(fmt, location=tmp, overwrite=True)
        except Exception as err:  # the SDK raises bare Exceptions and requests errors alike
            raise PullError(f"Roboflow download of {workspace}/{project}/{version} failed: {str(err).splitlines()[0][:200]}") from err
        location = Path(getattr(dataset, "location", tmp))
        return import_dataset(location, out, fmt=PULL_FORMATS[fmt], relabel=relabel, name=f"{project}-v{version}")

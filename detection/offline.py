"""Make ultralytics work with no network: no hub, no analytics, no font or asset downloads.

Must run before ``ultralytics`` is imported (it reads its config folder at import time).
Measured with every socket blocked: with ``YOLO_OFFLINE=1``, ``sync=False`` and a font
already in its config folder, train, val, predict and plotting make no network attempt.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Fonts ultralytics' plotting asks for; matplotlib ships DejaVuSans, which stands in for both.
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def config_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "scalpscope" / "ultralytics"


def _install_fonts(fonts: Path) -> None:
    fonts.mkdir(parents=True, exist_ok=True)
    missing = [name for name in FONT_NAMES if not (fonts / name).is_file()]
    if missing:
        import matplotlib

        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        for name in missing:
            shutil.copyfile(source, fonts / name)


def ensure_offline() -> None:
    """Point ultralytics at a private config folder holding its fonts, and switch it offline.

    If something imported ultralytics first, its config folder is already fixed; the fonts
    then go there too, so plotting still finds them instead of downloading.
    """
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    folder = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir())))
    _install_fonts(folder / "Ultralytics")
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    _install_fonts(Path(USER_CONFIG_DIR))
    if SETTINGS.get("sync", True):
        SETTINGS.update(sync=False)  # no anonymous usage analytics



def skip_amp_download() -> None:
    """Before a GPU training run: ultralytics' mixed-precision self-test loads ``yolo26n.pt`` and
    downloads it when missing. Nothing downloads here, so without that file the self-test is
    skipped and AMP stays on, which is what ultralytics itself does when it is offline; with the
    file in its weights folder, or on a CPU (no AMP), its own check runs unchanged."""
    from ultralytics.engine import trainer

    original = getattr(trainer.check_amp, "__wrapped__", trainer.check_amp)

    def check_amp(model: Any) -> bool:
        from ultralytics.utils import WEIGHTS_DIR

        device = next(model.parameters()).device
        if device.type in {"cpu", "mps"} or (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file():
            return original(model)
        log.warning("AMP self-test skipped: it needs yolo26n.pt, which is never downloaded here; training with AMP")
        return True

    check_amp.__wrapped__ = original  # type: ignore[attr-defined]
    trainer.check_amp = check_amp


ensure_offline()

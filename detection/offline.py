"""Make ultralytics work with no network: no hub, no analytics, no font or asset downloads.

Must run before ``ultralytics`` is imported (it reads its config folder at import time).
Measured with every socket blocked: with ``YOLO_OFFLINE=1``, ``sync=False`` and a font
already in its config folder, train, val, predict and plotting make no network attempt.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

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


ensure_offline()

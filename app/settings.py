"""Settings that persist between runs of the app (QSettings, an INI file in the user's settings folder).

``TRUS_APP_SETTINGS`` names another INI file (the tests use one, never the user's). A value
that is missing or unreadable reads as its default.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from PySide6.QtCore import QSettings

from app.session import DEFAULT_OPACITY
from pipeline.imaging.depth_scale import TICK_MM

ENV_PATH = "TRUS_APP_SETTINGS"
TICK_RANGE_MM = (0.5, 100.0)


class AppSettings:
    """The persisted settings: last folder, overlay opacity, depth-scale tick interval.

    Args:
        path: an INI file; None: ``TRUS_APP_SETTINGS``, else the user's settings folder.
    """

    def __init__(self, path: Path | None = None) -> None:
        chosen = path if path is not None else (Path(os.environ[ENV_PATH]) if os.environ.get(ENV_PATH) else None)
        if chosen is not None:
            self._store = QSettings(str(chosen), QSettings.Format.IniFormat)
        else:
            self._store = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "trus-app", "trus-app")

    @property
    def file(self) -> str:
        """Where the settings are kept."""
        return self._store.fileName()

    def _number(self, key: str, default: float, low: float, high: float) -> float:
        try:
            value = float(self._store.value(key, default))
        except (TypeError, ValueError):
            return default
        return value if math.isfinite(value) and low <= value <= high else default

    @property
    def last_folder(self) -> Path | None:
        """The folder of the last frame opened, if it still exists."""
        value = self._store.value("last_folder", "")
        return Path(value) if value and Path(value).is_dir() else None

    @last_folder.setter
    def last_folder(self, folder: Path) -> None:
        self._store.setValue("last_folder", str(folder))

    @property
    def opacity(self) -> float:
        """Overlay fill opacity in [0, 1]."""
        return self._number("opacity", DEFAULT_OPACITY, 0.0, 1.0)

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._store.setValue("opacity", float(value))

    @property
    def tick_mm(self) -> float:
        """mm between the depth scale's interval ticks, in :data:`TICK_RANGE_MM`."""
        return self._number("tick_mm", TICK_MM, *TICK_RANGE_MM)

    @tick_mm.setter
    def tick_mm(self, value: float) -> None:
        if not TICK_RANGE_MM[0] <= value <= TICK_RANGE_MM[1]:
            raise ValueError(f"the tick interval must be {TICK_RANGE_MM[0]}-{TICK_RANGE_MM[1]} mm, got {value}")
        self._store.setValue("tick_mm", float(value))

    def sync(self) -> None:
        """Writes the settings to disk now."""
        self._store.sync()

"""Settings that persist between runs of the app (QSettings, an INI file in the user's settings folder).

``TRUS_APP_SETTINGS`` names another INI file (the tests use one, never the user's). A value
that is missing or unreadable (not a number, out of range, not a ``#rrggbb`` colour) reads as
its default.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from urllib.parse import quote, unquote

from PySide6.QtCore import QSettings

from app.session import DEFAULT_OPACITY
from pipeline.imaging.depth_scale import TICK_MM
from pipeline.inference.contract import THRESHOLD_RANGE
from pipeline.inference.gland_size import PSA_DENSITY_THRESHOLD
from pipeline.inference.runtime import PRECISIONS

ENV_PATH = "TRUS_APP_SETTINGS"
TICK_RANGE_MM = (0.5, 100.0)
PSA_THRESHOLD_RANGE = (0.01, 1.0)
"""ng/mL/cc: the PSA density thresholds the user may choose (default :data:`PSA_DENSITY_THRESHOLD`, 0.15)."""
COLOUR_GROUP = "colours"
_HEX = re.compile(r"#[0-9a-fA-F]{6}")

Rgb = tuple[int, int, int]


def to_hex(rgb: Rgb) -> str:
    """``#rrggbb`` (lower case) of an RGB colour with channels 0-255; raises ValueError on another value."""
    if len(rgb) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in rgb):
        raise ValueError(f"a colour is three integers 0-255, got {rgb!r}")
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def parse_hex(text: object) -> Rgb | None:
    """The RGB colour (0-255 each) of a ``#rrggbb`` string, or None for anything else."""
    if not isinstance(text, str) or not _HEX.fullmatch(text.strip()):
        return None
    value = text.strip()
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


class AppSettings:
    """The persisted settings: last folder, overlay opacity, probability threshold, class colours,
    depth-scale tick interval and PSA density threshold.

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

    def _set_number(self, key: str, value: float, limits: tuple[float, float], name: str, unit: str = "") -> None:
        """Stores ``value`` under ``key``; raises ValueError naming the setting outside ``limits`` (inclusive)."""
        if not limits[0] <= value <= limits[1]:
            raise ValueError(f"the {name} must be {limits[0]}-{limits[1]}{unit}, got {value}")
        self._store.setValue(key, float(value))

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
        self._set_number("tick_mm", value, TICK_RANGE_MM, "tick interval", " mm")

    @property
    def threshold(self) -> float | None:
        """The probability threshold the user last chose, in :data:`THRESHOLD_RANGE` (0.01-0.99);
        None (the default): the model's own."""
        value = self._number("threshold", math.nan, *THRESHOLD_RANGE)
        return None if math.isnan(value) else value

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._set_number("threshold", value, THRESHOLD_RANGE, "threshold")

    @property
    def psa_threshold(self) -> float:
        """PSA density threshold in ng/mL/cc, in :data:`PSA_THRESHOLD_RANGE` (0.01-1.0); default 0.15."""
        return self._number("psa_threshold", PSA_DENSITY_THRESHOLD, *PSA_THRESHOLD_RANGE)

    @psa_threshold.setter
    def psa_threshold(self, value: float) -> None:
        self._set_number("psa_threshold", value, PSA_THRESHOLD_RANGE, "PSA density threshold", " ng/mL/cc")

    @property
    def precision(self) -> str:
        """Which model runs, one of :data:`pipeline.inference.runtime.PRECISIONS`: ``auto`` (the default: the
        INT8 model where this CPU runs it fast), ``int8`` or ``fp32``."""
        value = self._store.value("precision", "auto")
        return value if value in PRECISIONS else "auto"

    @precision.setter
    def precision(self, value: str) -> None:
        if value not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
        self._store.setValue("precision", value)

    @property
    def colours(self) -> dict[str, Rgb]:
        """The overlay colour the user chose per class name (RGB, 0-255 each); a class without a readable
        ``#rrggbb`` is absent (it keeps its default, :func:`pipeline.inference.measure.colour_for`)."""
        self._store.beginGroup(COLOUR_GROUP)
        try:
            stored = {unquote(key): parse_hex(self._store.value(key)) for key in self._store.childKeys()}
        finally:
            self._store.endGroup()
        return {name: rgb for name, rgb in stored.items() if rgb is not None}

    def set_colour(self, name: str, rgb: Rgb | None) -> None:
        """Keeps class ``name``'s overlay colour as ``#rrggbb``; None forgets it (back to the default)."""
        key = f"{COLOUR_GROUP}/{quote(name, safe='')}"  # a "/" in a name would open a group
        if rgb is None:
            self._store.remove(key)
        else:
            self._store.setValue(key, to_hex(rgb))

    def sync(self) -> None:
        """Writes the settings to disk now."""
        self._store.sync()

"""Reading the pipeline's CSV tables with identifiers kept as written.

Frame ids like ``0001`` and patients like ``007`` or ``NA`` are text: read with pandas'
defaults they would become the numbers 1 and 7, or a missing value, and no longer match the
file names and the split file. Every CSV the pipeline reads back goes through :func:`read_table`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ID_COLUMNS = ("frame_id", "patient", "original_name", "export_file", "export_split", "study", "source_digest",
              "source_kind", "modality", "class", "file", "output", "plane", "plane_source")
"""Columns holding identifiers or names, read as text; only an empty cell is missing."""


def read_table(path: Path) -> pd.DataFrame:
    """Reads a CSV written by the pipeline: :data:`ID_COLUMNS` as ``str``, numbers as numbers.

    Only empty cells are missing values (``NA``, ``null`` or ``nan`` in a name stay text).

    Raises:
        OSError: the file cannot be read; ValueError (pandas' ParserError): it is not CSV.
    """
    return pd.read_csv(path, dtype=dict.fromkeys(ID_COLUMNS, str), keep_default_na=False, na_values=[""])

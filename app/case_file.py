"""The case file: the work on a case's frames, saved so that reopening the case shows it (no Qt).

One JSON file (:data:`CASE_SCHEMA`): the frames by path relative to the case file, and per
frame the plane the user chose, the calipers, the calibration and the edited masks (bit-packed,
zlib-compressed, base64: about 10 kB per edited 1280x872 frame); for the case the PSA, the
frames used for the volume, the acceptance and the case identifier. The model's probabilities
are not saved: the model segments the frames again. By default the file sits beside the
images (:func:`default_case_path`); "Save case as" puts it in any folder.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from app.calipers import FrameCaliper, check_plane
from app.case import Case, FrameRef, FrameWork, case_frames, parse_tags
from pipeline.corrections import CorrectedFrame
from pipeline.files.atomic import write_text_atomically
from pipeline.imaging.calibration import SPACING_SOURCES, Calibration

CASE_SCHEMA = "trus-case/1"
CASE_SUFFIX = ".trus-case.json"
FOLDER_CASE_NAME = "case" + CASE_SUFFIX


class CaseFileError(ValueError):
    """A case file cannot be read; the message names the file and the problem."""


def default_case_path(source: Path) -> Path:
    """Where a case opened from ``source`` is saved by default: ``case.trus-case.json`` in a folder,
    ``<file name>.trus-case.json`` beside a single (e.g. multi-frame DICOM) file."""
    source = Path(source)
    return source / FOLDER_CASE_NAME if source.is_dir() else source.with_name(source.name + CASE_SUFFIX)


def _pack(masks: np.ndarray) -> dict[str, Any]:
    bits = np.packbits(masks.astype(bool), axis=None)
    return {"shape": list(masks.shape), "bits": base64.b64encode(zlib.compress(bits.tobytes(), 9)).decode("ascii")}


def _unpack(value: dict[str, Any]) -> np.ndarray:
    shape = tuple(int(n) for n in value["shape"])
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"edited masks of shape {shape}: expected (classes, height, width)")
    bits = np.frombuffer(zlib.decompress(base64.b64decode(value["bits"])), np.uint8)
    count = int(np.prod(shape))
    if bits.size * 8 < count:
        raise ValueError(f"edited masks hold {bits.size * 8} bits, their shape {shape} needs {count}")
    return np.unpackbits(bits, count=count).astype(bool).reshape(shape)


def _caliper_json(caliper: FrameCaliper) -> dict[str, Any]:
    return {"name": caliper.name, "start_xy": list(caliper.start_xy), "end_xy": list(caliper.end_xy),
            "automatic": caliper.automatic}


def _work_json(ref: FrameRef, work: FrameWork, folder: Path) -> dict[str, Any]:
    calibration = work.calibration
    return {
        "file": Path(os.path.relpath(ref.path, folder)).as_posix(), "frame": ref.index,
        "plane": work.user_plane, "calipers": [_caliper_json(c) for c in work.calipers],
        "calibration": None if calibration is None else {
            "spacing_mm": list(calibration.spacing_mm) if calibration.spacing_mm else None,
            "source": calibration.source, "note": calibration.note},
        "edited": None if work.edited is None else _pack(work.edited),
        "tags": list(work.tags),
    }


def case_json(case: Case, path: Path) -> dict[str, Any]:
    """The case file's content for ``case`` saved as ``path`` (frame paths relative to its folder)."""
    folder = Path(path).resolve().parent
    return {
        "schema": CASE_SCHEMA, "case_id": case.case_id, "classes": list(case.classes),
        "source": Path(os.path.relpath(Path(case.source).resolve(), folder)).as_posix(),
        "psa_ng_per_ml": case.psa_ng_per_ml,
        "volume_frames": dict(case.volume_frames), "accepted_at": case.accepted_at,
        "accepted_figures": list(case.accepted_figures) if case.accepted_figures is not None else None,
        "frames": {str(number): _work_json(case.frames[number], work, folder)
                   for number, work in sorted(case.work.items())
                   if not work.empty or number in case.volume_frames.values()},  # frames only looked at: no entry
    }


def save_case(case: Case, path: Path) -> Path:
    """Writes the case file atomically (a failure leaves an earlier file as it was); returns its path."""
    path = Path(path)
    write_text_atomically(path, json.dumps(case_json(case, path), indent=1))
    return path


def _calibration(value: dict[str, Any] | None) -> Calibration | None:
    if value is None:
        return None
    if value["source"] not in SPACING_SOURCES:
        raise ValueError(f"unknown spacing source {value['source']!r}")
    spacing = value["spacing_mm"]
    if spacing is not None and not (len(spacing) == 2 and all(float(s) > 0 for s in spacing)):
        raise ValueError(f"spacing {spacing!r} is not two numbers > 0")
    return Calibration(None if spacing is None else (float(spacing[0]), float(spacing[1])), value["source"],
                       str(value["note"]))


def _work(value: dict[str, Any]) -> FrameWork:
    calipers = [FrameCaliper(str(c["name"]), (float(c["start_xy"][0]), float(c["start_xy"][1])),
                             (float(c["end_xy"][0]), float(c["end_xy"][1])), bool(c["automatic"]))
                for c in value["calipers"]]
    edited = None if value["edited"] is None else _unpack(value["edited"])
    return FrameWork(check_plane(value["plane"]), calipers, edited, _calibration(value["calibration"]),
                     parse_tags(",".join(str(tag) for tag in value.get("tags", []))))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CaseFileError(f"{path}: not a readable case file ({error})") from error
    if not isinstance(content, dict) or content.get("schema") != CASE_SCHEMA:
        raise CaseFileError(f"{path}: not a case file (expected schema {CASE_SCHEMA!r})")
    return content


def case_source(path: Path) -> Path:
    """The folder or file a case file's frames come from (its ``source``, relative to the case file).

    Raises:
        CaseFileError: the case file cannot be read, or its source is gone.
    """
    content = _read_json(path)
    try:
        source = (Path(path).resolve().parent / str(content["source"])).resolve()
    except KeyError as error:
        raise CaseFileError(f"{path}: malformed case file (no {error})") from error
    if not source.exists():
        raise CaseFileError(f"{path}: its frames' {source} no longer exists")
    return source


def read_case(path: Path) -> tuple[Case, Path | None]:
    """Opens a folder, a frame file or a case file as a case, with the work saved in its case file if there is one.

    Returns the case and the case file its work came from (None when there is none yet).

    Raises:
        FrameReadError: no frame file to open. CaseFileError: a case file that cannot be read.
    """
    path = Path(path)
    is_case_file = path.name.endswith(CASE_SUFFIX)
    case_file = path if is_case_file else default_case_path(path)
    source = case_source(case_file) if is_case_file else path
    case = Case(source, case_frames(source))
    if not case_file.is_file():
        return case, None
    load_case_work(case, case_file)
    return case, case_file


def case_corrections(path: Path) -> list[CorrectedFrame]:
    """The frames whose masks were edited in the case file ``path``, as corrections named like their images in
    the Roboflow project (:attr:`app.case.FrameRef.image_name`), in case order.

    Raises:
        CaseFileError: the case file cannot be read, or it holds no edited frame.
        FrameReadError: its frames are gone.
    """
    if not Path(path).name.endswith(CASE_SUFFIX):
        raise CaseFileError(f"{path}: not a case file (its name must end in {CASE_SUFFIX})")
    case, _ = read_case(Path(path))
    frames = [CorrectedFrame(case.frames[number].image_name, work.edited, case.classes)
              for number, work in sorted(case.work.items()) if work.edited is not None]
    if not frames:
        raise CaseFileError(f"{path}: no frame of this case has edited masks")
    return frames


def load_case_work(case: Case, path: Path) -> Case:
    """Fills a freshly opened ``case`` with the work saved in the case file ``path``; returns it.

    A saved frame is matched by its file (relative to the case file) and frame number, and so are
    the frames used for the volume (frames added to the folder since renumber the case); frames
    that are no longer in the case are reported, not guessed.

    Raises:
        CaseFileError: unreadable JSON, another schema, a malformed entry, or saved frames the
            case no longer has (the message names the file and the problem).
    """
    path = Path(path)
    content = _read_json(path)
    folder = path.resolve().parent
    numbers = {(Path(ref.path).resolve(), ref.index): number for number, ref in enumerate(case.frames)}
    try:
        work: dict[int, FrameWork] = {}
        renumbered: dict[int, int] = {}  # saved frame number -> its number in the case now
        missing = []
        for saved, value in content["frames"].items():
            number = numbers.get(((folder / value["file"]).resolve(), int(value["frame"])))
            if number is None:
                missing.append(f"{value['file']} frame {int(value['frame']) + 1}")
                continue
            work[number] = _work(value)
            renumbered[int(saved)] = number
        if missing:
            raise CaseFileError(f"{path}: the case no longer has {', '.join(missing)}")
        volume_frames = {check_plane(plane): renumbered.get(int(number), int(number))
                         for plane, number in content["volume_frames"].items()}
        if any(not 0 <= number < len(case.frames) for number in volume_frames.values()):
            raise ValueError(f"volume frames {volume_frames} outside the case's {len(case.frames)} frames")
        psa = content["psa_ng_per_ml"]
        figures = content["accepted_figures"]
        case.work, case.volume_frames = work, volume_frames
        case.psa_ng_per_ml = None if psa is None else float(psa)
        case.accepted_at = content["accepted_at"]
        case.accepted_figures = None if figures is None else tuple(
            tuple(item) if isinstance(item, list) else item for item in figures)
        case.case_id = str(content.get("case_id", ""))
        case.classes = tuple(str(name) for name in content.get("classes", []))
        if case.classes and any(w.edited is not None and w.edited.shape[0] != len(case.classes)
                                for w in work.values()):
            raise ValueError(f"edited masks do not have one channel per class {list(case.classes)}")
    except CaseFileError:
        raise
    except (KeyError, TypeError, ValueError, zlib.error) as error:
        raise CaseFileError(f"{path}: malformed case file ({type(error).__name__}: {error})") from error
    return case

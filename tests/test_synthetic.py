"""The synthetic TRUS phantom and its Roboflow-style COCO export (`trus sample`)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.files.output_folder import MARKER
from pipeline.imaging.polygons import rasterise_polygon
from pipeline.ingest.coco import read_coco_export
from pipeline.synthetic import (FLEET, PLANES, SAGITTAL, TRANSVERSE, VARIANT_NAMES, VARIANTS, FrameSlice, PhantomFrame,
                                SampleSpec, lesion_frames, patient_exam, patient_variant, render_phantom, sample_frame,
                                write_sample_export)
from pipeline.synthetic.anatomy import MID_GLAND
from pipeline.synthetic.ground_truth import export_precision, fit_inside
from pipeline.synthetic.manifests import FRAMES_MANIFEST, PATIENTS_MANIFEST
from pipeline.synthetic.phantom import draw_patient
from pipeline.synthetic.roboflow_coco import SPLITS, plan_export, polygon_annotation, roboflow_file_name

SMALL = SampleSpec(n_patients=3, frames_per_patient=2, frame_width=320, frame_height=240, empty_fraction=0.34)
NAME = re.compile(r"^P\d{3}_F\d{2}_(transverse|sagittal)_png\.rf\.([0-9a-f]{32}|[A-Za-z0-9]{20})\.jpg$")
PATIENT = re.compile(r"^(?P<patient>[^_]+)_")  # the project's default data.patient_pattern


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _coco(root: Path, split: str) -> dict:
    return json.loads((root / split / "_annotations.coco.json").read_text())


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _grow(mask: np.ndarray, k: int) -> np.ndarray:
    """The mask dilated by k px (a square), or eroded by -k px when k < 0."""
    kernel = np.ones((2 * abs(k) + 1, 2 * abs(k) + 1), np.uint8)
    return (cv2.dilate if k >= 0 else cv2.erode)(mask.astype(np.uint8), kernel).astype(bool)


@pytest.fixture(scope="module")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("sample") / "data"
    return root, write_sample_export(root, seed=5, spec=SMALL)


MIDLINE = FrameSlice(SAGITTAL, "midline", 0.0)


def lesion_frame(seed: int, patient: int, plane: str, frames_per_patient: int = 5) -> int:
    """The first frame of ``plane`` that shows the patient's lesion (every lesion patient's exam records it in
    each plane)."""
    slices = patient_exam(seed, patient, frames_per_patient, lesion_patient=True).slices
    return next(f for f in lesion_frames(seed, patient, frames_per_patient) if slices[f - 1].plane == plane)


@pytest.fixture(scope="module")
def frames() -> list[PhantomFrame]:
    """Lesion frames of several patients at two sizes, mid-gland transverse and midline sagittal."""
    return [render_phantom(np.random.default_rng(seed), w, h, with_lesion=True, frame_slice=cut)
            for seed in range(4) for w, h in ((320, 240), (640, 436)) for cut in (MID_GLAND, MIDLINE)]


def test_same_seed_same_bytes_other_seed_other_data(small_export, tmp_path):
    root, counts = small_export
    again = write_sample_export(tmp_path / "again", seed=5, spec=SMALL)
    write_sample_export(tmp_path / "other", seed=6, spec=SMALL)
    first = _files(root)
    assert again == counts and _files(tmp_path / "again") == first
    other_files = _files(tmp_path / "other")
    assert set(other_files) != set(first)
    assert other_files["train/_annotations.coco.json"] != first["train/_annotations.coco.json"]
    assert json.loads(first["train/_annotations.coco.json"])["info"]["date_created"][:4].isdigit()


def test_export_layout_and_counts(small_export):
    root, counts = small_export
    assert sorted(p.name for p in root.iterdir()) == sorted([MARKER, "README.dataset.txt", "README.roboflow.txt",
                                                             *SPLITS, FRAMES_MANIFEST, PATIENTS_MANIFEST])
    assert counts == {"train": 4, "valid": 1, "test": 1, "annotations": counts["annotations"]}
    for readme in ("README.dataset.txt", "README.roboflow.txt"):
        text = (root / readme).read_text()
        assert "SYNTHETIC" in text and FRAMES_MANIFEST in text and PATIENTS_MANIFEST in text
        assert "P<patient>_F<frame>_<plane>.png" in text
    assert "trus sample --seed 5" in (root / "README.roboflow.txt").read_text()
    total = 0
    for split in SPLITS:
        doc = _coco(root, split)
        assert list(doc) == ["info", "licenses", "categories", "images", "annotations"]
        assert "SYNTHETIC" in doc["info"]["description"] and doc["info"]["version"] == "1"
        assert doc["licenses"] == [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}]
        assert doc["categories"] == [{"id": 0, "name": "prostate-trus", "supercategory": "none"},
                                     {"id": 1, "name": "gland", "supercategory": "prostate-trus"},
                                     {"id": 2, "name": "lesion", "supercategory": "prostate-trus"}]
        assert [im["id"] for im in doc["images"]] == list(range(counts[split]))
        assert [a["id"] for a in doc["annotations"]] == list(range(len(doc["annotations"])))
        on_disk = {p.name for p in (root / split).glob("*.jpg")}
        assert on_disk == {im["file_name"] for im in doc["images"]}
        for im in doc["images"]:
            assert NAME.match(im["file_name"]) and PATIENT.match(im["file_name"])
            assert (im["width"], im["height"], im["license"]) == (320, 240, 1)
            image = cv2.imread(str(root / split / im["file_name"]), cv2.IMREAD_UNCHANGED)
            assert image.shape == (240, 320, 3) and image.dtype == np.uint8
        total += len(doc["annotations"])
    assert total == counts["annotations"]


def test_annotations_have_roboflow_quirks(small_export):
    root, _ = small_export
    for split in SPLITS:
        doc = _coco(root, split)
        images = {im["id"] for im in doc["images"]}
        for a in doc["annotations"]:
            assert a["category_id"] in (1, 2) and a["iscrowd"] == 0 and a["image_id"] in images
            assert list(a) == ["id", "image_id", "category_id", "bbox", "area", "segmentation", "iscrowd"]
            (flat,) = a["segmentation"]
            xs, ys = flat[0::2], flat[1::2]
            assert len(xs) >= 4 and flat[:2] == flat[-2:]  # closed polygon
            x, y, w, h = a["bbox"]
            assert (x, y) == (int(np.floor(min(xs) + 0.5)), int(np.floor(min(ys) + 0.5)))
            assert w == pytest.approx(max(xs) - min(xs), abs=1e-3) and h == pytest.approx(max(ys) - min(ys), abs=1e-3)
            assert a["area"] == pytest.approx(w * h, abs=1e-3)  # bbox area, not polygon area


def test_bbox_rounds_half_up_and_area_is_bbox_area():
    square = np.array([[10.5, 20.5], [30.25, 20.5], [30.25, 40.0], [10.5, 40.0]])
    a = polygon_annotation(3, 7, 2, square)
    assert a["bbox"] == [11, 21, 19.75, 19.5] and a["area"] == pytest.approx(385.125)
    assert a["segmentation"] == [[10.5, 20.5, 30.25, 20.5, 30.25, 40, 10.5, 40, 10.5, 20.5]]
    assert (a["id"], a["image_id"], a["category_id"], a["iscrowd"]) == (3, 7, 2, 0)


def test_default_plan_names_splits_and_fractions():
    plans = plan_export(0)
    assert len(plans) == 120 and len({p.file_name for p in plans}) == 120
    assert Counter(p.split for p in plans) == {"train": 84, "valid": 24, "test": 12}
    assert all(NAME.match(p.file_name) for p in plans)
    styles = Counter(len(NAME.match(p.file_name).group(2)) for p in plans)
    assert set(styles) == {20, 32} and 20 <= styles[20] <= 60
    assert sum(not p.with_gland for p in plans) == round(0.06 * 120)
    lesion_patients = {p.patient for p in plans if p.with_lesion}
    assert len(lesion_patients) == round(0.4 * 24)  # a lesion patient's exam records the lesion in each plane
    assert 15 <= sum(p.with_lesion for p in plans) <= 30
    assert all(p.with_gland for p in plans if p.with_lesion)
    straddling = Counter(len({q.split for q in plans if q.patient == p}) for p in range(1, 25))
    assert straddling[1] < 24  # per-frame split: some patients land in several splits
    p7 = next(p for p in plans if (p.patient, p.frame) == (7, 3))
    assert p7.original_name == "P007_F03_transverse.png" and p7.file_name.startswith("P007_F03_transverse_png.rf.")
    assert PATIENT.match(p7.file_name)["patient"] == "P007"
    assert roboflow_file_name("P007_F03_transverse.png", 0) == p7.file_name \
        != roboflow_file_name("P007_F03_transverse.png", 1)


def test_empty_frames_are_listed_without_annotations(small_export):
    root, _ = small_export
    plans = {p.file_name: p for p in plan_export(5, SMALL)}
    assert sum(not p.with_gland for p in plans.values()) == 2
    for split in SPLITS:
        doc = _coco(root, split)
        annotated = Counter(a["image_id"] for a in doc["annotations"] if a["category_id"] == 1)
        lesions = Counter(a["image_id"] for a in doc["annotations"] if a["category_id"] == 2)
        for im in doc["images"]:
            plan = plans[im["file_name"]]
            assert annotated[im["id"]] == int(plan.with_gland) and lesions[im["id"]] == int(plan.with_lesion)
    for cut in (MID_GLAND, MIDLINE):
        empty = render_phantom(np.random.default_rng(1), 320, 240, with_gland=False, with_lesion=False, frame_slice=cut)
        assert not empty.gland_mask.any() and not empty.lesion_mask.any()
        assert empty.gland_polygons == [] and empty.lesion_polygons == []
        assert empty.frame_slice.plane == cut.plane and not empty.frame_slice.shows_gland
    with pytest.raises(ValueError):
        render_phantom(np.random.default_rng(1), 320, 240, with_gland=False, with_lesion=True)


def test_polygons_rasterise_back_to_the_masks(frames):
    for f in frames:
        assert len(f.gland_polygons) == 1 and len(f.lesion_polygons) == 1
        for polygons, mask in ((f.gland_polygons, f.gland_mask), (f.lesion_polygons, f.lesion_mask)):
            assert polygons[0].dtype == np.float32 and polygons[0].shape[1] == 2
            np.testing.assert_array_equal(rasterise_polygon(polygons, mask.shape), mask)
            # through the COCO annotation, as the readers convert it: the same float32 vertices
            flat = json.loads(json.dumps(polygon_annotation(0, 0, 1, polygons[0])))["segmentation"][0]
            np.testing.assert_array_equal(np.reshape(np.asarray(flat, np.float32), (-1, 2))[:-1], polygons[0])


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_export_reads_back_to_the_generator_masks(tmp_path, variant):
    """The COCO reader gives back the generator's own masks, pixel for pixel, on every scanner variant."""
    spec = SampleSpec(n_patients=2, frames_per_patient=2, lesion_fraction=0.5, empty_fraction=0.25, variant=variant)
    write_sample_export(tmp_path / "data", seed=3, spec=spec)
    frames = read_coco_export(tmp_path / "data", ["gland", "lesion"])
    plans = {p.file_name: p for p in plan_export(3, spec)}
    assert len(frames) == 4 and sum(p.with_lesion for p in plans.values()) >= 1
    shown = [plans[f.image_path.name].frame_slice.plane for f in frames if plans[f.image_path.name].with_gland]
    assert sorted(set(shown)) == sorted(PLANES)  # one transverse and one sagittal frame per patient
    for frame in frames:
        plan = plans[frame.image_path.name]
        truth = sample_frame(3, plan.patient, plan.frame, variant=variant, frames_per_patient=2,
                             with_gland=plan.with_gland, with_lesion=plan.with_lesion)
        gland, lesion = frame.masks(2)
        np.testing.assert_array_equal(gland, truth.gland_mask)
        np.testing.assert_array_equal(lesion, truth.lesion_mask)
        assert gland.any() == plan.with_gland and lesion.any() == plan.with_lesion


@pytest.mark.parametrize("value", [0.0, 12.3456, 12.3455, 12.3445, 0.0005, 1279.9995, 871.4999, 640.0625, 3.1e-4])
def test_export_precision_survives_the_json_round_trip(value):
    outline = export_precision(np.array([[value, 1.0], [value + 7.77777, 2.0], [5.0, value + 0.33333]]))
    assert outline.dtype == np.float32
    flat = json.loads(json.dumps(polygon_annotation(0, 0, 1, outline)))["segmentation"][0]
    np.testing.assert_array_equal(np.reshape(np.asarray(flat, np.float32), (-1, 2))[:-1], outline)
    assert np.abs(outline - np.round(outline.astype(np.float64), 3)).max() < 1e-4


@pytest.mark.parametrize("radius, scaled", [(8.0, False), (14.5, True), (40.0, True)])
def test_fit_inside_shrinks_only_an_overflowing_outline(radius, scaled):
    container = rasterise_polygon([_circle((30.2, 30.7), 12.0)], (60, 64))
    outline = _circle((30.9, 29.8), radius)
    fitted, mask = fit_inside(outline, container)
    assert mask.any() and not (mask & ~container).any()
    np.testing.assert_array_equal(mask, rasterise_polygon([fitted], container.shape))
    assert np.array_equal(fitted, export_precision(outline)) != scaled


def _circle(centre: tuple[float, float], radius: float, n: int = 48) -> np.ndarray:
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre[0] + radius * np.cos(phi), centre[1] + radius * np.sin(phi)], 1)


def test_lesion_well_inside_gland_inside_fan(frames):
    for f in frames:
        gland, lesion = f.gland_mask, f.lesion_mask
        assert lesion.any() and not (lesion & ~gland).any()
        assert not (lesion & ~_grow(gland, -3)).any()  # well off the rim
        assert 0.003 <= lesion.sum() / gland.sum() <= 0.12  # 5-13 mm across in a 15-80 mL gland
        assert not (gland & ~_grow(f.fan_mask, -3)).any()  # clear of the fan border
        assert 0.08 <= gland.sum() / f.fan_mask.sum() <= 0.6


def test_gland_is_hypoechoic_with_a_bright_rim(frames):
    for f in frames:
        grey = f.image[..., 0].astype(np.float64)
        interior = _grow(f.gland_mask, -4) & ~f.lesion_mask
        rim = _grow(f.gland_mask, 1) & ~_grow(f.gland_mask, -1)
        around = _grow(f.gland_mask, 25) & ~_grow(f.gland_mask, 8) & f.fan_mask
        if f.frame_slice.plane == SAGITTAL:  # the tissue caudal to the gland, clear of the (anechoic) bladder
            around[:, : int(np.nonzero(f.gland_mask)[1].mean())] = False
        # medians: a bright calcification and its shadow must not decide it
        assert np.median(grey[interior]) < np.median(grey[around]) - 8
        assert np.median(grey[rim]) > np.median(grey[interior]) + 10
        assert np.median(grey[f.lesion_mask]) < np.median(grey[interior]) - 10


def test_black_outside_the_fan_with_burned_in_text(frames, small_export):
    root, _ = small_export
    jpeg = cv2.imread(str(next((root / "train").glob("*.jpg"))))
    # the JPEG's fan: its bright region, holes closed; JPEG ringing allows a few grey levels
    jpeg_fan = cv2.morphologyEx((cv2.cvtColor(jpeg, cv2.COLOR_BGR2GRAY) > 12).astype(np.uint8),
                                cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    for image, fan, black in [(f.image, f.fan_mask, 0) for f in frames] + [(jpeg, jpeg_fan, 12)]:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape
        assert np.abs(image.astype(int) - grey[..., None]).max() <= 2  # grey content and grey text
        outside = ~_grow(fan, 3)
        side = outside[h // 3: 2 * h // 3, : w // 2]  # beside the fan, where no text is drawn
        assert side.mean() > 0.2 and grey[h // 3: 2 * h // 3, : w // 2][side].max() <= black
        assert np.mean(grey[outside] <= black) > 0.9
        assert (grey[: h // 8, : w // 6] > 150).any()  # text in the top-left corner


def test_patient_frames_are_correlated():
    rng = np.random.default_rng(11)
    patient = draw_patient(rng, 320, 240)
    base = FrameSlice(TRANSVERSE, "base", 0.5)
    a, b = (render_phantom(np.random.default_rng(s), 320, 240, with_lesion=False, patient=patient, frame_slice=base)
            for s in (1, 2))
    other = render_phantom(np.random.default_rng(3), 320, 240, with_lesion=False, frame_slice=base)
    assert np.array_equal(a.fan_mask, b.fan_mask) and not np.array_equal(a.image, b.image)
    assert _iou(a.gland_mask, b.gland_mask) > 0.8 > _iou(a.gland_mask, other.gland_mask)


def test_refuses_non_empty_out_dir_and_replaces_only_its_own_output(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    spec = SampleSpec(n_patients=1, frames_per_patient=1, frame_width=320, frame_height=240)
    for force in (False, True):
        with pytest.raises(ValueError, match="not empty|did not write"):
            write_sample_export(target, seed=0, spec=spec, force=force)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    fresh = tmp_path / "fresh"
    counts = write_sample_export(fresh, seed=0, spec=spec)
    assert sum(counts[split] for split in SPLITS) == 1
    with pytest.raises(ValueError, match="not empty"):
        write_sample_export(fresh, seed=0, spec=spec)
    write_sample_export(fresh, seed=1, spec=spec, force=True)
    assert "--seed 1" in (fresh / "README.roboflow.txt").read_text()
    with pytest.raises(ValueError):
        write_sample_export(tmp_path / "fresh", seed=-1, spec=spec)
    with pytest.raises(ValueError):
        SampleSpec(frame_width=160, frame_height=120)
    with pytest.raises(ValueError):
        SampleSpec(split_fractions=(0.7, 0.2, 0.2))


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_variants_are_deterministic_and_expose_the_true_fan(variant, plane):
    index = lesion_frame(3, 2, plane)
    a, b = (sample_frame(3, 2, index, variant=variant, size=(400, 272), with_lesion=True) for _ in range(2))
    assert a.frame_slice.plane == plane and a.lesion_mask.any()
    assert np.array_equal(a.image, b.image) and a.fan == b.fan
    scanner = patient_variant(variant, 3, 2)
    width, height = scanner.size or (400, 272)
    assert a.image.shape == (height, width, 3) and a.fan_mask.shape == (height, width)
    x, y, w, h = a.fan_box
    assert (x, y, w, h) == cv2.boundingRect(a.fan_mask.astype(np.uint8)) and w > 0.6 * width and 0 < y < y + h < height
    assert abs(x + w / 2 - a.fan.apex_x) <= 1  # centred on the apex
    lo, hi = scanner.fov_deg
    assert lo - 1e-9 <= 2 * np.degrees(a.fan.half_angle) <= hi + 1e-9
    assert a.fan.direction == (1 if scanner.probe == "top" else -1)
    assert not (a.gland_mask & ~_grow(a.fan_mask, -3)).any() and not (a.lesion_mask & ~a.gland_mask).any()


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "default" and VARIANTS[v].jpeg_quality is None])
def test_variant_overlays_leave_the_fan_border_clear(variant, plane):
    frame = sample_frame(0, 1, lesion_frame(0, 1, plane), variant=variant, size=(640, 436), with_lesion=True)
    ring = _grow(frame.fan_mask, 6) & ~_grow(frame.fan_mask, 1)  # 2-6 px outside the fan
    assert frame.image[ring].max() == 0
    outside = ~_grow(frame.fan_mask, 1)
    assert frame.image[outside].max() > 150  # but the margins do hold text


@pytest.mark.parametrize("plane", PLANES)
def test_variant_features_are_in_the_pixels(plane):
    index = lesion_frame(0, 1, plane)
    default, colour, bottom = (sample_frame(0, 1, index, variant=v, size=(640, 436), with_lesion=True)
                               for v in ("default", "colour", "probe_bottom"))
    saturation = lambda image: int((image.max(axis=2).astype(int) - image.min(axis=2)).max())  # noqa: E731
    assert saturation(default.image) <= 2 and saturation(colour.image) > 150  # colour text and calipers
    gland_y = lambda f: np.nonzero(f.gland_mask)[0].mean()  # noqa: E731
    assert default.fan.apex_y < gland_y(default) and bottom.fan.apex_y > gland_y(bottom)  # probe side
    logo = sample_frame(0, 1, index, variant="logo_calipers", size=(640, 436), with_lesion=True)
    on_fan = _grow(logo.fan_mask, -4)
    assert (logo.image[on_fan] >= 235).sum() > (default.image[on_fan] >= 235).sum() + 50  # logo ring, calipers


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jpeg_variant_adds_capture_noise(seed):
    noisy = VARIANTS["jpeg"]
    clean = dataclasses.replace(noisy, name="jpeg_clean", jpeg_quality=None)
    a, b = (render_phantom(np.random.default_rng(seed), 400, 272, with_lesion=False, variant=v) for v in (noisy, clean))
    error = np.abs(a.image.astype(int) - b.image.astype(int))
    assert 1.0 < error[a.fan_mask].mean() < 10.0  # quality 12-30 blocks on the speckle
    assert error.max() > 60  # ringing around the burned-in text
    assert np.array_equal(a.fan_mask, b.fan_mask)


def test_sample_export_with_a_variant(tmp_path):
    spec = SampleSpec(n_patients=2, frames_per_patient=1, frame_width=320, frame_height=240, variant="size_800x600",
                      empty_fraction=0.0)
    write_sample_export(tmp_path / "data", seed=2, spec=spec)
    images = [im for split in SPLITS for im in _coco(tmp_path / "data", split)["images"]]
    assert {(im["width"], im["height"]) for im in images} == {(800, 600)}
    assert "--variant size_800x600" in _coco(tmp_path / "data", "train")["info"]["description"]
    readme = (tmp_path / "data" / "README.roboflow.txt").read_text()
    assert "800x600" in readme and "Scanner variant: size_800x600" in readme
    with pytest.raises(ValueError, match="unknown sample variant"):
        SampleSpec(variant="nope")


def test_fleet_mixes_variants_per_patient():
    names = [patient_variant(FLEET, 0, patient).name for patient in range(1, 25)]
    assert len(set(names)) >= 6 and names == [patient_variant(FLEET, 0, p).name for p in range(1, 25)]
    assert names != [patient_variant(FLEET, 1, p).name for p in range(1, 25)]
    assert patient_variant("wide", 0, 7) is VARIANTS["wide"]


def test_cli_lists_every_variant():
    result = CliRunner().invoke(app, ["sample", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in (*VARIANT_NAMES, "--sagittal-fraction"):
        assert name in result.output


@pytest.mark.parametrize("seed", [3, 4])
def test_without_the_beam_the_same_anatomy_without_speckle(seed):
    """``beam=False``: the same masks from the same seed, the lesion darker than the gland, and no speckle."""
    scanned, clean = (render_phantom(np.random.default_rng(seed), 640, 436, with_lesion=True, beam=beam)
                      for beam in (True, False))
    np.testing.assert_array_equal(scanned.gland_mask, clean.gland_mask)
    np.testing.assert_array_equal(scanned.lesion_mask, clean.lesion_mask)
    interior = _grow(clean.gland_mask, -4) & ~_grow(clean.lesion_mask, 4)

    def speckle(image: np.ndarray) -> float:  # grey-level change from one pixel to the next inside the gland
        grey = image[..., 0].astype(np.float64)
        return float(np.median(np.abs(np.diff(grey, axis=1))[interior[:, 1:]]))

    assert speckle(clean.image) <= 1.0 and speckle(scanned.image) >= 4.0
    lesion_contrast = np.median(clean.image[..., 0][interior]) - np.median(clean.image[..., 0][clean.lesion_mask])
    assert lesion_contrast > 20  # 7.5-11 dB below the gland: 32-47 grey levels at 60 dB, less its soft edge

"""``trus upload-corrections``: the real CLI and the real ``roboflow`` client against the fake Roboflow API.

Each run is a ``python -m pipeline.cli`` process with ``API_URL`` pointing at the fake
(127.0.0.1) and the key in ``ROBOFLOW_API_KEY`` only. The last test closes the loop: a
corrected mask sent to the fake, then pulled back through the pipeline's ingest (the pull
stage's code) from the version export that now reflects it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataParams, QcParams, RoboflowParams
from pipeline.corrections import CorrectedFrame, frame_document_path, write_corrections
from pipeline.imaging.masks import unpack_masks
from pipeline.ingest.source import ingest
from pipeline.layout import MANIFEST, MASKS
from pipeline.synthetic.roboflow_coco import SampleSpec, write_sample_export
from tests.conftest import PROJECT_ROOT, child_environment
from tests.fake_roboflow import FakeRoboflow, small_export_zip, zip_folder
from tests.test_corrections import CLASSES, ellipse, gland_with_hole_and_blob, iou

KEY = "rf_Live_c0rrecti0nsK3y"
WORKSPACE, PROJECT = "hospital-urology", "prostate-trus"
SIZE = (192, 256)  # height, width of the small synthetic frames


@pytest.fixture(scope="module")
def export_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_export_zip(tmp_path_factory.mktemp("export"))


@pytest.fixture
def fake(export_zip: bytes):
    with FakeRoboflow(KEY, {"coco-segmentation": export_zip}, WORKSPACE, PROJECT) as server:
        yield server


def run_upload(folder: Path, url: str, cwd: Path, key: str = KEY, *options: str) -> subprocess.CompletedProcess:
    """``trus upload-corrections FOLDER`` in a child process against ``url``."""
    environment = child_environment({"PYTHONPATH": str(PROJECT_ROOT), "API_URL": url, "ROBOFLOW_API_KEY": key,
                                     "ROBOFLOW_CONFIG_DIR": str(cwd / "no-roboflow-config.json"), "COLUMNS": "250"})
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "upload-corrections", str(folder), "--workspace",
                           WORKSPACE, "--project", PROJECT, "--timeout", "20", *options], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120)


def corrections(tmp_path: Path, names: list[str]) -> tuple[Path, list[CorrectedFrame]]:
    """A corrections folder with one frame per name: a gland rectangle and a lesion square, different per frame."""
    frames = []
    for index, name in enumerate(names):
        masks = np.zeros((2, *SIZE), bool)
        masks[0, 30 + index:150, 40:200 - index] = True
        masks[1, 60:80, 90 + index:110] = True
        frames.append(CorrectedFrame(name, masks, CLASSES))
    return write_corrections(tmp_path / "corrections", frames), frames


def report_of(folder: Path) -> dict:
    return json.loads(folder.with_name(f"{folder.name}.upload_report.json").read_text())


def assert_key_never_leaked(fake: FakeRoboflow, result: subprocess.CompletedProcess, root: Path, key: str = KEY) -> None:
    """The key is only ever the ``api_key`` query value: not in the output, a file, or another request field."""
    assert key not in result.stdout and key not in result.stderr
    for path in root.rglob("*"):
        assert key not in str(path) and (not path.is_file() or key.encode() not in path.read_bytes())
    for request in fake.requests:
        assert key not in request.path and key.encode() not in request.body
        assert all(key not in value for name, values in request.query.items() if name != "api_key" for value in values)


def test_each_frame_is_found_by_name_tagged_and_its_annotation_replaced(fake, tmp_path):
    images = fake.project_images()
    first, second = images[0], images[3]
    # the second frame is named as the export names it: looked up by its original name
    folder, frames = corrections(tmp_path, [first["name"], second["export_name"]])
    result = run_upload(folder, fake.url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 of 2 frame(s)" in result.stderr and "not sent" not in result.stderr

    assert fake.searches == [{"offset": 0, "limit": 250, "fields": ["id", "name"]}]
    assert fake.tag_updates == [{"image_id": first["id"], "addTags": ["clinician-corrected"]},
                                {"image_id": second["id"], "addTags": ["clinician-corrected"]}]
    assert [(s["image_id"], s["name"], s["overwrite"], s["add_to_dataset"], s["job_name"])
            for s in fake.annotation_saves] == [(first["id"], "annotation.coco.json", True, "false", None),
                                                (second["id"], "annotation.coco.json", True, "false", None)]
    sent_first = fake.annotation_saves[0]["document"]
    assert sent_first == json.loads(frame_document_path(folder, first["name"]).read_text())
    sent_second = fake.annotation_saves[1]["document"]
    assert sent_second["images"][0]["file_name"] == second["name"]  # the name the project knows
    assert sent_second["annotations"] == json.loads(frame_document_path(folder, frames[1].file_name).read_text())[
        "annotations"]
    assert [image["tags"] for image in (first, second)] == [["clinician-corrected"]] * 2

    report = report_of(folder)
    assert report["sent"] == [{"file_name": first["name"], "image_id": first["id"]},
                              {"file_name": second["export_name"], "image_id": second["id"]}]
    assert report["not_sent"] == [] and report["stopped"] is None and report["tag"] == "clinician-corrected"
    assert_key_never_leaked(fake, result, tmp_path)


def test_an_image_the_project_lacks_is_reported_and_the_others_still_sent(fake, tmp_path):
    images = fake.project_images()
    folder, _ = corrections(tmp_path, [images[0]["name"], "P404_F01_transverse.png", images[1]["name"]])
    fake.refuse_annotations[images[1]["name"]] = 422
    result = run_upload(folder, fake.url, tmp_path, KEY, "--tag", "review-2024")
    assert result.returncode == 1
    assert [save["image_id"] for save in fake.annotation_saves] == [images[0]["id"]]
    report = report_of(folder)
    assert report["sent"] == [{"file_name": images[0]["name"], "image_id": images[0]["id"]}]
    assert report["not_sent"] == [
        {"file_name": "P404_F01_transverse.png", "image_id": None,
         "reason": "the project hospital-urology/prostate-trus has no image named P404_F01_transverse.png"},
        {"file_name": images[1]["name"], "image_id": images[1]["id"],
         "reason": f"tagged 'review-2024', annotation not saved: Roboflow refused the annotation of "
                   f"{images[1]['name']} (HTTP 422): Annotation of `{images[1]['name']}` refused."}]
    output = " ".join(result.stderr.split())
    assert "1 of 3 frame(s)" in output and "no image named P404_F01_transverse.png" in output
    assert "2 frame(s) not sent" in output and "Traceback" not in output
    assert_key_never_leaked(fake, result, tmp_path)


@pytest.mark.parametrize("case, reason", [
    ("bad key", "Roboflow rejected the API key (HTTP 401); check ROBOFLOW_API_KEY"),
    ("server stopped", "cannot reach Roboflow at {url} (connection refused or offline); check the network/API_URL"),
])
def test_a_bad_key_or_no_network_sends_nothing_and_reports_every_frame(fake, tmp_path, case, reason):
    images = fake.project_images()
    folder, _ = corrections(tmp_path, [images[0]["name"], images[1]["name"]])
    key, url = ("rf_Wrong_k3yXyz", fake.url) if case == "bad key" else (KEY, fake.url)
    if case == "server stopped":
        fake.stop()  # its port now refuses connections
    result = run_upload(folder, url, tmp_path, key)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    reason = reason.format(url=url)
    report = report_of(folder)
    assert report["sent"] == [] and report["stopped"] == reason
    assert [(f["file_name"], f["reason"]) for f in report["not_sent"]] == [
        (image["name"], f"not sent: {reason}") for image in images[:2]]
    assert reason in " ".join(result.stderr.split())
    assert fake.annotation_saves == [] and fake.tag_updates == []
    assert_key_never_leaked(fake, result, tmp_path, key)


def test_a_network_failure_midway_leaves_a_complete_report(fake, tmp_path):
    images = fake.project_images()
    folder, _ = corrections(tmp_path, [image["name"] for image in images[:3]])
    fake.disconnect_after_saves = 1
    result = run_upload(folder, fake.url, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    report = report_of(folder)
    assert report["sent"] == [{"file_name": images[0]["name"], "image_id": images[0]["id"]}]
    failure = f"cannot reach Roboflow at {fake.url} (ConnectionError); check the network/API_URL"
    assert report["stopped"] == failure
    assert report["not_sent"] == [
        {"file_name": images[1]["name"], "image_id": images[1]["id"],
         "reason": f"tagged 'clinician-corrected', annotation not saved: {failure}"},
        {"file_name": images[2]["name"], "image_id": None, "reason": f"not sent: {failure}"}]
    assert images[1]["tags"] == ["clinician-corrected"] and images[2]["tags"] == []
    assert_key_never_leaked(fake, result, tmp_path)


def test_bad_input_is_one_line_and_sends_nothing(fake, tmp_path):
    images = fake.project_images()
    folder, _ = corrections(tmp_path, [images[0]["name"]])
    inside = run_upload(folder, fake.url, tmp_path, KEY, "--report", str(folder / "report.json"))
    assert inside.returncode == 2 and "lies inside the source" in inside.stderr
    frame_document_path(folder, images[0]["name"]).unlink()
    broken = run_upload(folder, fake.url, tmp_path)
    assert broken.returncode == 2 and f"{images[0]['name']}.coco.json: missing" in " ".join(broken.stderr.split())
    no_key = run_upload(folder, fake.url, tmp_path, "")
    assert no_key.returncode == 2 and "ROBOFLOW_API_KEY is not set" in no_key.stderr
    assert fake.requests == [] and not folder.with_name("corrections.upload_report.json").exists()


def test_a_case_file_sends_its_edited_frames(fake, tmp_path):
    from app.case import Case, FrameWork, case_frames
    from app.case_file import default_case_path, save_case

    images = fake.project_images()
    study = tmp_path / "study"
    study.mkdir()
    for image in images[:2]:  # the clinician's copies of two project images, under the same names
        cv2.imwrite(str(study / image["name"]), np.zeros(SIZE, np.uint8))
    _, frames = corrections(tmp_path, [images[1]["name"]])
    case = Case(study, case_frames(study), classes=CLASSES)
    names = [ref.path.name for ref in case.frames]
    case.work = {names.index(images[0]["name"]): FrameWork(user_plane="transverse"),  # not edited: not sent
                 names.index(images[1]["name"]): FrameWork(edited=frames[0].masks)}
    case_file = save_case(case, default_case_path(study))
    result = run_upload(case_file, fake.url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [save["image_id"] for save in fake.annotation_saves] == [images[1]["id"]]
    assert fake.annotation_saves[0]["document"] == json.loads(
        frame_document_path(tmp_path / "corrections", images[1]["name"]).read_text())  # as the app would export it
    report = json.loads(case_file.with_name(f"{case_file.name}.upload_report.json").read_text())
    assert report["sent"] == [{"file_name": images[1]["name"], "image_id": images[1]["id"]}]
    assert sorted(p.name for p in study.iterdir()) == sorted([images[0]["name"], images[1]["name"], case_file.name,
                                                              f"{case_file.name}.upload_report.json"])
    unedited = Case(study, case_frames(study), classes=CLASSES)
    unedited.work = {0: FrameWork(user_plane="transverse")}
    save_case(unedited, case_file)
    nothing = run_upload(case_file, fake.url, tmp_path)
    assert nothing.returncode == 2 and f"{case_file}: no frame of this case has edited masks" in \
        " ".join(nothing.stderr.split())


def test_a_corrected_mask_comes_back_through_the_pull_stages_ingest(tmp_path, monkeypatch):
    """Corrections at a realistic frame size -> the fake's project -> its version export -> ingest -> same masks."""
    export = tmp_path / "export"
    write_sample_export(export, seed=3, spec=SampleSpec(n_patients=1, frames_per_patient=2, lesion_fraction=1.0,
                                                        empty_fraction=0.0))
    with FakeRoboflow(KEY, {"coco-segmentation": zip_folder(export)}, WORKSPACE, PROJECT) as fake:
        target, other = fake.project_images()
        width, height = cv2.imread(str(next(export.rglob(target["export_name"])))).shape[1::-1]
        assert (width, height) == (1280, 872)
        gland = gland_with_hole_and_blob(height, width)
        lesion = ellipse(height, width, 0.55 * width, 0.6 * height, 30, 22) & gland
        corrected = np.stack([gland, lesion])
        folder = write_corrections(tmp_path / "corrections", [CorrectedFrame(target["name"], corrected, CLASSES)])
        sent = run_upload(folder, fake.url, tmp_path)
        assert sent.returncode == 0, sent.stderr

        monkeypatch.setenv("API_URL", fake.url)
        monkeypatch.setenv("ROBOFLOW_API_KEY", KEY)
        monkeypatch.setenv("ROBOFLOW_CONFIG_DIR", str(tmp_path / "no-roboflow-config.json"))
        data = DataParams(source="roboflow", roboflow=RoboflowParams(WORKSPACE, PROJECT, 1, timeout_s=60))
        ingest(data, QcParams(), tmp_path / "pulled", tmp_path / "qc.json", progress=False)

    manifest = pd.read_csv(tmp_path / "pulled" / MANIFEST).set_index("original_name")
    assert sorted(manifest.index) == sorted([target["name"], other["name"]])

    def pulled(name: str) -> np.ndarray:
        packed = cv2.imread(str(tmp_path / "pulled" / MASKS / f"{manifest.loc[name, 'frame_id']}.png"),
                            cv2.IMREAD_UNCHANGED)
        return unpack_masks(packed, len(CLASSES))

    back = pulled(target["name"])
    assert back.shape == corrected.shape
    for channel, name in enumerate(CLASSES):
        assert iou(back[channel], corrected[channel]) >= 0.98, name
    np.testing.assert_array_equal(back, corrected)  # in fact exact: the polygons reproduce every pixel
    assert manifest.loc[target["name"], "px_gland"] == gland.sum()
    assert pulled(other["name"])[0].sum() > 10_000  # the frame not corrected keeps its own annotation

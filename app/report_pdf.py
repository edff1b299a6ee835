"""The clinician's PDF report, drawn by Qt's own PDF writer, and the JSON record written beside it.

:func:`render_report_pdf` lays a :class:`~app.report_data.CaseReport` out as a ``QTextDocument``
(the frames as images with their calipers drawn over them) and paints it page by page onto an
A4 ``QPdfWriter``, with a footer (case id, "page i of n") on every page. It uses only
``QImage``, ``QPainter`` and ``QTextDocument``, so it runs in any thread. :func:`write_report`
writes the PDF and ``<stem>.json`` atomically; :class:`ReportWriter` runs it off the GUI thread.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QMarginsF, QObject, QPointF, QRectF, QRunnable, QSizeF, Qt, QThreadPool, QUrl, Signal
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen,
                           QTextDocument)

from app.caliper_items import AUTOMATIC_COLOUR, USER_COLOUR
from app.report_data import CaseReport, ReportCaliper, ReportFrame, report_json
from pipeline.imaging.calibration import SPACING_SOURCES
from pipeline.files.atomic import PARTIAL_SUFFIX, atomic_file

log = logging.getLogger(__name__)

DPI = 300  # the PDF's device resolution: text and caliper lines are crisp in print
MARGIN_MM = 15.0
FOOTER_MM = 8.0  # reserved at the bottom of each page's content area for the footer
IMAGE_WIDTH_MM = 95.0  # a frame's image on the page (its height follows the frame's aspect ratio)
IMAGE_MAX_HEIGHT_MM = 90.0
CSS_DPI = 96  # QTextDocument reads <img width/height> as 96-dpi pixels and scales them to the device
FLAG_COLOUR = "#b00020"
FORMULA = "π/6 × length × width × height"


def _mm_to_px(mm: float, dpi: float = DPI) -> float:
    return mm / 25.4 * dpi


def _number(value: float, decimals: int = 1) -> str:
    return f"{value:.{decimals}f}"


def psa_flag_text(report: CaseReport) -> str:
    """The PSA density's flag as printed: ``≥ 0.15 ng/mL/cc: above threshold``, ``< ...: below`` or ""."""
    if report.psa_flag is None:
        return ""
    threshold = _number(report.psa_threshold, 2)
    return (f"≥ {threshold} ng/mL/cc: above threshold" if report.psa_flag
            else f"< {threshold} ng/mL/cc: below threshold")


def annotated_frame(frame: ReportFrame, width_px: int) -> QImage:
    """The frame's overlay scaled to ``width_px`` wide, its calipers drawn over it (end ticks, name and length)."""
    rgb = np.ascontiguousarray(frame.overlay_rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    source = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()  # own the pixels
    scale = width_px / width
    image = source.scaled(width_px, max(1, round(height * scale)), Qt.AspectRatioMode.IgnoreAspectRatio,
                          Qt.TransformationMode.SmoothTransformation).convertToFormat(QImage.Format.Format_RGB32)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont()
        font.setPixelSize(max(8, round(_mm_to_px(2.6))))
        painter.setFont(font)
        for caliper in frame.calipers:
            _draw_caliper(painter, caliper, scale)
    finally:
        painter.end()
    return image


def _length(caliper: ReportCaliper) -> str:
    return f"{_number(caliper.length_mm)} mm" if caliper.length_mm is not None else f"{caliper.length_px:.0f} px"


def _draw_caliper(painter: QPainter, caliper: ReportCaliper, scale: float) -> None:
    """One caliper: the line, a perpendicular tick at each end and a boxed ``name length`` label."""
    colour = QColor(AUTOMATIC_COLOUR if caliper.automatic else USER_COLOUR)  # as in the app's view
    start = QPointF(caliper.start_xy[0] * scale, caliper.start_xy[1] * scale)
    end = QPointF(caliper.end_xy[0] * scale, caliper.end_xy[1] * scale)
    dx, dy = end.x() - start.x(), end.y() - start.y()
    norm = math.hypot(dx, dy) or 1.0
    tick = QPointF(-dy / norm, dx / norm) * _mm_to_px(1.5)
    painter.setPen(QPen(colour, _mm_to_px(0.35), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    painter.drawLine(start, end)
    for point in (start, end):
        painter.drawLine(point - tick, point + tick)
    label = f"{caliper.name} {_length(caliper)}"
    metrics = QFontMetricsF(painter.font())
    box = metrics.boundingRect(label).adjusted(-4, -2, 4, 2)
    side = tick / _mm_to_px(1.5)  # unit normal: the label sits beside the end tick, clear of the line
    reach = _mm_to_px(1.5) + abs(side.x()) * box.width() / 2 + abs(side.y()) * box.height() / 2 + 4
    box.moveCenter(end + side * reach)
    box.moveLeft(min(max(box.left(), 0.0), painter.device().width() - box.width()))
    box.moveTop(min(max(box.top(), 0.0), painter.device().height() - box.height()))
    painter.fillRect(box, QColor(0, 0, 0, 170))
    painter.setPen(colour)
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)


def _row(label: str, value: str) -> str:
    return f"<tr><td class='k'>{escape(label)}</td><td>{value}</td></tr>"


def _flat_metrics(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``test_metrics`` as (name, value) rows; nested dicts become ``outer / inner``."""
    rows: list[tuple[str, str]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flat_metrics(value, f"{name} / "))
        elif isinstance(value, float):
            rows.append((name, f"{value:.3f}"))
        else:
            rows.append((name, str(value)))
    return rows


def _frame_html(frame: ReportFrame, resource: str, width_css: float, height_css: float) -> str:
    """One frame: its heading, then its image beside its calibration, calipers, areas and review state."""
    plane = frame.plane or "plane not set"
    heading = f"Frame {frame.number}: {escape(plane)}" + (f" ({escape(frame.role)})" if frame.role else "")
    spacing = (f"{frame.spacing_mm[0]:.4f} × {frame.spacing_mm[1]:.4f} mm/px" if frame.spacing_mm is not None
               else "none (lengths in px)")
    rows = [_row("Calibration", escape(SPACING_SOURCES.get(frame.spacing_source, frame.spacing_source))), _row("Spacing", spacing),
            _row("Note", escape(frame.spacing_note) or "–")]
    for caliper in frame.calipers:
        how = "automatic" if caliper.automatic else "placed by the user"
        rows.append(_row(f"Caliper {caliper.name}", f"{_length(caliper)} ({how})"))
    for area in frame.areas:
        size = f"{area.area_mm2:.1f} mm²" if area.area_mm2 is not None else f"{area.area_px} px"
        rows.append(_row(f"Area {area.name}", size))
    rows.append(_row("Masks edited", "yes" if frame.edited else "no"))
    review = (f"<span class='flag'>flagged: {escape(frame.review_reason)}</span>" if frame.review_reason
              else "not flagged")
    rows.append(_row("Review", review))
    return (f"<h3>{heading}</h3><table width='100%' cellspacing='0' cellpadding='0'><tr>"
            f"<td width='{width_css + 8:.0f}'><img src='{resource}' width='{width_css:.0f}' height='{height_css:.0f}'>"
            f"</td><td><table class='d' cellspacing='0' cellpadding='2'>{''.join(rows)}</table></td></tr></table>")


def report_html(report: CaseReport) -> tuple[str, dict[str, QImage]]:
    """The report as Qt rich-text HTML, and the annotated frame images it refers to (by resource name)."""
    images: dict[str, QImage] = {}
    psa = f"{_number(report.psa_ng_per_ml, 2)} ng/mL" if report.psa_ng_per_ml is not None else "not entered"
    density = (f"{_number(report.psa_density, 3)} ng/mL/cc" if report.psa_density is not None
               else "not computed (no PSA)")
    flag = psa_flag_text(report)
    if flag:
        density += (f" &nbsp; <span class='flag'>{escape(flag)}</span>" if report.psa_flag
                    else f" &nbsp; {escape(flag)}")
    volume = (f"<b>{_number(report.volume_ml)} mL</b> &nbsp; ({FORMULA} = π/6 × {_number(report.length_mm)} × "
              f"{_number(report.width_mm)} × {_number(report.height_mm)} mm³)")
    parts = [
        "<h1>Prostate volume report (transrectal ultrasound)</h1>",
        "<table class='m' cellspacing='0'>",
        _row("Case", f"<b>{escape(report.case_id)}</b>"), _row("Date", escape(report.created)),
        _row("Software", escape(report.software_version)), "</table>",
        "<h2>Measurements</h2><table class='m' cellspacing='0'>",
        _row("Width", f"{_number(report.width_mm)} mm"), _row("Height", f"{_number(report.height_mm)} mm"),
        _row("Length", f"{_number(report.length_mm)} mm"), _row("Volume", volume), _row("PSA", psa),
        _row("PSA density", density),
        _row("Edited", "yes: masks or calipers were changed by the user" if report.edited
             else "no: as segmented and measured by the software"), "</table>",
        f"<h2>Frames used ({len(report.frames)})</h2>",
        "<p style='color:#444444'>Cyan calipers: automatic, from the gland mask; yellow: placed or moved by the user (as in the app).</p>",
    ]
    width_px = round(_mm_to_px(IMAGE_WIDTH_MM))
    for index, frame in enumerate(report.frames):
        height, width = frame.overlay_rgb.shape[:2]
        shown_mm = min(IMAGE_WIDTH_MM, IMAGE_MAX_HEIGHT_MM * width / height)  # tall frames: limit the height
        image = annotated_frame(frame, round(width_px * shown_mm / IMAGE_WIDTH_MM))
        resource = f"frame-{index}.png"
        images[resource] = image
        width_css = _mm_to_px(shown_mm, CSS_DPI)
        parts.append(_frame_html(frame, resource, width_css, width_css * height / width))
    model = report.model
    metrics = "".join(_row(name, escape(value)) for name, value in _flat_metrics(model.test_metrics)) or _row("–", "")
    parts += [
        "<h2>Model</h2><table class='m' cellspacing='0'>",
        _row("File", escape(model.file_name)), _row("Architecture", f"{escape(model.arch)} / {escape(model.encoder)}"),
        _row("Code version", escape(model.code_version)), _row("Dataset version", escape(model.dataset_version)),
        _row("Threshold", f"{model.threshold:.2f}"), "</table>",
        "<h3>Test metrics</h3><table border='1' cellspacing='0' cellpadding='3' "
        "style='border-collapse: collapse; border-color: #999999; border-style: solid'>", metrics, "</table>",
        "<h2>Acceptance</h2>", f"<p>{escape(report.statement)}</p>",
        f"<p>Accepted by the user at <b>{escape(report.accepted_at)}</b>.</p>",
    ]
    return "".join(parts), images


def build_document(html: str, images: dict[str, QImage], breaks: frozenset[int] = frozenset()) -> QTextDocument:
    """A ``QTextDocument`` of ``html`` with ``images`` as resources and a page break before the headings in ``breaks``
    (their 0-based positions among the document's headings)."""
    document = QTextDocument()
    document.setDocumentMargin(0)
    font = QFont()
    font.setPointSizeF(9.5)
    font.setFeature(QFont.Tag("liga"), 0)  # no "ﬂ" glyphs: the PDF's text is searched and copied as typed
    document.setDefaultFont(font)
    document.setDefaultStyleSheet(
        "h1 { font-size: 16pt; } h2 { font-size: 12pt; margin-top: 10px; } h3 { font-size: 10.5pt; }"
        "td.k { color: #444444; padding-right: 8px; } .flag { color: " + FLAG_COLOUR + "; font-weight: bold; }"
        "table.m td { padding: 2px 8px 2px 0; }")
    for name, image in images.items():
        document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), image)
    headings = iter(range(1_000_000))
    document.setHtml(_HEADING.sub(lambda match: (f"<h{match[1]} style='page-break-before: always'>"
                                                 if next(headings) in breaks else match[0]), html))
    return document


_HEADING = re.compile(r"<h([1-6])>")


def orphan_heading(document: QTextDocument, page_height: float) -> int | None:
    """The position (among the headings) of the first heading that ends a page, apart from what follows it."""
    layout = document.documentLayout()
    block, position = document.begin(), -1
    while block.isValid():
        if block.blockFormat().headingLevel():
            position += 1
            following = block.next()
            if following.isValid() and int(layout.blockBoundingRect(block).top() // page_height) != int(
                    (layout.blockBoundingRect(following).top() + 1) // page_height):
                return position
        block = block.next()
    return None


def render_report_pdf(report: CaseReport, path: Path) -> int:
    """Draws ``report`` as an A4 PDF at ``path`` and returns its page count (any thread; no widgets)."""
    writer = QPdfWriter(str(path))
    writer.setResolution(DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM),
                                     QPageLayout.Unit.Millimeter))
    writer.setTitle(f"Prostate volume report {report.case_id}")
    writer.setCreator(f"trus-seg {report.software_version}")
    paint_rect = writer.pageLayout().paintRectPixels(DPI)
    footer_px = _mm_to_px(FOOTER_MM)
    body = QSizeF(paint_rect.width(), paint_rect.height() - footer_px)
    html, images = report_html(report)
    breaks: frozenset[int] = frozenset()
    while True:  # keep each heading with its text: a fresh layout with a page break before any that ends a page
        document = build_document(html, images, breaks)
        document.documentLayout().setPaintDevice(writer)
        document.setPageSize(body)
        orphan = orphan_heading(document, body.height())
        if orphan is None or orphan in breaks:
            break
        breaks |= {orphan}
    pages = document.pageCount()
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(errno.EIO, "cannot open the PDF for writing", str(path))
    try:
        footer_font = QFont()
        footer_font.setPointSizeF(8)
        for page in range(pages):
            if page:
                writer.newPage()
            painter.save()
            painter.translate(0, -page * body.height())
            document.drawContents(painter, QRectF(0, page * body.height(), body.width(), body.height()))
            painter.restore()
            painter.setFont(footer_font)
            painter.setPen(QColor("#555555"))
            footer = QRectF(0, paint_rect.height() - footer_px * 0.6, body.width(), footer_px * 0.6)
            painter.drawLine(footer.topLeft(), footer.topRight())
            painter.drawText(footer, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                             f"Case {report.case_id}")
            painter.drawText(footer, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom,
                             f"page {page + 1} of {pages}")
    finally:
        painter.end()
    return pages


def write_report(report: CaseReport, pdf_path: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Writes the PDF and ``<stem>.json`` beside it, both atomically; returns (pdf, json) paths.

    Raises:
        FileExistsError: without ``overwrite``, when either file exists (both are left untouched).
        FileNotFoundError: the folder does not exist (it is not created: a missing drive is an error).
    Nothing is left behind on a failure: the temporary files are removed and the targets keep their content.
    """
    pdf_path = Path(pdf_path)
    json_path = pdf_path.with_suffix(".json")
    if json_path == pdf_path:
        raise ValueError(f"a report's PDF cannot be named .json: {pdf_path}")
    if not pdf_path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the folder does not exist", str(pdf_path.parent))
    if not overwrite:
        for target in (pdf_path, json_path):
            if target.exists():
                raise FileExistsError(errno.EEXIST, "the file already exists", str(target))
    text = json.dumps(report_json(report), indent=2) + "\n"  # fails fast on data that is not JSON
    with atomic_file(pdf_path) as pdf_partial, atomic_file(json_path) as json_partial:
        render_report_pdf(report, pdf_partial)
        json_partial.write_text(text, encoding="utf-8")
    return pdf_path, json_path


def failure_message(pdf_path: Path, error: BaseException) -> str:
    """A one-line message naming the report's file and why it was not written."""
    if isinstance(error, OSError) and error.strerror:
        name = str(error.filename or "")
        if name.endswith(PARTIAL_SUFFIX):  # name the target, not its temporary file
            name = str(Path(name).with_name(Path(name).name[1:-len(PARTIAL_SUFFIX)]))
        reason = f"{error.strerror}: {name}" if name else error.strerror
    else:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"Report {pdf_path} not written: {reason}"


class _JobSignals(QObject):
    """Carries a job's outcome from the pool thread to the GUI thread (queued)."""

    done = Signal(object, object)
    error = Signal(str)


class _WriteJob(QRunnable):
    """One :func:`write_report` call."""

    def __init__(self, report: CaseReport, pdf_path: Path, overwrite: bool, signals: _JobSignals) -> None:
        super().__init__()
        self._report, self._pdf_path, self._overwrite, self._signals = report, Path(pdf_path), overwrite, signals

    def run(self) -> None:
        """Writes the report and emits the paths or a one-line error."""
        try:
            paths = write_report(self._report, self._pdf_path, self._overwrite)
        except Exception as error:  # any failure must reach the GUI, not die silently in the pool
            log.exception("writing the report %s failed", self._pdf_path)
            self._signals.error.emit(failure_message(self._pdf_path, error))
        else:
            self._signals.done.emit(*paths)


class ReportWriter(QObject):
    """Writes reports on a background thread (one at a time, in order).

    Signals:
        finished(object, object): the PDF's and the JSON's paths.
        failed(str): a one-line message naming the file.
    """

    finished = Signal(object, object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _JobSignals(self)  # lives in this (the GUI) thread: its signals reach ours queued
        self._signals.done.connect(self.finished)
        self._signals.error.connect(self.failed)

    def submit(self, report: CaseReport, pdf_path: Path, overwrite: bool = False) -> None:
        """Queues writing ``report`` to ``pdf_path`` (and its JSON beside it)."""
        self._pool.start(_WriteJob(report, Path(pdf_path), overwrite, self._signals))

    def shutdown(self) -> None:
        """Waits for the reports being written to be complete (call before exit; a report is never dropped)."""
        self._pool.waitForDone()

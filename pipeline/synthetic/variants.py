"""Scanner variants of the synthetic phantom, as a real fleet has them.

A :class:`Variant` says how one scanner model draws its frames: frame size, probe at
the top or the bottom, field of view (up to 180 deg), overlays (grey or colour text,
calipers and logos, also inside the fan) and lossy capture (JPEG noise). ``default``
is the original generator's scanner and renders byte-identical frames; ``fleet``
gives every patient one of the other variants, drawn from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synthetic.sector import FanGeometry

FLEET = "fleet"


@dataclass(frozen=True)
class Variant:
    """How one (synthetic) scanner model draws its frames.

    Attributes:
        name: the registry key (``trus sample --variant NAME``).
        description: one line for help texts and the export's README.
        probe: ``top`` (the fan opens downwards, the original generator's) or ``bottom``
            (it opens upwards).
        fov_deg: (lowest, highest) field of view, the full opening angle in degrees, drawn
            per patient; 0 < lowest <= highest <= 180.
        size: (width, height) px of the scanner's frames; None keeps the export's size.
        colour: overlays in colour in the 3-channel frame: yellow, cyan and green text,
            coloured depth scale, calipers and an orientation marker.
        logo: a solid manufacturer logo in a margin and a translucent one inside the fan.
        calipers: two caliper crosses across the gland joined by a dotted line, inside
            the fan, with the measurement burned into the text block.
        jpeg_quality: (lowest, highest) quality 1-100 of an extra lossy JPEG pass after
            video-capture noise (black level offset and Gaussian noise), or None.
    """

    name: str
    description: str
    probe: str = "top"
    fov_deg: tuple[float, float] = (92.0, 112.0)
    size: tuple[int, int] | None = None
    colour: bool = False
    logo: bool = False
    calipers: bool = False
    jpeg_quality: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        lo, hi = self.fov_deg
        if self.probe not in ("top", "bottom") or not 0 < lo <= hi <= 180:
            raise ValueError(f"bad variant {self.name!r}: probe top|bottom and 0 < fov_deg <= 180")
        if self.size is not None and (self.size[0] < 256 or self.size[1] < 192):
            raise ValueError(f"bad variant {self.name!r}: frames must be at least 256x192 px")


DEFAULT = Variant("default", "the original scanner: probe at the top, 92-112 deg fan, grey overlays")
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    DEFAULT,
    Variant("probe_bottom", "probe at the bottom: the fan opens upwards", probe="bottom"),
    Variant("wide", "probe at the top, 150-180 deg fan", fov_deg=(150.0, 180.0)),
    Variant("wide_bottom", "probe at the bottom, 150-180 deg fan", probe="bottom", fov_deg=(150.0, 180.0)),
    Variant("logo_calipers", "a logo in the margin and one inside the fan, calipers across the gland",
            logo=True, calipers=True),
    Variant("colour", "colour text, depth scale, calipers and orientation marker", colour=True, calipers=True),
    Variant("jpeg", "video capture noise and heavy JPEG compression (quality 12-30)", jpeg_quality=(12, 30)),
    Variant("size_800x600", "800x600 frames", size=(800, 600)),
    Variant("size_1024x768", "1024x768 frames", size=(1024, 768)),
    Variant("worst_case", "1024x768, probe at the bottom, 160-180 deg fan, colour, logos, calipers, JPEG noise",
            probe="bottom", fov_deg=(160.0, 180.0), size=(1024, 768), colour=True, logo=True, calipers=True,
            jpeg_quality=(15, 30)),
)}
VARIANT_NAMES: tuple[str, ...] = (*VARIANTS, FLEET)


def patient_variant(name: str, seed: int, patient: int) -> Variant:
    """The variant that renders one patient's frames.

    Args:
        name: a key of ``VARIANTS``, or ``fleet`` (each patient scanned on one of the
            variants, drawn uniformly from the seed and the patient number).
        seed: the export seed, >= 0.
        patient: patient number, from 1.

    Raises:
        ValueError: an unknown variant name.
    """
    if name == FLEET:
        names = sorted(VARIANTS)
        return VARIANTS[names[int(np.random.default_rng([seed, 4, patient]).integers(0, len(names)))]]
    if name not in VARIANTS:
        raise ValueError(f"unknown sample variant {name!r}; expected one of {', '.join(VARIANT_NAMES)}")
    return VARIANTS[name]


def draw_fan(rng: np.random.Generator, width: int, height: int, variant: Variant = DEFAULT) -> FanGeometry:
    """Draws one patient's sector: opening angle and depth setting (two draws from ``rng``).

    The apex sits 2 % of the height inside the probe's edge, centred; the far arc keeps
    7 % of the height and 8 % of the width (each side) clear for text and the depth scale.

    Args:
        rng: random source.
        width, height: frame size, px.
        variant: the scanner's probe side and field of view.
    """
    lo, hi = variant.fov_deg
    half = rng.uniform(np.radians(lo / 2), np.radians(hi / 2))
    if variant.probe == "top":
        apex_y, direction = 0.02 * height, 1
        r_outer = min(0.93 * height - apex_y, 0.42 * width / np.sin(half))
    else:
        apex_y, direction = 0.98 * height, -1
        r_outer = min(apex_y - 0.07 * height, 0.42 * width / np.sin(half))
    return FanGeometry(width / 2.0, apex_y, 0.065 * height, float(r_outer), half,
                       float(rng.choice([5.5, 6.0, 6.5, 7.0])), direction)


def capture_noise(rng: np.random.Generator, image: np.ndarray, quality: tuple[int, int]) -> np.ndarray:
    """A frame as a video grabber and a lossy encoder leave it.

    Adds a black level offset (0-6 grey levels) and Gaussian noise (sigma 1.5), then
    JPEG-encodes at a quality drawn from ``quality`` (4:2:0 chroma) and decodes.

    Args:
        rng: random source.
        image: (H, W, 3) uint8 BGR frame.
        quality: (lowest, highest) JPEG quality, 1-100.

    Returns:
        (H, W, 3) uint8 BGR.
    """
    noisy = image.astype(np.float32) + float(rng.integers(0, 7)) \
        + rng.normal(0.0, 1.5, image.shape[:2]).astype(np.float32)[..., None]
    q = int(rng.integers(quality[0], quality[1] + 1))
    ok, data = cv2.imencode(".jpg", np.clip(np.rint(noisy), 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)

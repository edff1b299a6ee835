"""Training data: processed frames and bitmasks in memory, augmented, as torch tensors.

Images are the preprocess stage's (S, S) uint8 frames; masks are (S, S) uint8 bitmasks
(bit c = class c, see ``pipeline.imaging.masks``); each frame has a plane label (0 transverse,
1 sagittal, -1 unknown: :func:`pipeline.training.plane_head.plane_labels`). The augmentation
itself is :mod:`pipeline.training.augment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.config import AugmentParams
from pipeline.imaging.frames import read_frame
from pipeline.imaging.preprocessing import network_input
from pipeline.imaging.masks import read_bitmask, unpack_masks
from pipeline.layout import IMAGES, MASKS
from pipeline.training.augment import augment
from pipeline.training.patches import PatchParams, patch_origin
from pipeline.training.plane_head import UNKNOWN_LABEL


def _square(pixels: np.ndarray, path: Path, size: int) -> np.ndarray:
    """``pixels`` if it is (size, size), else a ValueError naming ``path``."""
    if pixels.shape != (size, size):
        raise ValueError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]} px, expected {size}x{size} "
                         "(preprocess.size); re-run the preprocess stage")
    return pixels


def load_frames(processed_dir: Path, frame_ids: Sequence[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Reads processed frames and their bitmasks into memory.

    Args:
        processed_dir: the preprocess stage's output folder.
        frame_ids: frames to read, in order.
        size: S, the expected side (``preprocess.size``).

    Returns:
        images (N, S, S) uint8 grey and masks (N, S, S) uint8 bitmasks.

    Raises:
        FrameReadError, FileNotFoundError: a file is missing or unreadable.
        ValueError: a file is not S x S (processed with another ``preprocess.size``).
    """
    images = np.empty((len(frame_ids), size, size), np.uint8)
    masks = np.empty_like(images)
    for index, frame_id in enumerate(frame_ids):
        image_path, mask_path = processed_dir / IMAGES / f"{frame_id}.png", processed_dir / MASKS / f"{frame_id}.png"
        images[index] = _square(read_frame(image_path).gray, image_path, size)
        masks[index] = _square(read_bitmask(mask_path), mask_path, size)
    return images, masks


class FrameDataset(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """In-memory frames as ``(image, target, plane)`` tensors, optionally augmented.

    Augmentation of item i in epoch e is drawn from ``default_rng((seed, e, i))``, so it is
    reproducible for ``train.seed`` whatever the batch order or DataLoader workers.
    Set :attr:`epoch` before each epoch to get new augmentations. With a ``patch`` window
    (training only), each item is a window of its augmented frame
    (:mod:`pipeline.training.patches`), drawn from the same generator after the augmentation;
    the window keeps its frame's plane label. With :attr:`plane_frames` also true (a plane head
    trained on windows), each item also carries its whole augmented frame, which the plane head
    judges instead of the window (:class:`~pipeline.training.plane_head.WholeFramePlane`).
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, n_classes: int, mean: float, std: float,
                 augmentation: AugmentParams | None = None, seed: int = 0, patch: PatchParams | None = None,
                 planes: np.ndarray | None = None) -> None:
        """Wraps frames already in memory.

        Args:
            images: (N, S, S) uint8 processed frames.
            masks: (N, S, S) uint8 bitmasks.
            n_classes: C, channels unpacked from the bitmask.
            mean, std: input normalisation (``model.mean``/``model.std``).
            augmentation: ranges for training, or None (validation: frames as they are).
            seed: augmentation seed (``train.seed``).
            patch: the training window (``train.patch``), or None / ``size: null`` for whole frames.
            planes: (N,) int64 plane labels (0 transverse, 1 sagittal, -1 unknown), or None
                (all unknown).

        Raises:
            ValueError: shapes differ, or the window is larger than the frames.
        """
        if images.shape != masks.shape or images.ndim != 3:
            raise ValueError(f"images {images.shape} and masks {masks.shape} must both be (N, S, S)")
        planes = np.full(len(images), UNKNOWN_LABEL, np.int64) if planes is None else np.asarray(planes, np.int64)
        if planes.shape != (len(images),):
            raise ValueError(f"planes {planes.shape} must be ({len(images)},), one label per frame")
        self.images, self.masks, self.planes = images, masks, planes
        self.n_classes, self.mean, self.std = n_classes, mean, std
        self.augmentation, self.seed = augmentation, seed
        self.patch_size = patch.size if patch is not None else None
        self.patch_foreground = patch.foreground if patch is not None else 0.0
        if self.patch_size is not None and self.patch_size > images.shape[-1]:
            raise ValueError(f"train.patch.size {self.patch_size} px is larger than the frames "
                             f"(preprocess.size {images.shape[-1]} px); use null for whole frames")
        self.epoch = 0
        self.plane_frames = False  # the training loop sets it for a plane head trained on windows

    @property
    def size(self) -> int:
        """S, the side of the square frames."""
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        """Item ``index``: (1, P, P) float32 normalised image, (C, P, P) float32 0/1 target and
        the frame's () int64 plane label (batched: (N,)); with a window and :attr:`plane_frames`,
        also the (1, S, S) float32 normalised whole augmented frame the window was cut from.

        P is the patch size when there is one, else S.
        """
        image, mask = self.images[index], self.masks[index]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.augmentation is not None:
            image, mask = augment(image, mask, rng, self.augmentation)
        frame = image
        if self.patch_size is not None:
            top, left = patch_origin(mask, self.patch_size, self.patch_foreground, rng)
            window = np.s_[top:top + self.patch_size, left:left + self.patch_size]
            image, mask = image[window], mask[window]
        tensor = torch.from_numpy(network_input(image, self.mean, self.std)[0])
        target = torch.from_numpy(unpack_masks(mask, self.n_classes).astype(np.float32))
        plane = torch.tensor(self.planes[index], dtype=torch.int64)
        if self.plane_frames and self.patch_size is not None:
            return tensor, target, plane, torch.from_numpy(network_input(frame, self.mean, self.std)[0])
        return tensor, target, plane

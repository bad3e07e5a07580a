"""Evaluation metrics over batches (B, 3, H, W) in [0, 1]; no gradients.

`lineart` is the chamfer line distance of animation interpolation research (Chen & Zwicker, EISAI):
line art is extracted from both images by a difference of Gaussians, and each image's line pixels
are scored by their distance to the other's nearest line pixel. Ghosted or doubled outlines, which
PSNR barely sees, raise it. It is in pixels and lower is better.
"""

from __future__ import annotations

import functools
import importlib.util
import math

import cv2
import numpy as np
import pytorch_msssim
import torch
from torchvision.transforms.functional import gaussian_blur


# pytorch_msssim's MS-SSIM downsamples 4 times with an 11-pixel window: the smaller side must
# exceed (11 - 1) * 2**4 = 160 pixels, otherwise it is undefined and reported as None.
MS_SSIM_MIN_SIDE = 161
# Difference of Gaussians for line art: sigma and the ratio of the wider Gaussian (as in XDoG),
# and how much darker than its surroundings a pixel must be to count as a stroke: 0.05 keeps a
# black one-pixel line one pixel wide and ignores colour boundaries of contrast under about 0.5.
DOG_SIGMA = 1.0
DOG_RATIO = 1.6
LINE_THRESHOLD = 0.05
LUMA = (0.299, 0.587, 0.114)
# lpips wraps torchvision's AlexNet features in five slices: feature layer index -> slice.
LPIPS_SLICES = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


@torch.no_grad()
def psnr(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB for a peak of 1; inf where the images are identical."""
    mse = (pred.float() - truth.float()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1 / mse)


@torch.no_grad()
def ssim(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B,) SSIM with an 11-pixel Gaussian window; needs H, W >= 11."""
    return pytorch_msssim.ssim(pred.float(), truth.float(), data_range=1.0, size_average=False)


@torch.no_grad()
def ms_ssim(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor | None:
    """(B,) MS-SSIM, or None when the smaller side is under MS_SSIM_MIN_SIDE pixels."""
    if min(pred.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return None
    return pytorch_msssim.ms_ssim(pred.float(), truth.float(), data_range=1.0, size_average=False)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W)."""
    weights = image.new_tensor(LUMA).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    size = 2 * math.ceil(3 * sigma) + 1  # odd kernel covering +-3 sigma
    return gaussian_blur(x, [size, size], [sigma, sigma])


def difference_of_gaussians(image: torch.Tensor, sigma: float = DOG_SIGMA) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W); negative where a pixel is darker than its surroundings."""
    gray = luminance(image)
    return _blur(gray, sigma) - _blur(gray, sigma * DOG_RATIO)


def line_art(image: torch.Tensor, threshold: float = LINE_THRESHOLD) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) bool: dark strokes (ink lines) of a drawing."""
    return difference_of_gaussians(image) < -threshold


def _distance_to(lines: np.ndarray) -> np.ndarray:
    """Euclidean distance from every pixel to the nearest True pixel of `lines` (H, W)."""
    # distanceTransform measures the distance to the nearest zero: lines must be the zeros.
    return cv2.distanceTransform((~lines).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _chamfer(a: np.ndarray, b: np.ndarray) -> float:
    if not a.any() and not b.any():
        return 0.0
    if not a.any() or not b.any():
        # Lines on one side only: no nearest line exists, so count it as the worst case.
        return math.hypot(*a.shape)
    return 0.5 * (_distance_to(b)[a].mean() + _distance_to(a)[b].mean())


@torch.no_grad()
def chamfer_line_distance(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B,) symmetric chamfer distance between line art, in pixels (lower is better).

    Each direction averages, over one image's line pixels, the distance to the other's nearest
    line pixel; the two directions are averaged. Images where only one side has lines score the
    image diagonal; images with no lines on either side score 0.
    """
    pred_lines = line_art(pred.float())[:, 0].cpu().numpy()
    truth_lines = line_art(truth.float())[:, 0].cpu().numpy()
    return torch.tensor([_chamfer(a, b) for a, b in zip(pred_lines, truth_lines)], dtype=torch.float32)


def lpips_unavailable() -> str | None:
    """Why LPIPS cannot be scored here, as the fix to make; None when it can. It needs the lpips
    package (its linear layers ship inside it) and AlexNet's torchvision file, read from AFI's
    weights folder or torch hub's cache: AFI downloads nothing."""
    from afi.weights import ALEXNET_FILE, find_cached

    if importlib.util.find_spec("lpips") is None:
        return "lpips is not scored: it needs the lpips package (pip install 'afi[lpips]')"
    if find_cached(ALEXNET_FILE) is None:
        return (f"lpips is not scored: it needs AlexNet's weights, {ALEXNET_FILE} from torchvision "
                f"(afi weights import FILE --name alexnet)")
    return None


def lpips_available() -> bool:
    return lpips_unavailable() is None


@functools.cache
def _lpips_model() -> torch.nn.Module:
    import lpips  # optional dependency, checked by lpips_unavailable()

    from afi.weights import ALEXNET_FILE, find_cached

    # pnet_rand: lpips would otherwise ask torchvision for AlexNet, which downloads it if missing.
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    state = torch.load(find_cached(ALEXNET_FILE), map_location="cpu", weights_only=True)
    slices = {
        f"slice{LPIPS_SLICES[int(key.split('.')[1])]}.{key.removeprefix('features.')}": value
        for key, value in state.items() if key.startswith("features.")
    }
    model.net.load_state_dict(slices)
    return model.eval()


@torch.no_grad()
def lpips_distance(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor | None:
    """(B,) LPIPS (AlexNet), or None when the lpips package or its cached backbone is missing."""
    if not lpips_available():
        return None
    model = _lpips_model().to(pred.device)
    # LPIPS expects images in [-1, 1]
    return model(pred.float() * 2 - 1, truth.float() * 2 - 1).flatten()


@torch.no_grad()
def evaluate_batch(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Batch means of psnr, ssim, lineart, and ms_ssim / lpips where they are defined.

    Averages are per batch: weight them by batch size when combining batches.
    """
    values = {
        "psnr": psnr(pred, truth),
        "ssim": ssim(pred, truth),
        "lineart": chamfer_line_distance(pred, truth),
    }
    optional = {"ms_ssim": ms_ssim(pred, truth), "lpips": lpips_distance(pred, truth)}
    values.update({name: value for name, value in optional.items() if value is not None})
    return {name: float(value.float().mean()) for name, value in values.items()}

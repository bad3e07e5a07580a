"""Pretrained weights from the local cache only, and frozen feature extractors for perceptual losses.

Nothing is ever downloaded: VGG16 must be in AFI's weights folder (`afi weights import FILE`) or in
torch hub's checkpoint folder. A perceptual feature space can also come from an AFI autoencoder run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from afi.config import VariantConfig
from afi.errors import AfiError, UsageError
from afi.models.autoencoders import Encoder, build_autoencoder
from afi.paths import weights_dir

# torchvision names its files <arch>-<first 8 hex digits of the file's sha256>.pth
VGG16_FILE = "vgg16-397923af.pth"
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # LPIPS's backbone
# Last layer index of relu1_2, relu2_2, relu3_3, relu4_3 in torchvision's vgg16().features
VGG16_FEATURE_LAYERS = (3, 8, 15, 22)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImportedWeights:
    name: str
    path: Path
    sha256: str
    official: bool  # the sha256 matches the official torchvision file


def weight_search_dirs() -> list[Path]:
    return [weights_dir(), Path(torch.hub.get_dir()) / "checkpoints"]


def find_cached(file_name: str) -> Path | None:
    """The first cached copy of a weight file, AFI's folder before torch hub's."""
    for folder in weight_search_dirs():
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class KnownWeights:
    """A torchvision file AFI reads from disk: its name, and the model whose features it holds."""

    file: str
    build: Any  # torchvision.models.<arch>

    @property
    def sha256_prefix(self) -> str:
        return self.file.rsplit("-", 1)[1].removesuffix(".pth")

    def feature_shapes(self) -> dict[str, torch.Size]:
        with torch.device("meta"):  # shapes only: no initialisation of millions of parameters
            model = self.build()
        return {f"features.{k}": v.shape for k, v in model.features.state_dict().items()}


# vgg16: the perceptual and style losses; alexnet: LPIPS's backbone.
KNOWN = {
    "vgg16": KnownWeights(VGG16_FILE, torchvision.models.vgg16),
    "alexnet": KnownWeights(ALEXNET_FILE, torchvision.models.alexnet),
}


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same here
        raise UsageError(
            f"{path} is not a PyTorch state dict ({exc.__class__.__name__}): pass torchvision's vgg16 file"
        ) from None
    if not isinstance(state, dict):
        kind = type(state).__name__
        raise UsageError(f"{path} holds a {kind}, not a state dict: pass torchvision's vgg16 file")
    return state


def check_feature_state(state: dict[str, torch.Tensor], source: Path, name: str = "vgg16") -> None:
    """Raise UsageError unless `state` has every feature tensor of `name` with the right shape."""
    for key, shape in KNOWN[name].feature_shapes().items():
        if key not in state:
            raise UsageError(f"{source} lacks {key}: it is not a torchvision {name} state dict")
        if not isinstance(state[key], torch.Tensor) or state[key].shape != shape:
            raise UsageError(
                f"{source}: {key} should have shape {tuple(shape)}, it is not a torchvision {name} state dict"
            )


def import_weights(file: Path, name: str = "vgg16") -> ImportedWeights:
    """Check `file` and copy it into AFI's weights folder, with its sha256 written beside it.

    A file named like the official torchvision file must have the official hash (a truncated or
    corrupted download is the usual cause otherwise); a differently named file is accepted as the
    user's own weights, and its sha256 is returned so it can be recorded.
    """
    if name not in KNOWN:
        raise UsageError(f"unknown weights {name!r}: AFI imports {', '.join(KNOWN)}")
    known = KNOWN[name]
    file = Path(file).expanduser()
    if not file.is_file():
        raise UsageError(f"weights file {file} does not exist: pass the path of {known.file}")
    check_feature_state(_load_state_dict(file), file, name)
    sha256 = sha256_of(file)
    official = sha256.startswith(known.sha256_prefix)
    if file.name == known.file and not official:
        raise UsageError(
            f"{file} is named like torchvision's file but its sha256 {sha256} does not start with "
            f"{known.sha256_prefix}: download it again, or rename it to import it as your own weights"
        )
    target = weights_dir() / known.file
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_copy(file, target)
    _atomic_write_text(target.with_name(target.name + ".sha256"), f"{sha256}  {known.file}\n")
    return ImportedWeights(name=name, path=target, sha256=sha256, official=official)


def _atomic_copy(source: Path, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_text(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, target)


class VGG16Features(nn.Module):
    """Frozen VGG16 activations relu1_2, relu2_2, relu3_3, relu4_3 of an image in [0, 1]."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        bounds = (0, *(i + 1 for i in VGG16_FEATURE_LAYERS))
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(bounds, bounds[1:]))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean) / self.std
        found = []
        for piece in self.slices:
            h = piece(h)
            found.append(h)
        return found


def load_vgg16_features() -> VGG16Features:
    """VGG16 features from the local cache; AfiError saying how to import the file when absent."""
    path = find_cached(VGG16_FILE)
    if path is None:
        folders = " or ".join(str(d) for d in weight_search_dirs())
        raise AfiError(
            f"VGG16 weights {VGG16_FILE} not found in {folders}: run `afi weights import PATH` with "
            "torchvision's vgg16 file, or choose perceptual_source run:<id> or disc"
        )
    state = _load_state_dict(path)
    check_feature_state(state, path)
    with torch.device("meta"):
        features = torchvision.models.vgg16().features[: VGG16_FEATURE_LAYERS[-1] + 1]
    wanted = features.state_dict().keys()
    features.load_state_dict({k: state[f"features.{k}"] for k in wanted}, assign=True)
    return VGG16Features(features)


class FrozenEncoder(nn.Module):
    """An autoencoder's encoder as a fixed feature extractor: one activation per level."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder.features(x)


def load_autoencoder_features(checkpoint: Path) -> FrozenEncoder:
    """The frozen encoder of an AFI autoencoder run's checkpoint.

    The checkpoint is a torch.save'd dict with at least "variant" (VariantConfig.to_dict() of a
    vae or vqvae variant) and "model" (the autoencoder's state_dict()); other keys are ignored.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise UsageError(f"autoencoder checkpoint {checkpoint} does not exist: pick a run that has one")
    state = _load_state_dict(checkpoint)
    if not {"variant", "model"} <= state.keys():
        raise UsageError(f"{checkpoint} is not an AFI checkpoint (needs 'variant' and 'model' keys)")
    variant = VariantConfig.from_dict(state["variant"])
    if variant.kind != "autoencoder":
        raise UsageError(
            f"{checkpoint} holds a {variant.arch} model: a perceptual source run must be a vae or vqvae run"
        )
    model = build_autoencoder(variant)
    model.load_state_dict(state["model"])
    return FrozenEncoder(model.encoder)


def load_feature_extractor(variant: VariantConfig, run_checkpoint: Path | None = None) -> nn.Module | None:
    """The frozen feature extractor the variant's perceptual/style losses need, else None.

    "vgg16" loads the cached VGG16; "run:<id>" needs `run_checkpoint`, the path the caller resolved
    from the run id; "disc" returns None because the live discriminator provides the features.
    """
    if not any(variant.losses.get(term, 0) > 0 for term in ("perceptual", "style")):
        return None
    source = variant.perceptual_source
    if source == "vgg16":
        return load_vgg16_features()
    if source == "disc":
        return None
    if run_checkpoint is None:
        raise UsageError(
            f"perceptual source {source} needs that run's checkpoint: train the autoencoder run first"
        )
    return load_autoencoder_features(run_checkpoint)


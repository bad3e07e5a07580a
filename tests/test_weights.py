"""Weights come from the local cache only: import, check, load, and frozen AFI encoders."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision

from afi.config import VariantConfig
from afi.errors import AfiError, UsageError
from afi.losses import GeneratorLoss
from afi.models import build_autoencoder, build_interpolator
from afi.weights import (
    VGG16_FILE,
    VGG16Features,
    FrozenEncoder,
    import_weights,
    load_autoencoder_features,
    load_feature_extractor,
    load_vgg16_features,
    sha256_of,
)


@pytest.fixture
def caches(afi_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Empty AFI and torch hub caches; yields AFI's weights folder, emptied afterwards."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    yield afi_home / "weights"
    shutil.rmtree(afi_home / "weights", ignore_errors=True)  # 0.5 GB: do not leave it in /tmp


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A user's own VGG16: torchvision's architecture, random weights, saved like the real file."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("user") / "my_vgg16.pth"
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), path)
    yield path
    path.unlink()


def test_missing_vgg16_says_how_to_import(caches: Path):
    with pytest.raises(AfiError, match=r"afi weights import PATH"):
        load_vgg16_features()


def test_import_then_load_vgg16_and_use_it_for_perceptual_loss(caches: Path, vgg16_file: Path):
    imported = import_weights(vgg16_file)
    assert imported.path == caches / VGG16_FILE
    assert imported.sha256 == sha256_of(vgg16_file) and not imported.official
    assert (caches / f"{VGG16_FILE}.sha256").read_text().split() == [imported.sha256, VGG16_FILE]
    assert sorted(p.name for p in caches.iterdir()) == [VGG16_FILE, f"{VGG16_FILE}.sha256"]

    features = load_vgg16_features()
    assert isinstance(features, VGG16Features) and not any(p.requires_grad for p in features.parameters())
    state = torch.load(vgg16_file, weights_only=True)
    torch.testing.assert_close(features.slices[0][0].weight, state["features.0.weight"], rtol=0, atol=0)
    torch.testing.assert_close(features.slices[3][-2].bias, state["features.21.bias"], rtol=0, atol=0)
    shapes = [tuple(f.shape) for f in features(torch.rand(1, 3, 32, 32))]
    assert shapes == [(1, 64, 32, 32), (1, 128, 16, 16), (1, 256, 8, 8), (1, 512, 4, 4)]

    variant = dataclasses.replace(VariantConfig(), width=4, depth=2, losses={"perceptual": 1.0, "style": 1.0})
    extractor = load_feature_extractor(variant)
    frame0, frame1 = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    out = build_interpolator(variant)(frame0, frame1, 0.5)
    total, stats = GeneratorLoss(variant, extractor)(out, frame1, frame0, frame1)
    total.backward()
    assert stats["loss/G/perceptual"] > 0 and stats["loss/G/style"] > 0


def test_torch_hub_cache_is_searched_too(caches: Path, vgg16_file: Path, tmp_path: Path):
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / VGG16_FILE).symlink_to(vgg16_file)
    assert isinstance(load_vgg16_features(), VGG16Features)


def test_file_named_like_the_official_one_must_have_its_hash(caches: Path, vgg16_file: Path, tmp_path: Path):
    impostor = tmp_path / VGG16_FILE
    impostor.symlink_to(vgg16_file)
    with pytest.raises(UsageError, match="download it again, or rename it"):
        import_weights(impostor)
    assert not caches.exists() or not any(caches.iterdir())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a pickle", "not a PyTorch state dict"),
        ([1, 2, 3], "not a state dict"),
        ({"features.0.weight": torch.zeros(64, 3, 3, 3)}, "lacks features.0.bias"),
        ("vgg11", "lacks features"),
    ],
)
def test_import_refuses_files_that_are_not_vgg16(caches: Path, tmp_path: Path, content, message: str):
    path = tmp_path / "weights.pth"
    if content == "vgg11":
        with torch.device("meta"):
            shapes = torchvision.models.vgg11().state_dict()
        torch.save({k: torch.zeros(v.shape) for k, v in shapes.items() if k.startswith("features")}, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(UsageError, match=message):
        import_weights(path)
    assert not caches.exists() or not any(caches.iterdir())


def test_import_refuses_wrong_shapes_and_unknown_names(caches: Path, tmp_path: Path):
    with torch.device("meta"):
        state = torchvision.models.vgg16().features.state_dict()
    state = {f"features.{k}": torch.zeros(v.shape) for k, v in state.items()}
    state["features.28.weight"] = torch.zeros(512, 512, 1, 1)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(UsageError, match=r"features.28.weight should have shape \(512, 512, 3, 3\)"):
        import_weights(path)
    with pytest.raises(UsageError, match="does not exist"):
        import_weights(tmp_path / "absent.pth")
    with pytest.raises(UsageError, match="AFI imports vgg16, alexnet"):
        import_weights(path, name="resnet50")
    with pytest.raises(UsageError, match="not a torchvision alexnet state dict"):
        import_weights(path, name="alexnet")  # VGG16's tensors are not AlexNet's


def autoencoder_checkpoint(tmp_path: Path, arch: str = "vqvae") -> tuple[Path, torch.nn.Module]:
    variant = dataclasses.replace(VariantConfig(arch=arch, losses={"l1": 1.0}), width=4, depth=2).validate()
    model = build_autoencoder(variant)
    path = tmp_path / "ckpt.pt"
    torch.save({"variant": variant.to_dict(), "model": model.state_dict(), "step": 10}, path)
    return path, model


def test_autoencoder_run_as_frozen_feature_extractor(tmp_path: Path):
    path, model = autoencoder_checkpoint(tmp_path)
    encoder = load_autoencoder_features(path)
    assert isinstance(encoder, FrozenEncoder) and not any(p.requires_grad for p in encoder.parameters())
    image = torch.rand(1, 3, 32, 32)
    for mine, theirs in zip(encoder(image), model.encoder.features(image)):
        torch.testing.assert_close(mine, theirs)
    variant = VariantConfig(losses={"perceptual": 1.0}, perceptual_source="run:abc123")
    assert isinstance(load_feature_extractor(variant, path), FrozenEncoder)
    with pytest.raises(UsageError, match="needs that run's checkpoint"):
        load_feature_extractor(variant)


def test_feature_extractor_is_none_when_not_needed():
    assert load_feature_extractor(VariantConfig()) is None
    disc = VariantConfig(disc="patchgan", losses={"perceptual": 1.0}, perceptual_source="disc")
    assert load_feature_extractor(disc) is None


def test_bad_autoencoder_checkpoints(tmp_path: Path):
    with pytest.raises(UsageError, match="does not exist"):
        load_autoencoder_features(tmp_path / "none.pt")
    path = tmp_path / "plain.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(UsageError, match="'variant' and 'model'"):
        load_autoencoder_features(path)
    torch.save({"variant": VariantConfig().to_dict(), "model": {}}, path)
    with pytest.raises(UsageError, match="must be a vae or vqvae run"):
        load_autoencoder_features(path)

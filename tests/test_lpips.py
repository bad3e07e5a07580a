"""LPIPS: why it is not scored, said once; its AlexNet backbone imported from a local file (the test
makes its own weights: nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from afi.cli.main import app
from afi.metrics import _lpips_model, evaluate_batch, lpips_distance, lpips_unavailable
from afi.weights import ALEXNET_FILE

runner = CliRunner()


@pytest.fixture
def empty_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, afi_home: Path) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no AlexNet in torch's cache either
    _lpips_model.cache_clear()
    yield afi_home
    _lpips_model.cache_clear()


def test_the_reason_names_the_fix(empty_caches: Path) -> None:
    reason = lpips_unavailable()
    assert reason is not None and reason.startswith("lpips is not scored: it needs ")
    assert "pip install 'afi[lpips]'" in reason or "afi weights import FILE --name alexnet" in reason


def test_own_alexnet_weights_imported_from_a_file_make_lpips_score(
    empty_caches: Path, tmp_path: Path
) -> None:
    pytest.importorskip("lpips")
    torch.manual_seed(0)
    own = tmp_path / "my-alexnet.pth"
    torch.save(torchvision.models.alexnet().state_dict(), own)
    imported = runner.invoke(app, ["weights", "import", str(own), "--name", "alexnet"])
    assert imported.exit_code == 0, imported.output
    assert (empty_caches / "weights" / ALEXNET_FILE).is_file() and "your own weights" in imported.stdout
    assert lpips_unavailable() is None
    image, other = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert torch.allclose(lpips_distance(image, image), torch.zeros(2), atol=1e-6)
    assert (lpips_distance(image, other) > 0).all()
    assert evaluate_batch(image, other)["lpips"] > 0
    # The backbone holds the file's weights, not lpips's own random ones.
    conv = dict(_lpips_model().net.named_parameters())["slice1.0.weight"]
    assert torch.equal(conv, torch.load(own)["features.0.weight"])


def test_a_file_that_is_not_alexnet_is_refused(empty_caches: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong)
    result = runner.invoke(app, ["weights", "import", str(wrong), "--name", "alexnet"])
    assert result.exit_code == 2 and "not a torchvision alexnet state dict" in result.output

import random

import numpy as np
import torch

from afi.train.checkpoint import load_checkpoint, save_checkpoint
from afi.train.rng import capture_rng, restore_rng, seed_everything


def draw() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_restore_replays_every_generator_through_a_checkpoint(tmp_path):
    seed_everything(3)
    draw()
    written = save_checkpoint({"rng": capture_rng()}, tmp_path / "r.pt")
    expected = [draw() for _ in range(3)]
    seed_everything(99)
    restore_rng(load_checkpoint(written.path, written.sha256)["rng"])
    assert [draw() for _ in range(3)] == expected

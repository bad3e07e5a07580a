"""The triplet loader: crops, augmentation, determinism across worker counts, exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from afi.data.loader import AugmentConfig, EpochSampler, ShotSampler, TripletDataset, make_loader
from afi.errors import UsageError
from data_factories import SimpleFrame, SimpleTriplet, cartoon_frames, write_rgb

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def stored(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[SimpleTriplet], list[SimpleFrame]]:
    """Two shots of 6 frames (48x40) as WebP-free PNGs, their consecutive triplets and frames."""
    root = tmp_path_factory.mktemp("stored")
    triplets, frames = [], []
    for shot in range(2):
        images = cartoon_frames(6, size=48, seed=shot)[:, :40]  # (6, 40, 48, 3)
        paths = [f"s{shot}/{i}.png" for i in range(6)]
        for i, (relative, image) in enumerate(zip(paths, images, strict=True)):
            write_rgb(root / relative, image)
            frames.append(SimpleFrame(shot=shot, idx=i, path=relative, pts=i / 24))
        triplets += [
            SimpleTriplet(f"{shot}:{i}", shot, paths[i], paths[i + 1], paths[i + 2], 0.5)
            for i in range(4)
        ]
    return root, triplets, frames


def _batches_equal(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x["key"] == y["key"]
        and all(torch.equal(x[k], y[k]) for k in ("frame0", "frame1", "frame2", "t"))
        for x, y in zip(a, b, strict=True)
    )


def test_items_are_float_frames_in_unit_range(stored) -> None:
    root, triplets, _ = stored
    item = TripletDataset(root, triplets)[0]
    assert item["frame0"].shape == (3, 40, 48) and item["frame0"].dtype == torch.float32
    assert 0 <= float(item["frame1"].min()) and float(item["frame1"].max()) <= 1
    assert item["t"].shape == () and float(item["t"]) == 0.5 and item["key"] == "0:0"


def test_eval_centre_crop_has_no_randomness_and_small_images_are_padded(stored) -> None:
    root, triplets, _ = stored
    dataset = TripletDataset(root, triplets, crop=(32, 32))
    assert torch.equal(dataset[(0, 1)]["frame0"], dataset[(5, 1)]["frame0"])
    padded = TripletDataset(root, triplets, crop=(64, 56), augment=AugmentConfig())[0]
    assert padded["frame0"].shape == (3, 56, 64)


def test_same_seed_epoch_index_gives_the_same_sample(stored) -> None:
    root, triplets, _ = stored
    dataset = TripletDataset(
        root, triplets, crop=(32, 24), augment=AugmentConfig(rot90=True, color_jitter=True), seed=3
    )
    assert _batches_equal([dataset[(2, 5)]], [dataset[(2, 5)]])
    others = [dataset[(epoch, 5)]["frame0"] for epoch in range(6)]
    assert any(not torch.equal(others[0], other) for other in others[1:])


def test_temporal_reversal_swaps_the_ends_and_mirrors_t(stored) -> None:
    root, _, _ = stored
    skewed = [SimpleTriplet("k", 0, "s0/0.png", "s0/1.png", "s0/3.png", 1 / 3)]
    plain = TripletDataset(root, skewed, augment=AugmentConfig(flip=False, temporal_reverse=False))
    reversing = TripletDataset(root, skewed, augment=AugmentConfig(flip=False))
    seen = set()
    for epoch in range(16):
        item, base = reversing[(epoch, 0)], plain[(epoch, 0)]
        if float(item["t"]) == pytest.approx(2 / 3):
            assert torch.equal(item["frame0"], base["frame2"]) and torch.equal(
                item["frame2"], base["frame0"]
            )
            seen.add("reversed")
        else:
            assert float(item["t"]) == pytest.approx(1 / 3) and torch.equal(
                item["frame0"], base["frame0"]
            )
            seen.add("forward")
    assert seen == {"reversed", "forward"}


def test_rotation_only_for_square_crops(stored) -> None:
    root, triplets, _ = stored
    wide = TripletDataset(root, triplets, crop=(32, 24), augment=AugmentConfig(rot90=True))
    assert all(wide[(e, 0)]["frame0"].shape == (3, 24, 32) for e in range(8))


def test_workers_do_not_change_the_batches(stored) -> None:
    root, triplets, _ = stored
    dataset = TripletDataset(
        root, triplets, crop=(32, 32), augment=AugmentConfig(rot90=True), seed=1
    )
    inline = list(make_loader(dataset, batch=3, workers=0, seed=2, epochs=2))
    parallel = list(make_loader(dataset, batch=3, workers=2, seed=2, epochs=2))
    assert _batches_equal(inline, parallel)


def test_resume_continues_with_exactly_the_same_batches(stored) -> None:
    root, triplets, _ = stored
    dataset = TripletDataset(root, triplets, crop=(32, 32), augment=AugmentConfig(), seed=1)
    full = list(make_loader(dataset, batch=3, seed=2, epochs=3))
    resumed = list(make_loader(dataset, batch=3, seed=2, epochs=3, start_step=5))
    assert len(full) == 8 and _batches_equal(full[5:], resumed)


def test_sampler_visits_every_index_once_per_epoch_and_is_endless_by_default() -> None:
    stream = iter(EpochSampler(5, seed=0))
    pairs = [next(stream) for _ in range(15)]
    for epoch in range(3):
        assert sorted(i for e, i in pairs if e == epoch) == list(range(5))
    assert [i for _, i in pairs[:5]] != [i for _, i in pairs[5:10]]
    assert list(EpochSampler(3, shuffle=False, epochs=1)) == [(0, 0), (0, 1), (0, 2)]


def test_shot_sampler_draws_arbitrary_t_from_timestamps(stored) -> None:
    root, triplets, frames = stored
    sampler = ShotSampler.from_frames(frames, probability=1.0, max_span=4)
    dataset = TripletDataset(
        root,
        triplets,
        augment=AugmentConfig(flip=False, temporal_reverse=False),
        shot_sampler=sampler,
    )
    ts = {round(float(dataset[(e, 0)]["t"]), 4) for e in range(30)}
    possible = {round(x, 4) for x in (0.25, 1 / 3, 0.5, 2 / 3, 0.75)}  # pts i/24 within 4 frames
    assert ts - {0.5} and ts <= possible
    assert "@" in dataset[(0, 0)]["key"]


def test_empty_split_and_missing_file_are_usage_errors(stored, tmp_path: Path) -> None:
    root, triplets, _ = stored
    with pytest.raises(UsageError, match="no val triplets"):
        TripletDataset(root, [], split="val")
    with pytest.raises(UsageError, match="re-import"):
        TripletDataset(tmp_path, triplets)[0]

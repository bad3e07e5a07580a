import torch

from afi.train.callbacks import TensorBoardCallback, image_grid
from afi.train.loop import ImageSample, StepReport


def sample(rows: int = 2) -> ImageSample:
    image = torch.rand(rows, 3, 8, 8)
    return ImageSample(
        step=4, inputs=(image, image), prediction=image, truth=torch.zeros_like(image)
    )


def test_grid_has_a_row_per_sample_and_a_column_per_image():
    grid = image_grid(sample(rows=2))  # columns: frame0, frame2, prediction, truth, error
    assert grid.shape == (3, 2 + 2 * (8 + 2), 2 + 5 * (8 + 2))


def test_tensorboard_writes_scalars_and_images(tmp_path):
    callback = TensorBoardCallback(tmp_path / "tb" / "7")
    callback.on_log(
        StepReport(
            step=4, total_steps=8, stats={"loss/G/total": 0.5}, perf={"perf/samples_per_s": 3.0}
        )
    )
    callback.on_images(sample())
    callback.on_validation(4, {"psnr": 30.0})
    callback.on_end(4, "completed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb" / "7")).Reload()
    assert {"loss/G/total", "perf/samples_per_s", "val/psnr"} <= set(events.Tags()["scalars"])
    assert events.Tags()["images"]

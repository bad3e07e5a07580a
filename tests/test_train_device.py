import pytest
import torch

from afi.errors import UsageError
from afi.train.device import resolve_precision, setup_device


def test_cpu_run_is_fp32_without_compile_or_channels_last(monkeypatch):
    monkeypatch.setenv("AFI_DEVICE", "cpu")
    setup = setup_device(precision="auto", compile=True)
    assert setup.device.type == "cpu"
    assert (setup.precision, setup.channels_last, setup.compile) == ("fp32", False, False)
    assert not setup.grad_scaler().is_enabled()


def test_fp16_needs_cuda():
    with pytest.raises(UsageError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", torch.device("cpu"))


def test_bf16_autocast_on_cpu_when_asked(monkeypatch):
    monkeypatch.setenv("AFI_DEVICE", "cpu")
    setup = setup_device(precision="bf16")
    with setup.autocast():
        out = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    assert out.dtype == torch.bfloat16


def test_bad_device_override(monkeypatch):
    monkeypatch.setenv("AFI_DEVICE", "tpu9")
    with pytest.raises(UsageError, match="AFI_DEVICE"):
        setup_device()

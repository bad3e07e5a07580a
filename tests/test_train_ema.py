import pytest
import torch

from afi.train.ema import ema_decay_at, ema_model


def test_ema_follows_with_warmed_up_decay():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = ema_model(model, decay=0.9)
    ema.update_parameters(model)  # first update copies
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update_parameters(model)
    assert ema_decay_at(0.9, 1) == pytest.approx(2 / 11)
    assert ema.module.weight[0, 0].item() == pytest.approx(1 - 2 / 11)
    assert ema_decay_at(0.9, 1000) == 0.9
    assert not any(p.requires_grad for p in ema.parameters())


def test_ema_state_round_trips():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.GroupNorm(1, 2))
    ema = ema_model(model, 0.99)
    for _ in range(3):
        ema.update_parameters(model)
    copy = ema_model(model, 0.99)
    copy.load_state_dict(ema.state_dict())
    assert int(copy.n_averaged) == 3

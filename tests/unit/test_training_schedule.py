"""Known answers for the training loop's learning-rate warm-up and gradient-norm clipping (training.fit)."""

import pytest
import torch

from wsss_steps.lib.training import fit, make_optimizer, poly_lr


class Points(torch.utils.data.Dataset):
    """Two fixed inputs; fit sets ``epoch`` on its dataset."""

    epoch = 0

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return {"x": torch.tensor([1.0, 2.0]) * (index + 1)}


def _optimizer(model, lr, momentum=0.0):
    return make_optimizer(list(model.parameters()), [], {"lr": lr, "weight_decay": 0.0, "momentum": momentum})


@pytest.mark.parametrize("step, expected", [(0, 0.25), (1, 0.5), (3, 1.0), (7, 1.0)])
def test_warmup_rises_linearly_then_follows_the_poly_schedule(step, expected):
    model = torch.nn.Linear(1, 1)
    optimizer = _optimizer(model, 0.1)
    poly_lr(optimizer, step, 100, warmup=4)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * expected * (1 - step / 100) ** 0.9)


def test_no_warmup_is_the_plain_poly_schedule():
    model = torch.nn.Linear(1, 1)
    optimizer = _optimizer(model, 0.1)
    poly_lr(optimizer, 0, 100, warmup=0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def _one_step(max_grad_norm):
    """One SGD step (lr 1, no momentum) of loss = 100 * w . x on a bias-free linear model from w = 0."""
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    curve = []
    length = {"steps": 1, **({"max_grad_norm": max_grad_norm} if max_grad_norm else {})}
    fit(model, Points(), lambda net, batch, progress: 100 * net(batch["x"]).sum(), _optimizer(model, 1.0), length,
        batch_size=2, device="cpu", seed=0, name="toy", curve=curve)
    return model.weight.detach().flatten(), curve


def test_clipping_bounds_the_step_to_max_grad_norm_and_records_the_norm_before_it():
    # the gradient of 100 * (w.(1, 2) + w.(2, 4)) is (300, 600), of norm 300 * sqrt(5)
    weight, curve = _one_step(None)
    assert torch.allclose(weight, torch.tensor([-300.0, -600.0]))
    assert "grad_norm" not in curve[0]
    weight, curve = _one_step(2.0)
    assert torch.linalg.norm(weight).item() == pytest.approx(2.0, rel=1e-5)
    assert torch.allclose(weight / torch.linalg.norm(weight), torch.tensor([-1.0, -2.0]) / 5 ** 0.5)
    assert curve[0]["grad_norm"] == pytest.approx(300 * 5 ** 0.5, rel=1e-5)


def test_clipping_above_the_norm_changes_nothing():
    assert torch.allclose(_one_step(1e6)[0], _one_step(None)[0])

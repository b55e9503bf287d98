"""classifier.max_cycles in ``fit``: another schedule while ``another_cycle`` asks for one, up to max_cycles; a run
whose first schedule is enough trains exactly as without the check; a resumed or extended run goes on where it was."""

import numpy as np
import torch

from wsss_steps.lib.training import fit, make_optimizer


class Points(torch.utils.data.Dataset):
    """Eight 2-d points with a linear target: a batch is {"x", "y"}; ``epoch`` is set by fit."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(8, 2, generator=g)
        self.y = self.x @ torch.tensor([1.5, -2.0])
        self.epoch = 0

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def _loss(model, batch, progress):
    return ((model(batch["x"]).squeeze(1) - batch["y"]) ** 2).mean()


def _train(steps=5, max_cycles=None, another_cycle=None, checkpoint=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    params = {"lr": 0.05, "weight_decay": 0.0, "momentum": 0.9, "new_layer_factor": 1, "steps": steps}
    if max_cycles is not None:
        params["max_cycles"] = max_cycles
    optimizer = make_optimizer([], list(model.parameters()), params)
    curve = []
    fit(model, Points(), _loss, optimizer, params, 3, "cpu", 0, "test", checkpoint, "key", 0, curve, another_cycle)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, curve


class Asked:
    """another_cycle that records the steps it was asked at and answers ``answer``."""

    def __init__(self, answer):
        self.answer, self.steps = answer, []

    def __call__(self, model, step):
        self.steps.append(step)
        return self.answer


def test_a_first_schedule_that_is_enough_trains_exactly_as_without_the_check():
    plain, plain_curve = _train()
    asked = Asked(False)
    checked, checked_curve = _train(max_cycles=3, another_cycle=asked)
    assert asked.steps == [5]
    assert checked_curve == plain_curve
    for key in plain:
        torch.testing.assert_close(checked[key], plain[key], rtol=0, atol=0)


def test_another_schedule_while_asked_up_to_max_cycles_with_the_learning_rate_restarting():
    asked = Asked(True)
    _, curve = _train(max_cycles=3, another_cycle=asked)
    assert asked.steps == [5, 10, 15]  # asked at each schedule's end, the last included (its figures are kept)
    assert [r["step"] for r in curve] == list(range(1, 16))


def test_an_extended_run_continues_its_checkpoint_and_ends_as_an_uninterrupted_one(tmp_path):
    straight, straight_curve = _train(max_cycles=3, another_cycle=Asked(True))
    checkpoint = tmp_path / "ckpt.h5"
    _train(max_cycles=2, another_cycle=Asked(True), checkpoint=checkpoint)
    asked = Asked(True)
    extended, curve = _train(max_cycles=3, another_cycle=asked, checkpoint=checkpoint)
    assert asked.steps == [10, 15]  # the end of the second schedule is measured again, then the third is trained
    assert [r["step"] for r in curve] == [r["step"] for r in straight_curve]
    np.testing.assert_allclose([r["loss"] for r in curve], [r["loss"] for r in straight_curve], rtol=1e-6)
    for key in straight:
        torch.testing.assert_close(extended[key], straight[key])

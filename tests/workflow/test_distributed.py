"""Data-parallel training (wsss_steps/lib/distributed.py) on the CPU with gloo: two processes started by torchrun with
the same global batch end with the weights of one process, and a training stage runs under torchrun with rank 0
alone writing its outputs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import TINY, arrays
from wsss_steps.lib.distributed import ShareSampler

FIT = '''
import sys
import numpy as np
import torch
from torch import nn
from wsss_steps.lib.distributed import is_main
from wsss_steps.lib.training import fit

class Items(torch.utils.data.Dataset):
    """20 fixed images and targets; the epoch attribute is what fit sets."""
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x, self.y, self.epoch = torch.randn(20, 3, 8, 8, generator=g), torch.randn(20, 2, generator=g), 0
    def __len__(self):
        return 20
    def __getitem__(self, i):
        return {"image": self.x[i], "target": self.y[i]}

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
optimizer = torch.optim.SGD([{"params": list(model.parameters()), "lr": 0.1, "base_lr": 0.1}], momentum=0.9,
                            weight_decay=1e-4)
loss_fn = lambda net, batch, progress: ((net(batch["image"]) - batch["target"]) ** 2).mean()
fit(model, Items(), loss_fn, optimizer, {"steps": 7}, 4, "cpu", 0, "toy")
if is_main():
    np.savez(sys.argv[1], **{k: v.numpy() for k, v in model.state_dict().items()})
'''


def launch(script, processes: int, *args, cwd=None):
    """Run ``script`` alone (1) or under torchrun with ``processes`` gloo processes."""
    head = [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     f"--nproc_per_node={processes}"]
    proc = subprocess.run([*head, *script, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=900)  # a hang guard
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_each_process_takes_its_share_of_the_same_global_batches():
    batches = [list(ShareSampler(10, 4, True, torch.Generator().manual_seed(3), r, 2)) for r in (0, 1)]
    whole = list(torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(range(10), generator=torch.Generator().manual_seed(3)), 4, True))
    assert len(batches[0]) == len(batches[1]) == len(whole) == 2
    for b0, b1, b in zip(*batches, whole):
        assert sorted(b0 + b1) == sorted(b) and b0 == b[0::2] and b1 == b[1::2]
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        ShareSampler(10, 4, True, torch.Generator(), 0, 3)


def test_two_gloo_processes_train_the_weights_of_one_with_the_same_global_batch(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(FIT)
    launch([str(script)], 1, tmp_path / "one.npz")
    launch([str(script)], 2, tmp_path / "two.npz")
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert one.files == two.files and len(one.files) == 4
    for key in one.files:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6)


def test_a_training_stage_runs_under_torchrun_and_rank_0_alone_writes(tiny_run, tmp_path):
    import yaml

    workdir, _ = tiny_run
    config = yaml.safe_load(TINY.read_text())
    dataset = json.dumps({k: v for k, v in config["dataset"].items() if k not in ("generate", "score_split", "cooccurrence")})
    out = tmp_path / "classifier.weights.h5"
    proc = launch(["-m", "wsss_steps.train_classifier"], 2, "--dataset", dataset, "--device", "cpu", "--threads", "1",
                  "--backbone", json.dumps(config["backbone"]), "--params", json.dumps(config["classifier"]),
                  "--split", "train", "--checkpoint", tmp_path / "ckpt.h5", "--out", out, cwd=workdir)
    assert "process 0 of 2, 4 of each batch of 8" in proc.stderr + proc.stdout
    weights = arrays(out)
    assert all(np.isfinite(v).all() for k, v in weights.items() if k.startswith("state_dict/"))
    assert not (tmp_path / "ckpt.h5").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["classifier.weights.h5"]


def test_training_gpus_runs_the_training_jobs_under_torchrun_on_that_many_gpus(tmp_path):
    from conftest import snakemake

    proc = snakemake(tmp_path, "-n", "-p", "--cores", "2", "--config", "training_gpus=2")
    train = [line for line in proc.stdout.splitlines() if "wsss_steps.train_" in line]
    assert len(train) == 3 and all("gpu_slot --gpus 2 -- python3 -m torch.distributed.run --standalone"
                                   " --nproc_per_node 2 -m wsss_steps.train_" in line for line in train)
    plain = snakemake(tmp_path, "-n", "-p", "--cores", "2")
    assert "torch.distributed.run" not in plain.stdout and "gpu_slot -- python3 -m wsss_steps.train_classifier" in plain.stdout

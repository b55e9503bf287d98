"""The random-walk stage at stride 4 and 8 on a tiny random AffinityNet."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from wsss_steps import random_walk as random_walk_stage
from wsss_steps.methods import random_walk
from wsss_steps.lib.artifacts import open_store, put_array, read_array, save_weights, write_store
from wsss_steps.nets.affinity import AffinityNet
from wsss_steps.nets.backbones import TinyBackbone

BACKBONE = {"name": "tiny", "output_stride": 8, "weights": None, "width": 4}
HEAD = [4, 4, 8]


def tiny_model():
    torch.manual_seed(0)
    return AffinityNet(TinyBackbone(BACKBONE["width"]), HEAD).eval()


@pytest.mark.parametrize("stride", [4, 8])
def test_features_on_the_walk_grid(stride):
    features, padded, size = random_walk.features_at_stride(tiny_model(), torch.rand(3, 37, 50), stride)
    assert tuple(padded) == (40, 56) and size == (37, 50)  # padded to a multiple of lcm(stride, 8)
    assert features.shape == (sum(HEAD), 40 // stride, 56 // stride)


@pytest.mark.parametrize("stride", [4, 8])
def test_walk_returns_labels_of_the_image_size(stride):
    rng = np.random.default_rng(0)
    cams = rng.random((2, 37, 50)).astype(np.float32)
    labels = random_walk.refine(tiny_model(), torch.rand(3, 37, 50), cams, [1, 3], alpha=16, beta=8, t=16, radius=3,
                                stride=stride)
    assert labels.shape == (37, 50) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 3}


def test_stage_honours_the_stride_parameter(tmp_path):
    root = tmp_path / "data"
    (root / "JPEGImages").mkdir(parents=True)
    rng = np.random.default_rng(1)
    sizes = {"a": (30, 45), "b": (48, 33)}
    for image_id, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
    with write_store(tmp_path / "cams.h5", {"stage": "extract_cams", "ids": json.dumps(list(sizes))}) as store:
        for image_id, (h, w) in sizes.items():
            put_array(store, image_id, rng.random((1, h, w)).astype(np.float16), classes=np.asarray([2]))
    save_weights(tmp_path / "aff.h5", tiny_model(), {"stage": "train_affinity"})
    dataset = json.dumps({"root": str(root), "classes": ["background", "a", "b"]})
    common = ["--dataset", dataset, "--backbone", json.dumps(BACKBONE), "--device", "cpu",
              "--affinity-params", json.dumps({"radius": 3, "head_channels": HEAD}),
              "--cams", str(tmp_path / "cams.h5"), "--affinity", str(tmp_path / "aff.h5")]
    for stride in (4, 8):
        out = tmp_path / f"labels{stride}.h5"
        random_walk_stage.main(common + ["--params", json.dumps({"alpha": 16, "beta": 8, "t": 4, "stride": stride}),
                                   "--out", str(out)])
        with open_store(out, "random_walk") as store:
            assert json.loads(store.attrs["params"])["stride"] == stride
            for image_id, size in sizes.items():
                labels = read_array(store, image_id)
                assert labels.shape == size and set(np.unique(labels)) <= {0, 2}
    with pytest.raises(SystemExit):
        random_walk_stage.main(common + ["--params", json.dumps({"alpha": 16, "beta": 8, "t": 4, "stride": 16}),
                                   "--out", str(tmp_path / "bad.h5")])

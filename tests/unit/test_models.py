"""Backbones and weights: local state-dict files, torchvision names, and shapes at each output stride."""

from pathlib import Path

import h5py
import pytest
import torch
import torchvision

from wsss_steps.lib.artifacts import load_weights, save_weights
from wsss_steps.lib.config import ConfigError
from wsss_steps.nets.affinity import AffinityNet
from wsss_steps.nets.backbones import ResNet50Backbone, WeightsError, backbone_from_config, make_backbone
from wsss_steps.nets.classifier import CAMNet
from wsss_steps.nets.segmentation import make_deeplabv3
from wsss_steps.lib.runs import check_run_matches

SHARED_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights" / "resnet50_imagenet.pth"


def test_tiny_backbone_heads_have_stride_8():
    backbone = make_backbone("tiny", width=4)
    x = torch.zeros(1, 3, 64, 48)
    assert CAMNet(backbone, 3).cam(x).shape == (1, 3, 8, 6)
    assert AffinityNet(backbone, (4, 4, 8))(x).shape == (1, 16, 8, 6)
    assert make_deeplabv3(backbone, 4, 8, (1, 2)).eval()(x)["out"].shape == (1, 4, 64, 48)


@pytest.mark.parametrize("stride", [8, 16])
def test_resnet50_output_stride(stride):
    feats = ResNet50Backbone(stride).eval()(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [512, 1024, 2048]
    assert feats[-1].shape[-1] == 64 // stride


def test_resnet50_loads_a_local_state_dict_and_rejects_a_wrong_one(tmp_path):
    reference = torchvision.models.resnet50(weights=None)
    path = tmp_path / "r50.pth"
    torch.save(reference.state_dict(), path)
    backbone = make_backbone("resnet50", 16, str(path))
    assert torch.equal(backbone.net.conv1.weight, reference.conv1.weight)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(WeightsError, match=r"r18\.pth: weights do not fit ResNet-50"):
        make_backbone("resnet50", 16, str(tmp_path / "r18.pth"))
    with pytest.raises(WeightsError, match="not found"):
        make_backbone("resnet50", 16, str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsError, match="ResNet50_Weights name"):
        make_backbone("resnet50", 16, "IMAGENET_NOPE")


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason="the shared ImageNet ResNet-50 (../shared/weights) is not on this machine")
def test_shared_imagenet_weights_fit_the_backbone():
    backbone = make_backbone("resnet50", 8, str(SHARED_WEIGHTS))
    assert backbone.net.conv1.weight.abs().sum() > 0


def test_a_run_folder_belongs_to_one_dataset(tmp_path):
    results = tmp_path / "results" / "run"
    results.mkdir(parents=True)
    with h5py.File(results / "classifier.weights.h5", "w") as store:
        store.attrs["dataset_root"] = "data/one"
    check_run_matches(str(results), {"root": "data/one"})
    with pytest.raises(ConfigError, match="run_name"):
        check_run_matches(str(results), {"root": "data/two"})


def test_one_dataset_root_however_it_is_written(tmp_path, monkeypatch):
    """Regression: a root written with a trailing '/' refused every later run of the same config."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "one").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data" / "one")
    results = tmp_path / "results" / "run"
    results.mkdir(parents=True)
    with h5py.File(results / "classifier.weights.h5", "w") as store:
        store.attrs["dataset_root"] = "data/one"  # what the stages store: the normalised path
    for spelling in ("data/one/", "./data/one", str(tmp_path / "data" / "one") + "/", "link", "link/"):
        check_run_matches(str(results), {"root": spelling})


def test_pretrained_resnet50_keeps_imagenet_batch_norm_through_training(tmp_path):
    """Regression: small-batch training overwrote ImageNet BatchNorm statistics, which ruined CAMs on real photos."""
    reference = torchvision.models.resnet50(weights=None)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "r50.pth"
    torch.save(reference.state_dict(), path)
    x = torch.randn(2, 3, 64, 64)
    model = CAMNet(backbone_from_config({"name": "resnet50", "output_stride": 16, "weights": str(path)}), 1)
    assert isinstance(model.backbone.net.bn1, torchvision.ops.FrozenBatchNorm2d)
    model.train()
    with torch.no_grad():  # in training mode the features are the reference network's in eval mode
        net = model.backbone.net
        expected = reference.eval().layer1(reference.maxpool(reference.relu(reference.bn1(reference.conv1(x)))))
        assert torch.allclose(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))), expected, atol=1e-4)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(x).sum().backward()
    optimizer.step()
    after = model.state_dict()
    assert before and all(torch.equal(v, after[k]) for k, v in before.items())
    assert not any("bn" in name for name, _ in model.named_parameters())


def test_batch_norm_setting():
    assert isinstance(backbone_from_config({"name": "resnet50", "output_stride": 16, "weights": None}).net.bn1,
                      torch.nn.BatchNorm2d)
    trained = backbone_from_config({"name": "resnet50", "output_stride": 16, "weights": "IMAGENET1K_V1",
                                    "batch_norm": "train"}, pretrained=False)
    assert type(trained.net.bn1) is torch.nn.BatchNorm2d
    frozen = backbone_from_config({"name": "resnet50", "output_stride": 16, "weights": "IMAGENET1K_V1"}, pretrained=False)
    assert isinstance(frozen.net.bn1, torchvision.ops.FrozenBatchNorm2d)
    with pytest.raises(ValueError, match="batch_norm"):
        ResNet50Backbone(16, "group")


def test_optimizer_takes_momentum_from_settings_and_gives_new_layers_ten_times_the_lr():
    from wsss_steps.lib.config import section_defaults
    from wsss_steps.lib.training import make_optimizer

    old, new = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    settings = section_defaults("classifier", {"lr": 0.01, "weight_decay": 0.0})  # momentum's default: the schema's
    default = make_optimizer(old.parameters(), new.parameters(), settings)
    assert [g["momentum"] for g in default.param_groups] == [0.9, 0.9]
    assert [g["lr"] for g in default.param_groups] == [0.01, 0.1]
    plain = make_optimizer(old.parameters(), new.parameters(), {"lr": 0.1, "weight_decay": 0.0, "momentum": 0})
    assert [g["momentum"] for g in plain.param_groups] == [0, 0]
    same = make_optimizer(old.parameters(), new.parameters(), {**settings, "new_layer_factor": 1})
    assert [g["lr"] for g in same.param_groups] == [0.01, 0.01] == [g["base_lr"] for g in same.param_groups]


def test_channels_last_resnet_gives_the_same_features_in_the_usual_layout(tmp_path):
    torch.manual_seed(0)
    plain = backbone_from_config({"name": "resnet50", "output_stride": 16, "weights": None}).eval()
    nhwc = backbone_from_config({"name": "resnet50", "output_stride": 16, "weights": None, "channels_last": True}).eval()
    assert nhwc.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    nhwc.load_state_dict(plain.state_dict())
    assert nhwc.net.layer1[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)  # loading keeps NHWC
    image = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        expected, got = plain(image), nhwc(image)
    for e, g in zip(expected, got):
        assert g.is_contiguous()  # the heads see the usual NCHW layout
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
    # weights trained in NHWC are stored in the logical layout and load into a plain network
    path = tmp_path / "w.h5"
    save_weights(path, nhwc, {"stage": "test"})
    reloaded = backbone_from_config({"name": "resnet50", "output_stride": 16, "weights": None}).eval()
    load_weights(path, reloaded)
    assert torch.equal(reloaded.net.layer4[2].conv3.weight, plain.net.layer4[2].conv3.weight)


def test_affinity_features_at_stride_8_on_a_stride_16_resnet_keep_the_stride_8_stage_unpooled():
    torch.manual_seed(0)
    backbone = ResNet50Backbone(output_stride=16).eval()
    coarse, fine = AffinityNet(backbone).eval(), AffinityNet(backbone, feature_stride=8).eval()
    fine.load_state_dict(coarse.state_dict())  # the same 1x1 convs: only where the stages meet differs
    image = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        assert coarse(image).shape[-2:] == (6, 8)
        assert fine(image).shape[-2:] == (12, 16)
        s2, s3, s4 = backbone(image)
        # by hand: stage 2 (stride 8) as it is, stages 3 and 4 (stride 16) bilinearly upsampled to 12 x 16
        parts = [torch.nn.functional.elu(conv(f if f.shape[-2:] == (12, 16) else torch.nn.functional.interpolate(
            f, size=(12, 16), mode="bilinear", align_corners=False))) for conv, f in zip(fine.reduce, (s2, s3, s4))]
        expected = torch.nn.functional.elu(fine.fuse(torch.cat(parts, 1)))
        torch.testing.assert_close(fine(image), expected)


def test_affinity_feature_stride_absent_is_the_backbones_stride():
    assert AffinityNet(ResNet50Backbone(output_stride=16)).feature_stride == 16
    torch.manual_seed(0)
    tiny = make_backbone("tiny", width=4).eval()
    absent, eight = AffinityNet(tiny).eval(), AffinityNet(tiny, feature_stride=8).eval()
    eight.load_state_dict(absent.state_dict())
    image = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        assert absent(image).shape[-2:] == (8, 6)
        assert torch.equal(absent(image), eight(image))  # the tiny backbone is at stride 8 already: nothing changes


def test_backbone_amp_bf16_runs_the_stages_in_bfloat16_and_returns_float32_features():
    torch.manual_seed(0)
    plain = ResNet50Backbone(output_stride=16).eval()
    mixed = ResNet50Backbone(output_stride=16, amp="bf16").eval()
    mixed.load_state_dict(plain.state_dict())
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        full, half = plain(image), mixed(image)
        last = mixed.forward_from(1, plain(image)[1])
    for f, h in zip(full, half):
        assert h.dtype == torch.float32 and h.shape == f.shape
        assert not torch.equal(f, h)  # bfloat16 arithmetic did run
        assert (h - f).abs().max() <= 0.05 * f.abs().max()  # to bfloat16's 8-bit mantissa
    assert last.dtype == torch.float32
    with pytest.raises(ValueError, match="amp must be one of"):
        ResNet50Backbone(amp="fp8")


def test_backbone_amp_auto_is_bf16_only_where_the_device_computes_bfloat16_natively(monkeypatch, tmp_path):
    from wsss_steps.nets import backbones

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert backbones.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert backbones.cpu_flags(str(tmp_path / "absent")) == set()
    torch.manual_seed(0)
    plain = ResNet50Backbone(output_stride=16).eval()
    mixed = ResNet50Backbone(output_stride=16, amp="bf16").eval()
    auto = ResNet50Backbone(output_stride=16, amp="auto").eval()
    mixed.load_state_dict(plain.state_dict())
    auto.load_state_dict(plain.state_dict())
    image = torch.rand(1, 3, 64, 64)
    for native, same_as in ((False, plain), (True, mixed)):
        monkeypatch.setattr(backbones, "native_bf16", lambda device_type, native=native: native)
        assert backbones.resolve_amp("auto", "cpu") == ("bf16" if native else None)
        assert backbones.resolve_amp("fp16", "cpu") == "fp16" and backbones.resolve_amp(None, "cpu") is None
        assert backbones.computed_in({"amp": "auto"}, torch.device("cpu")) == {"device": "cpu", "amp": "bf16" if native else "float32"}
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(auto(image), same_as(image)))
            level = plain(image)[1]
            assert torch.equal(auto.forward_from(1, level), same_as.forward_from(1, level))


def test_affinity_head_init_psa_draws_the_convs_as_psas_network():
    # psa network/resnet38_aff.py lines 13-22: the four convs are built (each with PyTorch's default draw), then
    # kaiming_normal_ on f8_3, f8_4, f8_5 and xavier_uniform_(gain=4) on f9, in that order
    tiny = make_backbone("tiny", width=4)
    channels = (4, 6, 8)
    torch.manual_seed(3)
    net = AffinityNet(tiny, channels, head_init="psa")
    torch.manual_seed(3)
    f8 = [torch.nn.Conv2d(c, h, 1, bias=False) for c, h in zip(tiny.channels, channels)]
    f9 = torch.nn.Conv2d(sum(channels), sum(channels), 1, bias=False)
    for conv in f8:
        torch.nn.init.kaiming_normal_(conv.weight)
    torch.nn.init.xavier_uniform_(f9.weight, gain=4)
    for ours, theirs in zip(net.reduce, f8):
        assert torch.equal(ours.weight, theirs.weight)
    assert torch.equal(net.fuse.weight, f9.weight)
    # by hand: xavier's bound is gain * sqrt(6 / (fan_in + fan_out)) = 4 * sqrt(6 / 36) for an 18 x 18 1x1 conv
    assert net.fuse.weight.abs().max() <= 4 * (6 / 36) ** 0.5


def test_affinity_head_init_absent_keeps_pytorchs_default_and_an_unknown_name_is_refused():
    tiny = make_backbone("tiny", width=4)
    torch.manual_seed(3)
    absent = AffinityNet(tiny, (4, 6, 8))
    torch.manual_seed(3)
    named = AffinityNet(tiny, (4, 6, 8), head_init="torch")
    assert torch.equal(absent.fuse.weight, named.fuse.weight)
    assert absent.fuse.weight.abs().max() <= 1 / 18 ** 0.5  # PyTorch's default: within 1/sqrt(fan_in)
    with pytest.raises(ValueError, match="head_init"):
        AffinityNet(tiny, (4, 6, 8), head_init="xavier")

"""VOC-layout datasets: label sources, masks only where they exist, and clear errors on bad input.

The tests here run no workflow; those that do are in tests/workflow/test_voc_run.py.
"""

import json

import numpy as np
import pytest
import torch

from wsss_steps.data import DatasetError, VOCLayout
from wsss_steps.methods.cam import multiscale_cam
from wsss_steps.lib.artifacts import ArtifactError, load_weights, save_weights
from wsss_steps.data.label_png import save_label_png
from wsss_steps.nets.classifier import build_classifier

from conftest import REPO
from fake_voc import VOC_CLASSES, write_fake_voc

SAMPLES = REPO.parent / "shared" / "data" / "voc-samples"


@pytest.fixture
def fake_voc(tmp_path):
    lists = write_fake_voc(tmp_path / "VOC2012")
    return VOCLayout(tmp_path / "VOC2012", VOC_CLASSES), lists


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} not present (shared real VOC samples)")
def test_reads_real_voc_samples_with_palette_masks_and_void_borders():
    layout = VOCLayout(SAMPLES, VOC_CLASSES)
    named = {i: [VOC_CLASSES[c] for c in layout.image_labels(i)] for i in layout.ids("train")}
    assert named == {"2011_000003": ["bottle", "person"], "2011_000006": ["chair", "person", "sofa"],
                     "2011_000025": ["bus", "car"]}
    mask = layout.mask("2011_000003")
    assert mask.shape == layout.image_size("2011_000003") == (338, 500)
    assert set(np.unique(mask)) == {0, 5, 15, 255}
    assert layout.label_source() == "masks"
    assert layout.check(["train"], ["val"])["val"]["with_mask"] == 3


def test_train_aug_labels_come_from_xml_and_only_masked_images_are_scored(fake_voc):
    layout, lists = fake_voc
    assert layout.label_source() == "annotations"
    table = layout.label_table("train_aug")
    assert list(table) == lists["train_aug"] and all(table.values())
    # the XML names and the masks agree on the images that have both
    for image_id in lists["train"]:
        assert layout.labels_from_xml(image_id) == layout.labels_from_mask(image_id)
    assert layout.scored_ids(lists["train_aug"]) == lists["train"]
    report = layout.check(["train_aug"], ["train", "val"])
    unseen = report["train_aug"].pop("classes_without_images")  # the tiny tree lacks most VOC classes
    assert unseen == [n for k, n in enumerate(layout.classes) if k and all(k not in v for v in table.values())]
    assert report == {"train_aug": {"images": 9, "with_foreground": 9}, "train": {"images": 3, "with_mask": 3},
                      "val": {"images": 2, "with_mask": 2}}


def test_labels_file_is_preferred_over_annotations(fake_voc, tmp_path):
    layout, lists = fake_voc
    labels = {i: ["dog"] for i in lists["train_aug"]}
    labels[lists["train_aug"][0]] = []  # an image with no foreground class is a negative, not an error
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    with_file = VOCLayout(layout.root, VOC_CLASSES, labels_file=str(tmp_path / "labels.json"))
    table = with_file.label_table("train_aug")
    assert table[lists["train_aug"][0]] == [] and table[lists["train_aug"][1]] == [VOC_CLASSES.index("dog")]
    (tmp_path / "labels.txt").write_text("".join(f"{i} cat dog\n" for i in lists["train_aug"]))
    as_text = VOCLayout(layout.root, VOC_CLASSES, labels_file=str(tmp_path / "labels.txt"))
    assert as_text.image_labels(lists["train_aug"][2]) == [8, 12]


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nowhere'}: dataset root not found"):
        VOCLayout(tmp_path / "nowhere", VOC_CLASSES).check(["train"], [])


def test_missing_folder_is_named(fake_voc):
    layout, _ = fake_voc
    (layout.root / "JPEGImages").rename(layout.root / "images")
    with pytest.raises(DatasetError, match="JPEGImages: folder not found"):
        layout.check(["train"], [])


def test_listed_id_without_its_image_is_named(fake_voc):
    layout, lists = fake_voc
    (layout.root / "JPEGImages" / f"{lists['train'][1]}.jpg").unlink()
    with pytest.raises(DatasetError, match=f"{lists['train'][1]}.jpg: image listed in .*train_aug.txt is missing"):
        layout.check(["train_aug"], [])


def test_mask_of_another_size_is_named(fake_voc):
    layout, lists = fake_voc
    image_id = lists["val"][0]
    save_label_png(layout.mask_path(image_id), np.zeros((7, 9), np.uint8))
    with pytest.raises(DatasetError, match=f"{image_id}.png: mask is 9x7 pixels but its image"):
        layout.check(["train"], ["val"])


def test_mask_value_outside_the_classes_is_named(fake_voc):
    layout, lists = fake_voc
    image_id = lists["train"][0]
    mask = layout.mask(image_id).copy()
    mask[3, 3] = 21
    save_label_png(layout.mask_path(image_id), mask)
    with pytest.raises(DatasetError, match=f"{image_id}.png: mask value 21 is neither a class index"):
        layout.check(["train"], ["train"])


def test_annotation_with_an_unknown_class_is_named(fake_voc):
    layout, lists = fake_voc
    image_id = lists["train_aug"][-1]
    path = layout.annotation_path(image_id)
    path.write_text(path.read_text().replace("<name>", "<name>x", 1))
    with pytest.raises(DatasetError, match=f"{image_id}.xml: unknown class name 'x"):
        layout.check(["train_aug"], [])


def test_weights_trained_for_another_class_list_are_refused(tmp_path):
    backbone = {"name": "tiny", "output_stride": 8, "weights": None, "width": 8}
    model = build_classifier(backbone, 4)
    save_weights(tmp_path / "c.h5", model, {"stage": "train_classifier", "classes": ["background", "a", "b", "c"]})
    with pytest.raises(ArtifactError, match=r"c.h5: was trained for the classes \['background', 'a', 'b', 'c'\] but"):
        load_weights(tmp_path / "c.h5", build_classifier(backbone, 4), "train_classifier", classes=("background", "a", "b", "d"))
    load_weights(tmp_path / "c.h5", build_classifier(backbone, 4), "train_classifier", classes=("background", "a", "b", "c"))


class _PixelCAM(torch.nn.Module):
    """A stand-in classifier whose CAM of class 1 is the image's red channel, at stride 1 or 8."""

    def __init__(self, stride):
        super().__init__()
        self.backbone = torch.nn.Module()
        self.backbone.stride = stride

    def cam(self, x):
        red = x[:, :1]
        return torch.nn.functional.avg_pool2d(red, self.backbone.stride) if self.backbone.stride > 1 else red


@pytest.mark.parametrize("flip", [False, True])
def test_cams_of_an_odd_sized_image_align_to_the_pixel(flip):
    h, w = 37, 53
    image = torch.zeros(3, h, w)
    image[0, 30:35, 45:50] = 1.0  # a bright patch near the bottom-right corner, where padding goes
    cam = multiscale_cam(_PixelCAM(1), image, [1], [1.0], flip)
    assert cam.shape == (1, h, w)
    assert torch.allclose(cam[0], image[0], atol=1e-4)  # at stride 1 and scale 1 the CAM is the patch, pixel for pixel
    coarse = multiscale_cam(_PixelCAM(8), image, [1], [1.0, 0.5], flip)[0]
    y, x = divmod(int(coarse.argmax()), w)
    assert coarse.shape == (h, w) and abs(y - 32) <= 4 and abs(x - 47) <= 4


VOC12_GPU = (REPO / "configs" / "presets" / "voc12_gpu.yaml", REPO / "configs" / "datasets" / "voc12.yaml")


NO_GPU = ("--config", "device=auto")  # the GPU preset says device: cuda, which stops planning on a machine without one


PRESETS = sorted((REPO / "configs" / "presets").glob("*.yaml"))


DATASET_FILES = sorted((REPO / "configs" / "datasets").glob("*.yaml"))


def test_the_paper_preset_keeps_psa_s_settings():
    import yaml

    preset = yaml.safe_load(VOC12_GPU[0].read_text())
    assert (preset["affinity_labels"]["alpha_low"], preset["affinity_labels"]["alpha_high"]) == (4, 24)
    assert preset["affinity"]["radius"] == 5 and preset["cams"]["scales"] == [0.5, 1.0, 1.5, 2.0]
    walk = preset["random_walk"]
    assert (walk["alpha"], walk["beta"], walk["t"], walk["background"]) == (16, 8, 256, "power")
    # psa's train_aff.py loads the ImageNet weights into AffinityNet; DeepLab starts from ImageNet too
    assert not preset["affinity"]["init_from_classifier"] and not preset["segmentation"]["init_from_classifier"]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
@pytest.mark.parametrize("dataset", DATASET_FILES, ids=lambda p: p.stem)
def test_every_preset_with_every_dataset_file_is_valid(preset, dataset):
    import yaml

    from wsss_steps.lib.config import validate_config

    preset_cfg, dataset_cfg = (yaml.safe_load(p.read_text()) for p in (preset, dataset))
    assert "dataset" not in preset_cfg and set(dataset_cfg) == {"dataset"}  # a preset is the same for every dataset
    config = validate_config({**preset_cfg, **dataset_cfg})
    assert config["run_name"] == f"{dataset_cfg['dataset']['name']}-{preset.stem}"


SHARED = REPO.parent / "shared" / "data"


def test_a_store_made_for_another_class_list_or_dataset_is_refused(tmp_path):
    from wsss_steps.lib.artifacts import open_store, put_array, write_store

    path = tmp_path / "cams.h5"
    with write_store(path, {"stage": "extract_cams", "classes": ["background", "cat"], "dataset_root": "data/a"}) as s:
        put_array(s, "x", np.zeros((1, 4, 4), np.float16))
    with pytest.raises(ArtifactError, match=r"cams.h5: was made for the classes \['background', 'cat'\] but the config "
                                            r"lists \['background', 'dog'\]"):
        open_store(path, "extract_cams", VOCLayout("data/a", ("background", "dog")))
    with pytest.raises(ArtifactError, match="cams.h5: was made from the dataset at data/a but the config points at data/b"):
        open_store(path, "extract_cams", VOCLayout("data/b", ("background", "cat")))
    open_store(path, "extract_cams", VOCLayout("data/a", ("background", "cat"))).close()

"""Hide-and-Seek (classifier.method: hide_and_seek): known answers for the grid, the fill and the crops."""

import numpy as np
import torch
from PIL import Image

from fake_voc import VOC_CLASSES, write_fake_voc
from wsss_steps.data import VOCLayout
from wsss_steps.data.transforms import to_tensor
from wsss_steps.data.loader import CropDataset
from wsss_steps.methods.hide_and_seek import hidden_cells, hide, mean_colour
from wsss_steps.train_classifier import crop_hiding


def test_cells_are_hidden_whole_and_the_hidden_share_matches_p():
    rng = np.random.default_rng(0)
    mask = hidden_cells(rng, (7, 5), patch_size=2, p=0.5)
    assert mask.shape == (7, 5)
    for y in range(0, 7, 2):  # every 2 x 2 cell (cut at the border) is all hidden or all shown
        for x in range(0, 5, 2):
            cell = mask[y:y + 2, x:x + 2]
            assert cell.all() or not cell.any()
    assert not hidden_cells(rng, (9, 9), 3, 0.0).any() and hidden_cells(rng, (9, 9), 3, 1.0).all()
    share = hidden_cells(np.random.default_rng(1), (2000, 2000), 10, 0.3).mean()  # 40,000 cells: sd 0.0023
    assert abs(share - 0.3) < 0.01


def test_hidden_pixels_get_the_mean_colour_and_the_rest_is_unchanged():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    hidden = np.array([[True, False, False], [False, False, True]])
    out = hide(image, hidden, [10.4, 20.6, 30.0])
    assert out[0, 0].tolist() == [10, 21, 30] and out[1, 2].tolist() == [10, 21, 30]
    np.testing.assert_array_equal(out[~hidden], image[~hidden])
    assert image[0, 0].tolist() == [0, 1, 2]  # the input is not modified


def test_mean_colour_weighs_every_pixel_once():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.full((1, 4, 3), [40, 80, 120], np.uint8)  # 4 pixels each: the mean is halfway
    np.testing.assert_allclose(mean_colour([a, b]), [20, 40, 60])


def test_training_crops_are_hidden_with_the_training_sets_mean(tmp_path):
    write_fake_voc(tmp_path / "VOC2012", n_train=3)
    layout = VOCLayout(tmp_path / "VOC2012", VOC_CLASSES)
    table = layout.label_table("train")
    images = [np.asarray(Image.open(layout.root / "JPEGImages" / f"{i}.jpg").convert("RGB")) for i in table]
    mean = mean_colour(images)
    everything = crop_hiding(layout, table, {"method": "hide_and_seek", "hide_and_seek": {"patch_sizes": [8], "p": 1.0}})
    assert crop_hiding(layout, table, {"method": "cam", "hide_and_seek": {"patch_sizes": [8], "p": 1.0}}) is None
    hidden = CropDataset(layout, table, 32, (0.9, 1.0), seed=0, image_labels=table, hide=everything)[0]["image"]
    expected = to_tensor(np.broadcast_to(np.round(mean).astype(np.uint8), (32, 32, 3)).copy())
    torch.testing.assert_close(hidden, expected)
    # p = 0 gives the plain crop: hiding draws from the item's generator only after the crop is made
    nothing = crop_hiding(layout, table, {"method": "hide_and_seek", "hide_and_seek": {"patch_sizes": [8], "p": 0.0}})
    plain = CropDataset(layout, table, 32, (0.9, 1.0), seed=0, image_labels=table)[1]["image"]
    torch.testing.assert_close(CropDataset(layout, table, 32, (0.9, 1.0), seed=0, image_labels=table,
                                           hide=nothing)[1]["image"], plain)


def test_the_grid_size_is_drawn_per_image_from_the_official_set_and_0_hides_nothing():
    from wsss_steps.lib.config import section_defaults
    from wsss_steps.methods.hide_and_seek import draw_patch_size

    # kkanshul/Hide-and-Seek hide_patch.py:15: grid_sizes=[0,16,32,44,56]; :21 grid_size = grid_sizes[random.randint(0,
    # len(grid_sizes)-1)], once per image; :18 hide_prob = 0.5; a grid size of 0 hides no patch
    official = [0, 16, 32, 44, 56]
    defaults = section_defaults("classifier", {"method": "hide_and_seek"})["hide_and_seek"]
    assert defaults == {"patch_sizes": official, "p": 0.5}
    rng = np.random.default_rng(0)
    drawn = [draw_patch_size(rng, official) for _ in range(5000)]
    counts = np.bincount([official.index(s) for s in drawn], minlength=5) / 5000
    np.testing.assert_allclose(counts, 0.2, atol=0.02)
    assert not hidden_cells(rng, (40, 30), 0, p=1.0).any()

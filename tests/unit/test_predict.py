"""The pure parts of wsss_steps.predict: which files it reads, where it writes, the overlay."""

import numpy as np

from wsss_steps.predict import image_files, outputs_of, overlay


def test_images_are_found_in_nested_folders_and_mirrored_under_out(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for name in ("x.JPG", "a/y.png", "a/b/z.jpeg", "notes.txt", ".hidden/w.jpg"):
        (tmp_path / name).write_bytes(b"")
    found = image_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/b/z.jpeg", "a/y.png", "x.JPG"]
    label, over = outputs_of(tmp_path / "a" / "b" / "z.jpeg", tmp_path, tmp_path / "out")
    assert label == tmp_path / "out" / "a" / "b" / "z.png" and over == tmp_path / "out" / "a" / "b" / "z_overlay.jpg"


def test_overlay_blends_object_pixels_half_way_and_leaves_background():
    image = np.full((1, 2, 3), 100, np.uint8)
    labels = np.array([[0, 1]], np.uint8)
    palette = [0, 0, 0, 200, 0, 0] + [0] * (3 * 254)
    out = overlay(image, labels, palette)
    assert out[0, 0].tolist() == [100, 100, 100]  # background unchanged
    assert out[0, 1].tolist() == [150, 50, 50]  # (100 + 200) / 2, (100 + 0) / 2

"""Image files: user images scaled to the frame, pixel bombs refused from the header, lossless frame files."""

import numpy as np
import pytest

from animator.errors import AnimatorError
from animator.images import MAX_IMAGE_PIXELS, load_frame, load_image, save_frame
from animator.testing.images import png_declaring


def test_load_image_covers_and_crops(tmp_path):
    from PIL import Image

    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :100] = 255  # left half white
    Image.fromarray(img).save(tmp_path / "i.png")
    out = load_image(tmp_path / "i.png", width=64, height=64)
    assert out.shape == (64, 64, 3)
    # centre crop of a 2:1 image into a square keeps the middle: white on the left half, black on the right.
    assert out[:, :28].mean() > 250 and out[:, 36:].mean() < 5


@pytest.mark.parametrize("suffix", [".png", ".qoi"])
def test_saved_frames_are_lossless_and_never_half_written(tmp_path, suffix):
    frame = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / f"000001{suffix}"
    save_frame(path, frame)
    assert np.array_equal(load_frame(path), frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # the hidden temporary name is gone


# ------------------------------------------------------------------------------------------------------ bounded images


@pytest.mark.parametrize("side,shown", [(9000, "9000x9000 pixels"), (20000, "400 megapixels")])
def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, side, shown):
    assert side * side > MAX_IMAGE_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(side, side))
    with pytest.raises(AnimatorError, match=shown) as caught:
        load_image(path, width=64, height=64)
    assert str(path) in str(caught.value) and "64 megapixels" in str(caught.value)


def test_a_damaged_image_or_frame_names_the_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(AnimatorError, match="cannot read image"):
        load_image(text, width=8, height=8)
    for name, data in [("000001.qoi", b""), ("000002.qoi", b"qoif" + b"\0" * 30), ("000003.png", b"\x89PNG\r\n")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AnimatorError, match="cannot read the frame") as caught:
            load_frame(tmp_path / name)
        assert caught.value.file == str(tmp_path / name)

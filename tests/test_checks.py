"""The shared entry checks: each refusal names the argument and says what was expected."""

import numpy as np
import pytest
import torch

from animator.checks import check_bchw
from animator.color import match_color
from animator.errors import AnimatorError
from animator.geometry.flow import warp_by_flow


@pytest.mark.parametrize(
    "value, channels, min_pixels, words",
    [
        (np.zeros((1, 3, 4, 4), np.float32), 3, 1, "must be a torch.Tensor (B,3,H,W), got ndarray"),
        (torch.zeros(3, 4, 4), 3, 1, "must have shape (B,3,H,W), got (3, 4, 4)"),
        (torch.zeros(1, 4, 4, 4), 3, 1, "must have shape (B,3,H,W)"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), 3, 1, "must be a floating-point tensor, got dtype torch.uint8"),
        (torch.zeros(1, 3, 1, 1), 3, 2, "must have at least 2 pixels"),
        (torch.zeros(1, 1, 4, 4), 2, 1, "must have shape (B,2,H,W)"),
    ],
)
def test_check_bchw_refuses_with_the_argument_named(value, channels, min_pixels, words):
    with pytest.raises(AnimatorError) as caught:
        check_bchw(value, "frame", channels, min_pixels)
    assert caught.value.field == "frame"
    assert words in str(caught.value)


def test_check_bchw_accepts_any_channel_count_when_asked_and_returns_the_tensor():
    value = torch.zeros(2, 5, 3, 3)
    assert check_bchw(value, "x", channels=None) is value


def test_callers_name_their_own_arguments():
    image = torch.rand(1, 3, 8, 8)
    with pytest.raises(AnimatorError) as caught:
        match_color(image, torch.rand(1, 4, 8, 8))
    assert caught.value.field == "reference"
    with pytest.raises(AnimatorError) as caught:
        warp_by_flow(image, torch.zeros(1, 3, 8, 8))
    assert caught.value.field == "flow"

"""The examples in the geometry docstrings run and print what they say."""

import doctest

import pytest

from animator.geometry import camera, warp2d, warp3d


@pytest.mark.parametrize("module", [camera, warp2d, warp3d], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

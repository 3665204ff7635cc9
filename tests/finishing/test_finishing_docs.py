"""The examples in the finishing modules' docstrings run and give what they show."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name", ["animator.finishing.tiles", "animator.finishing.interpolate", "animator.finishing.camera_interp"]
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

"""Depth tests run single-threaded: the tiny models are too small to gain from threads, and on a shared 2-core CI
runner torch's worker threads spin against the other test processes (10x slower calls, measured)."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_thread):
    yield

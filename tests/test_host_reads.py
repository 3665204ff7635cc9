"""animator.testing.host_reads: what counts as a GPU wait, checked on the CPU."""

from __future__ import annotations

import doctest

import numpy as np
import torch

from animator.devices import upload
from animator.testing import host_reads, launches
from animator.testing.host_reads import HostReads


def test_the_testing_modules_examples_hold():
    for module in (host_reads, launches):
        assert doctest.testmod(module).failed == 0


def test_read_backs_and_uploads_count_but_host_tensors_and_pinned_uploads_do_not():
    on_device = torch.ones(4)
    with HostReads() as reads:
        on_device.sum().item()  # read-back
        torch.tensor([1.0, 2.0], device=on_device.device)  # made on the device from host numbers
        torch.as_tensor(np.zeros(3), dtype=torch.float32, device=on_device.device)
        on_device.new_tensor([3.0])  # new_tensor: on its tensor's device
        host = torch.tensor([1.0, 2.0])  # on the host: free
        upload(host, on_device.device)  # the loop's way: pinned, no wait
        torch.as_tensor(on_device, device=on_device.device)  # already a tensor there: no copy
    assert reads.count == 4, [site.split(" ")[0] for site in reads.where]
    assert all(site.startswith("tests/test_host_reads.py:") for site in reads.where), dict(reads.where)

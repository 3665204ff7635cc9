"""Flow estimators on rendered frames with known flow (textured photographs moved by a known field)."""

import importlib.util

import cv2
import numpy as np
import pytest
import torch

from animator.backends.flow import FLOW_ESTIMATORS, FlowEstimator, load_flow_estimator
from animator.backends.flow.synthetic import sliding_patch_pair, smooth_flow_field, warped_pair
from animator.errors import AnimatorError
from animator.geometry.flow import consistency_mask, warp_by_flow

skimage_data = pytest.importorskip("skimage.data")


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def camera_pair():
    """Astronaut moved by a translation (3.3, -2.1) px + 2% zoom + 1 degree roll: up to ~6 px."""
    return warped_pair(skimage_data.astronaut(), smooth_flow_field((120, 160)), scale=1.5, origin=(150.0, 60.0))


def textured(image: torch.Tensor, border: int = 8) -> torch.Tensor:
    """(1,1,H,W) bool: pixels with image gradient (flow is defined there), away from the border."""
    grey = cv2.cvtColor((image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    local = cv2.GaussianBlur(gradient, (0, 0), 3)
    mask = torch.from_numpy(local > np.percentile(local, 30))
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = False, False, False, False
    return mask[None, None]


def end_point_error(flow: torch.Tensor, truth: torch.Tensor, where: torch.Tensor) -> float:
    return float((flow - truth).norm(dim=1, keepdim=True)[where].mean())


@pytest.mark.parametrize(
    "name, max_epe",
    [("dis_medium", 0.5), ("dis_fine", 0.5), ("dis_fast", 0.6), ("dis_ultrafast", 0.75), ("farneback", 0.75)],
)
def test_end_point_error_on_textured_regions(camera_pair, name, max_epe):
    estimator = load_flow_estimator(name)
    assert isinstance(estimator, FlowEstimator) and estimator.name == name
    flow = estimator(camera_pair.source, camera_pair.target)
    assert flow.shape == (1, 2, 120, 160) and flow.dtype == torch.float32
    where = textured(camera_pair.target) & ~camera_pair.leaves_frame
    assert end_point_error(flow, camera_pair.flow, where) <= max_epe
    # The convention, not just the magnitude: the sign-flipped flow is far off.
    assert end_point_error(-flow, camera_pair.flow, where) > 4.0


def test_estimated_flow_warps_target_onto_source(camera_pair):
    flow = load_flow_estimator("dis_medium")(camera_pair.source, camera_pair.target)
    inside = textured(camera_pair.target) & ~camera_pair.leaves_frame
    error = (warp_by_flow(camera_pair.target, flow) - camera_pair.source).abs().mean(1, keepdim=True)[inside].mean()
    unwarped = (camera_pair.target - camera_pair.source).abs().mean(1, keepdim=True)[inside].mean()
    assert error < 0.25 * unwarped


def test_batch_and_reuse_give_the_same_flow(camera_pair):
    estimator = load_flow_estimator("dis_fast")
    single = estimator(camera_pair.source, camera_pair.target)
    batch = estimator(
        torch.cat([camera_pair.target, camera_pair.source]), torch.cat([camera_pair.source, camera_pair.target])
    )
    assert batch.shape == (2, 2, 120, 160)
    assert torch.allclose(batch[1:], single)  # same object, second call: no state leaks between calls
    # frame order reversed: the flow points the other way
    assert float((batch[0] + single[0]).abs().mean()) < 0.25 * float(single[0].abs().mean())


def test_mask_with_estimated_flow_finds_the_occlusion():
    """A 96 px patch sliding 20 px over a background moving (2, 1) px: the mask built from estimated flows finds
    the occluded strip. Its other unreliable pixels must be pixels where the estimated flow really is wrong."""
    pair = sliding_patch_pair(
        skimage_data.astronaut(),
        skimage_data.chelsea(),
        size=(192, 256),
        bg_step=(2.0, 1.0),
        fg_step=(20.0, 0.0),
        box=(48, 48, 96, 96),
    )
    estimator = load_flow_estimator("dis_fine")
    flow_fw, flow_bw = estimator(pair.source, pair.target), estimator(pair.target, pair.source)
    unreliable = ~consistency_mask(flow_fw, flow_bw, beta=2.0, motion_boundaries=False, out_of_frame=False)
    occluded = pair.occluded
    recall = float((unreliable & occluded).sum() / occluded.sum())
    iou = float((unreliable & occluded).sum() / (unreliable | occluded).sum())
    flow_wrong = (flow_fw - pair.flow).norm(dim=1, keepdim=True) > 1.0
    precision = float((unreliable & (occluded | flow_wrong)).sum() / unreliable.sum())
    assert recall >= 0.9
    assert iou >= 0.6
    assert precision >= 0.85
    # and a mask that ignored the backward flow (everything reliable) or flagged the whole patch would fail:
    assert float((unreliable & ~occluded & ~flow_wrong).sum()) < 0.15 * float(unreliable.sum())


def test_flow_is_returned_on_the_images_device_and_rejects_bad_pairs(camera_pair):
    estimator = load_flow_estimator("dis_ultrafast")
    flow = estimator(camera_pair.source.double(), camera_pair.target.double())
    assert flow.dtype == torch.float32 and flow.device == camera_pair.source.device
    with pytest.raises(AnimatorError, match="same shape"):
        estimator(camera_pair.source, camera_pair.target[..., :-1])
    with pytest.raises(AnimatorError, match=r"\(B,3,H,W\)"):
        estimator(camera_pair.source[:, :1], camera_pair.target[:, :1])
    with pytest.raises(AnimatorError, match="float"):
        estimator((camera_pair.source * 255).to(torch.uint8), (camera_pair.target * 255).to(torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_images_give_cuda_flow(camera_pair):
    flow = load_flow_estimator("dis_medium")(camera_pair.source.cuda(), camera_pair.target.cuda())
    assert flow.is_cuda
    where = textured(camera_pair.target) & ~camera_pair.leaves_frame
    assert end_point_error(flow.cpu(), camera_pair.flow, where) <= 0.5


def test_unknown_estimator_lists_the_valid_names():
    with pytest.raises(AnimatorError) as info:
        load_flow_estimator("dis_mediun")
    message = str(info.value)
    assert "did you mean 'dis_medium'" in message
    assert all(name in message for name in FLOW_ESTIMATORS)


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_raft_without_torchvision_says_what_to_install():
    with pytest.raises(AnimatorError, match=r"animator\[raft\]"):
        load_flow_estimator("raft_small")


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="RAFT needs the optional torchvision")
def test_raft_without_weights_says_where_to_put_them(tmp_path):
    with pytest.raises(AnimatorError, match="no RAFT small weights"):
        load_flow_estimator("raft_small", weights=tmp_path / "missing.pth")


def test_cadence_tween_from_estimated_flows_moves_the_full_distance():
    """Flow-guided cadence end to end: flows estimated between two frames 12 px apart; the half-way tween is measured
    6 px from each (Deforum's cadence normalises flows to <= 1 px and would land under 1 px)."""
    from animator.backends.flow.synthetic import render
    from animator.geometry.flow import flow_tween

    texture = skimage_data.coffee()

    def shifted(dx):
        image = render(texture, lambda x, y: (x - dx + 60.0, y - 0.5 * dx + 60.0), (96, 128))
        return torch.from_numpy(image).permute(2, 0, 1)[None]

    prev_img, next_img = shifted(0.0), shifted(12.0)  # 12 px right and 6 px down
    estimator = load_flow_estimator("dis_medium")
    fw, bw = estimator(prev_img, next_img), estimator(next_img, prev_img)
    tween = flow_tween(prev_img, next_img, fw, bw, 0.5)
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))
    moved = estimator(prev_img, tween)[inner].flatten(2).median(dim=2).values[0]
    remaining = estimator(tween, next_img)[inner].flatten(2).median(dim=2).values[0]
    assert torch.allclose(moved, torch.tensor([6.0, 3.0]), atol=0.3)
    assert torch.allclose(remaining, torch.tensor([6.0, 3.0]), atol=0.3)


class _FakeRAFT(torch.nn.Module):
    """Stands in for torchvision's RAFT, which cannot be installed here (torchvision from PyPI does not import beside
    this torch). It records what it was given and returns a flow made from its inputs, so the wrapper's padding,
    normalisation, cropping and weight loading can be checked; RAFT's own accuracy is torchvision's business."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen = []

    def forward(self, image1, image2, num_flow_updates=12):
        self.seen.append((tuple(image1.shape), float(image1.min()), float(image1.max()), num_flow_updates))
        flow = torch.cat([image1.mean(1, keepdim=True), image2.mean(1, keepdim=True)], dim=1) * self.scale
        return [flow * 0.0, flow]  # RAFT returns every refinement step; the last is the answer


@pytest.fixture
def fake_torchvision(monkeypatch, tmp_path):
    import sys
    import types

    built = []

    def raft_small(weights=None, progress=True):
        assert weights is None  # the wrapper loads weights itself, never through torchvision's downloader
        built.append(_FakeRAFT())
        return built[-1]

    default = types.SimpleNamespace(url="https://example.invalid/raft_small_C_T_V2.pth")
    weights_enum = types.SimpleNamespace(DEFAULT=default)
    optical_flow = types.ModuleType("torchvision.models.optical_flow")
    optical_flow.raft_small, optical_flow.raft_large = raft_small, raft_small
    optical_flow.Raft_Small_Weights = optical_flow.Raft_Large_Weights = weights_enum
    models = types.ModuleType("torchvision.models")
    models.optical_flow = optical_flow
    torchvision = types.ModuleType("torchvision")
    torchvision.models = models
    for name, module in (
        ("torchvision", torchvision),
        ("torchvision.models", models),
        ("torchvision.models.optical_flow", optical_flow),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return built, tmp_path


def test_raft_wrapper_pads_normalises_crops_and_loads_weights(fake_torchvision):
    built, tmp_path = fake_torchvision
    with pytest.raises(AnimatorError, match="raft_small_C_T_V2.pth") as info:
        load_flow_estimator("raft_small")  # nothing in the hub cache yet
    assert "https://example.invalid/raft_small_C_T_V2.pth" in str(info.value)

    checkpoint = tmp_path / "hub" / "checkpoints" / "raft_small_C_T_V2.pth"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"scale": torch.tensor(2.0)}, checkpoint)
    estimator = load_flow_estimator("raft_small")
    assert estimator.name == "raft_small" and float(built[-1].scale) == 2.0  # the file's weights were loaded

    source, target = torch.full((1, 3, 30, 45), 0.75), torch.full((1, 3, 30, 45), 0.25)
    flow = estimator(source, target)
    shape, low, high, updates = built[-1].seen[-1]
    assert shape == (1, 3, 32, 48) and updates == 12  # padded up to multiples of 8
    assert (low, high) == (0.5, 0.5)  # 0.75 in [0, 1] is 0.5 in RAFT's [-1, 1]
    assert flow.shape == (1, 2, 30, 45) and flow.dtype == torch.float32  # cropped back
    assert torch.allclose(flow[:, 0], torch.tensor(1.0)) and torch.allclose(flow[:, 1], torch.tensor(-1.0))

    torch.save({"other": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(AnimatorError, match="could not load RAFT small weights"):
        load_flow_estimator("raft_small", weights=tmp_path / "wrong.pth")

"""warp_3d against ground truth: a ray-cast room with a floating box, seen from two camera poses."""

import functools
import math

import pytest
import torch
from geometry_raycast import DTYPE, intrinsics, iou, pose, psnr, render, room_with_box, true_visibility
from kornia.geometry.depth import warp_frame_depth

from animator.errors import AnimatorError
from animator.geometry import intrinsics_from_fov, motion_to_pose, warp_3d

HEIGHT, WIDTH, FOV = 96, 128, 60.0

# camera moves (world_from_cam of the destination; the source is the world frame)
MOVES = {
    "sideways": pose((0, 0, 0), (30, 0, 0)),
    "sideways_left": pose((0, 0, 0), (-30, 0, 0)),
    "forward_turning": pose((2, -3, 1), (10, -5, 25)),
    "backward": pose((0, 0, 0), (0, 0, -30)),
    "up_and_tilt": pose((-4, 0, 0), (0, -20, 0)),
}


@pytest.fixture(scope="module")
def scene():
    objects = room_with_box()
    K = intrinsics(FOV, HEIGHT, WIDTH)
    image, depth, _ = render(objects, K, torch.eye(4, dtype=DTYPE), HEIGHT, WIDTH)
    return objects, K, image, depth


def _truth(scene, move):
    return _ray_cast_destination(move)


@functools.cache
def _ray_cast_destination(move):
    """(true image, true depth, true visibility, dst_from_src) of the destination view, cast once per move."""
    objects, K = room_with_box(), intrinsics(FOV, HEIGHT, WIDTH)
    world_from_dst = MOVES[move]
    image, depth, points = render(objects, K, world_from_dst, HEIGHT, WIDTH)
    visible = true_visibility(objects, K, torch.eye(4, dtype=DTYPE), points, HEIGHT, WIDTH)
    return image, depth, visible, torch.linalg.inv(world_from_dst)  # dst_from_src, the source being the world


@pytest.mark.parametrize("move", list(MOVES))
def test_warp_matches_the_ray_cast_view(scene, move):
    _, K, image, depth = scene
    truth, truth_depth, visible, dst_from_src = _truth(scene, move)
    warped, valid, warped_depth = warp_3d(image.float(), depth.float(), K.float(), dst_from_src.float())
    both = valid & visible
    assert iou(valid, visible) >= 0.9
    assert psnr(warped.double(), truth, both) >= 30.0
    # the depth that travels with the frame is the true depth of what the destination sees, to within the depth
    # change across half a pixel (a point lands on the nearest pixel), which on the grazing floor reaches 2-3 %
    relative = ((warped_depth.double() - truth_depth).abs() / truth_depth)[both]
    assert (relative < 0.03).float().mean() > 0.97
    # a move that reveals anything must report it: fill="none" leaves those pixels black
    assert (~valid).any() and (warped[(~valid).expand_as(warped)] == 0).all()


@pytest.mark.parametrize("sampling", ["bicubic", "catmull_rom"])
def test_cubic_sampling_also_matches(scene, sampling):
    _, K, image, depth = scene
    truth, _, visible, dst_from_src = _truth(scene, "forward_turning")
    warped, valid, _ = warp_3d(image.float(), depth.float(), K.float(), dst_from_src.float(), sampling=sampling)
    assert psnr(warped.double(), truth, valid & visible) >= 30.0
    assert warped.min() >= 0 and warped.max() <= 1


@pytest.mark.parametrize("move", ["sideways", "sideways_left"])
def test_foreground_box_occludes_the_wall_after_a_sideways_move(scene, move):
    objects, K, image, depth = scene
    truth, truth_depth, visible, dst_from_src = _truth(scene, move)
    warped, valid, warped_depth = warp_3d(image.float(), depth.float(), K.float(), dst_from_src.float())
    _, _, points = render(objects, K, MOVES[move], HEIGHT, WIDTH)
    box = objects[2]
    on_box = ((points >= box.low - 1e-6) & (points <= box.high + 1e-6)).all(1)
    box_in_truth = on_box.reshape(truth_depth.shape)
    # where the destination sees the box, the warp shows the box (its depth and colour), not the wall that the
    # source saw beside it and that now projects there too: without a z-buffer, whichever point is written last
    # wins, and one of the two directions lets the wall through
    # (its front face; a side face turned towards the camera is new and rightly invalid)
    inner_box = box_in_truth & torch.roll(box_in_truth, 1, -1) & torch.roll(box_in_truth, -1, -1) & visible
    assert inner_box.sum() > 200
    assert valid[inner_box].all()
    assert (warped_depth[inner_box] < 350).all()  # the box spans z 280..340, the wall is at 600
    assert psnr(warped.double(), truth, inner_box) >= 30.0
    # the box slides over the wall faster than the wall does, uncovering wall on its other side that the source
    # never saw; that strip is invalid, not stretched box or smeared colour
    disoccluded = ~visible & ~box_in_truth
    assert disoccluded.sum() > 20
    assert (~valid[disoccluded]).float().mean() > 0.9


def test_agrees_with_kornia_given_the_true_destination_depth(scene):
    _, K, image, depth = scene
    truth, truth_depth, visible, dst_from_src = _truth(scene, "forward_turning")
    warped, valid, _ = warp_3d(image.float(), depth.float(), K.float(), dst_from_src.float())
    reference = warp_frame_depth(
        image.float(), truth_depth.float(), torch.linalg.inv(dst_from_src).float()[None], K.float()[None]
    )
    # kornia samples with the true destination depth but knows nothing of occlusion: compare where both apply
    assert psnr(warped.double(), reference.double(), valid & visible) >= 35.0


def test_identity_pose_returns_the_image(scene):
    _, K, image, depth = scene
    warped, valid, warped_depth = warp_3d(image.float(), depth.float(), K.float(), torch.eye(4))
    assert valid.all()
    assert torch.allclose(warped, image.float(), atol=1e-5)
    assert torch.allclose(warped_depth, depth.float())


def test_batch_matches_single_warps(scene):
    _, K, image, depth = scene
    poses = torch.stack([motion_to_pose(5.0, 0, 0, 0, 0, 0), motion_to_pose(0, 0, 20.0, 0, 2.0, 0)])
    images, depths = image.float().repeat(2, 1, 1, 1), depth.float().repeat(2, 1, 1, 1)
    batched, valid, _ = warp_3d(images, depths, K.float(), poses)
    for i in range(2):
        single, single_valid, _ = warp_3d(image.float(), depth.float(), K.float(), poses[i])
        assert torch.equal(valid[i], single_valid[0])
        assert torch.allclose(batched[i], single[0], atol=1e-6)
    assert not torch.allclose(batched[0], batched[1])


@pytest.mark.parametrize("fill", ["border", "reflection", "telea", "background"])
def test_fills_leave_valid_pixels_alone_and_fill_holes(scene, fill):
    _, K, image, depth = scene
    truth, _, _, dst_from_src = _truth(scene, "sideways")
    plain, valid, _ = warp_3d(image.float(), depth.float(), K.float(), dst_from_src.float())
    filled, filled_valid, filled_depth = warp_3d(
        image.float(), depth.float(), K.float(), dst_from_src.float(), fill=fill
    )
    assert torch.equal(valid, filled_valid)
    mask = valid.expand_as(plain)
    assert torch.allclose(filled[mask], plain[mask], atol=1e-6)
    holes = (~valid).expand_as(filled)
    assert (filled[holes] > 0.05).float().mean() > 0.9  # filled with picture, not left black
    assert (filled_depth > 0).all() and torch.isfinite(filled_depth).all()
    # colours in the holes come from the picture's own range, and are closer to the truth than black is
    assert (filled - truth.float()).abs()[holes].mean() < (truth.float()[holes]).mean()


def test_background_fill_copies_from_the_far_side():
    # a near square in front of a far wall, camera moves right: the hole opens right of the square
    height, width = 24, 32
    image = torch.zeros(1, 3, height, width)
    image[:, 0] = 1.0  # wall red
    depth = torch.full((1, 1, height, width), 1000.0)
    depth[..., 8:16, 10:18] = 100.0
    image[:, :, 8:16, 10:18] = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)  # square blue
    K = intrinsics_from_fov(60.0, height, width)
    pose = motion_to_pose(10.0, 0, 0, 0, 0, 0)
    warped, valid, warped_depth = warp_3d(image, depth, K, pose, fill="background")
    holes = ~valid[0, 0, 6:18, :]
    assert holes.any()
    rows, cols = torch.nonzero(holes, as_tuple=True)
    hole_colours = warped[0, :, 6:18, :][:, rows, cols]
    assert torch.allclose(hole_colours, torch.tensor([1.0, 0.0, 0.0]).view(3, 1).expand_as(hole_colours))
    assert torch.allclose(warped_depth[0, 0, 6:18, :][holes], torch.tensor(1000.0))


def test_float64_and_float16_inputs_keep_their_dtype(scene):
    _, K, image, depth = scene
    pose = motion_to_pose(5.0, 0, 0, 0, 0, 0)
    warped64, _, _ = warp_3d(image, depth, K, pose.double())
    warped16, _, depth16 = warp_3d(image.half(), depth.half(), K.float(), pose)
    assert warped64.dtype == torch.float64 and warped16.dtype == torch.float16 and depth16.dtype == torch.float16
    assert (warped16.float() - warped64.float()).abs().max() < 0.01


def _square_scene(z=200.0):
    image = torch.zeros(1, 3, 64, 64)
    depth = torch.full((1, 1, 64, 64), z)
    return image, depth, intrinsics_from_fov(40.0, 64, 64)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda i, d, k, p: (i[0], d, k, p), "image"),
        (lambda i, d, k, p: (i, d[:, :, :10], k, p), "depth"),
        (lambda i, d, k, p: (i, d.expand(1, 3, 64, 64), k, p), "depth"),
        (lambda i, d, k, p: (i, torch.zeros_like(d), k, p), "depth"),
        (lambda i, d, k, p: (i, -d, k, p), "depth"),
        (lambda i, d, k, p: (i, d.masked_fill(torch.rand_like(d) < 0.01, math.nan), k, p), "depth"),
        (lambda i, d, k, p: (i.masked_fill(torch.rand_like(i) < 0.01, math.nan), d, k, p), "image"),
        (lambda i, d, k, p: ((i * 255).to(torch.int32), d, k, p), "image"),
        (lambda i, d, k, p: (i, d.long(), k, p), "depth"),
        (lambda i, d, k, p: (i, d, k[:2], p), "K"),
        (lambda i, d, k, p: (i, d, k, p[:3]), "dst_from_src"),
        (lambda i, d, k, p: (i, d, k, p.masked_fill(torch.eye(4, dtype=torch.bool), math.nan)), "dst_from_src"),
        (lambda i, d, k, p: (i, d, k, p.repeat(3, 1, 1)), "dst_from_src"),
        (lambda i, d, k, p: (i, d, "K", p), "K"),
    ],
)
def test_bad_input_names_the_argument(change, field):
    image, depth, K = _square_scene()
    args = change(image, depth, K, torch.eye(4))
    with pytest.raises(AnimatorError) as info:
        warp_3d(*args)
    assert info.value.field == field


@pytest.mark.parametrize("option, value", [("sampling", "nearest-ish"), ("fill", "smart")])
def test_unknown_options_are_refused(option, value):
    image, depth, K = _square_scene()
    with pytest.raises(AnimatorError, match="use one of") as info:
        warp_3d(image, depth, K, torch.eye(4), **{option: value})
    assert info.value.field == option


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(scene):
    _, K, image, depth = scene
    _, _, _, dst_from_src = _truth(scene, "forward_turning")
    args = (image.float(), depth.float(), K.float(), dst_from_src.float())
    cpu_warped, cpu_valid, _ = warp_3d(*args)
    gpu_warped, gpu_valid, _ = warp_3d(*(a.cuda() for a in args))
    assert (gpu_valid.cpu() == cpu_valid).float().mean() > 0.999
    both = gpu_valid.cpu() & cpu_valid
    assert psnr(gpu_warped.cpu().double(), cpu_warped.double(), both) > 45


def test_moving_forward_magnifies_without_cracks():
    # a fronto-parallel wall at z=300, camera 30 forward: every destination pixel sees the wall, magnified 300/270
    height, width = 48, 64
    rows, cols = torch.meshgrid(torch.arange(height, dtype=DTYPE), torch.arange(width, dtype=DTYPE), indexing="ij")
    cx, cy = (width - 1) / 2, (height - 1) / 2

    def wall(u, v):  # smooth colours as a function of the source pixel
        return torch.stack(
            [0.5 + 0.4 * torch.sin(u / 5), 0.5 + 0.4 * torch.cos(v / 4), 0.5 + 0.3 * torch.sin((u + v) / 7)]
        )

    image = wall(cols, rows)[None].float()
    depth = torch.full((1, 1, height, width), 300.0)
    K = intrinsics_from_fov(50.0, height, width)
    warped, valid, _ = warp_3d(image, depth, K, motion_to_pose(0.0, 0.0, 30.0, 0, 0, 0))
    assert valid.all()  # a magnified surface leaves one-pixel cracks between splatted points: all closed
    scale = 300.0 / 270.0
    truth = wall(cx + (cols - cx) / scale, cy + (rows - cy) / scale)[None]
    assert psnr(warped.double(), truth, valid) >= 35.0


def test_a_one_pixel_disocclusion_is_not_bridged():
    # left half a near wall (z=100), right half a far wall (z=200); the camera moves right so that the near wall
    # slides 2 px left and the far wall 1 px: exactly one column of far wall, hidden in the source, opens up
    height, width = 16, 32
    K = intrinsics_from_fov(60.0, height, width)
    step = 200.0 / float(K[0, 0])  # f * step / 200 = 1 px
    edge = 15  # last near column in the source
    depth = torch.full((1, 1, height, width), 200.0)
    depth[..., : edge + 1] = 100.0
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    _, valid, _ = warp_3d(image, depth, K, motion_to_pose(step, 0.0, 0.0, 0, 0, 0))
    # the opened column lies between the near wall's new edge (edge - 2) and the far wall's (edge + 1 - 1)
    assert not valid[..., edge - 1].any()  # a crack fill here would stretch the near wall's edge over it
    assert valid[..., : edge - 1].all() and valid[..., edge : width - 1].all()


@pytest.mark.parametrize("fill", ["background", "border", "reflection", "none"])
@pytest.mark.parametrize("sampling", ["bilinear", "bicubic", "catmull_rom"])
def test_uint8_frames_warp_like_float_frames_rounded(scene, fill, sampling):
    """8-bit frames (sampled by OpenCV) give the float warp rounded to 8 bits, within OpenCV's fixed-point
    interpolation, and the same masks; a channels-last view of HxWx3 frames is accepted as it is."""
    _, K, image, depth = scene
    _, _, _, dst_from_src = _truth(scene, "forward_turning")
    frame = (image[0].float().permute(1, 2, 0) * 255).round().to(torch.uint8)  # HxWx3, as video frames are
    as_float = frame.permute(2, 0, 1)[None].float() / 255
    args = (depth.float(), K.float(), dst_from_src.float())
    expected, expected_valid, _ = warp_3d(as_float, *args, fill=fill, sampling=sampling)
    warped, valid, _ = warp_3d(frame.permute(2, 0, 1)[None], *args, fill=fill, sampling=sampling)
    assert warped.dtype == torch.uint8 and warped.shape == expected.shape
    assert torch.equal(valid, expected_valid)
    difference = (warped.float() - (expected * 255).round()).abs()
    assert difference.mean() < 0.5 and difference.max() <= 8, (difference.mean(), difference.max())
    assert psnr(warped.double() / 255, expected.double(), valid) >= 40.0


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_opencv_sampling_of_8_bit_frames_matches_grid_sample_for_any_output_size(mode):
    """OpenCV's maps are built from a grid whose size (the output's) need not be the image's: same pixels as
    grid_sample on the float frame, rounded, within OpenCV's fixed-point interpolation."""
    from animator.geometry.resample import resample
    from animator.geometry.warp3d import _sample

    generator = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(
        torch.rand(1, 3, 3, 5, generator=generator), size=(12, 20), mode="bilinear", align_corners=False
    )
    frame = (smooth * 255).round().to(torch.uint8)  # 1x3x12x20
    grid = torch.rand(1, 7, 9, 2, generator=generator) * 1.8 - 0.9  # 7x9 output, inside the image
    warped = _sample(frame, grid, mode, "border")
    expected = resample(frame.float(), grid, mode=mode, padding="border").round().clamp(0, 255)
    assert warped.shape == (1, 3, 7, 9)
    assert (warped.float() - expected).abs().max() <= 2


def test_uint8_frames_refuse_what_opencv_cannot_do(scene):
    _, K, image, depth = scene
    frame = (image.float() * 255).to(torch.uint8)
    with pytest.raises(AnimatorError, match="telea"):
        warp_3d(frame, depth.float(), K.float(), torch.eye(4), fill="telea")


@pytest.mark.parametrize("fill", ["background", "border", "none"])
@pytest.mark.parametrize("move", sorted(MOVES))
def test_gpu_hole_bookkeeping_gives_the_cpu_results(scene, move, fill, monkeypatch):
    """GPUs track holes as whole-image masks (no waits for the device), the CPU as index lists: same results.
    Checked here on the CPU by switching the path; a batch of two different depths checks the per-image indexing."""
    import animator.geometry.warp3d as warp3d_module

    _, K, image, depth = scene
    _, _, _, dst_from_src = _truth(scene, move)
    bumpy = depth.float() * (1 + 0.3 * torch.rand(depth.shape, generator=torch.Generator().manual_seed(0)))
    args = (
        torch.cat([image.float(), image.float().flip(-1)]),
        torch.cat([depth.float(), bumpy]),
        K.float(),
        dst_from_src.float(),
    )
    monkeypatch.setattr(warp3d_module, "_dense_holes", lambda device: False)
    sparse = warp_3d(*args, fill=fill)
    monkeypatch.setattr(warp3d_module, "_dense_holes", lambda device: True)
    dense = warp_3d(*args, fill=fill)
    assert (~dense[1]).sum() > 0  # the move reveals something
    assert (dense[1] == sparse[1]).float().mean() > 0.9995  # crack checks may round differently at a tie
    agree = (dense[1] == sparse[1]).expand_as(dense[0])
    torch.testing.assert_close(dense[0][agree], sparse[0][agree])
    torch.testing.assert_close(dense[2][agree[:, :1]], sparse[2][agree[:, :1]])


@pytest.mark.parametrize("fill", ["background", "reflection", "none"])
def test_the_reprojection_is_the_geometry_the_warp_samples_along(scene, fill):
    """``reproject_3d`` (latent feedback moves its latents along the grid) gives the warp's own mask and depth, and
    its grid samples the source to the warped image wherever a surface is visible."""
    from animator.geometry import reproject_3d
    from animator.geometry.resample import resample

    _, K, image, depth = scene
    args = (image.float(), depth.float(), K.float(), _truth(scene, "forward_turning")[3].float())
    warped = warp_3d(*args, fill=fill)
    moved = reproject_3d(*args[1:], fill=fill)
    assert torch.equal(moved.valid, warped.valid) and torch.equal(moved.depth, warped.depth)
    assert moved.grid.shape == (1, *image.shape[-2:], 2)
    sampled = resample(args[0], moved.grid, mode="bilinear", padding="border")
    visible = warped.valid.expand_as(sampled)
    torch.testing.assert_close(sampled[visible], warped.image[visible])
    warp_3d(*args, fill=fill)  # the next warp reuses the workspace: the reprojection's grid is its own
    torch.testing.assert_close(resample(args[0], moved.grid, mode="bilinear", padding="border"), sampled)


@pytest.mark.parametrize("fill", ["background", "border", "none"])
def test_compiled_warp_is_one_graph_and_gives_the_eager_result(scene, fill, traced):
    """``compile_mode`` runs the warp as ONE compiled graph (a graph break would raise: ``fullgraph``) with the hole
    bookkeeping that needs no host read-back, and gives what the eager warp gives, checked against the ray cast."""
    _, K, image, depth = scene
    true_image, _, visible, dst_from_src = _truth(scene, "forward_turning")
    args = (image.float(), depth.float(), K.float(), dst_from_src.float())
    eager = warp_3d(*args, fill=fill)
    compiled = warp_3d(*args, fill=fill, compile_mode="default")
    assert len(compiled) == 3
    assert (compiled[1] == eager[1]).float().mean() > 0.9995  # crack checks may round differently at a tie
    agree = (compiled[1] == eager[1]).expand_as(eager[0])
    torch.testing.assert_close(compiled[0][agree], eager[0][agree], atol=1e-5, rtol=0)
    torch.testing.assert_close(compiled[2][agree[:, :1]], eager[2][agree[:, :1]])
    assert psnr(compiled[0].double(), true_image, compiled[1] & visible) >= 30.0  # and still the right picture
    from animator import compiling

    assert compiling._compiled.cache_info().currsize == 1  # the compiled warp is what ran

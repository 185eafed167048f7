"""bigtrain_lab.augment against reference libraries (scipy, colorsys, PIL) and its own contracts:
same kind in and out, reproducible with a generator, batched == one by one."""

import colorsys

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from bigtrain_lab import augment as A
from bigtrain_lab.augment import photometric as P
from bigtrain_lab.augment.experiment import digits_as_images, small_subset, train_digits_cnn
from bigtrain_lab.augment.policy import OPERATIONS, apply_operation


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(8, 8), (9, 13), (12, 7, 3)])
@pytest.mark.parametrize("degrees", [0.0, 17.0, 90.0, -33.0, 180.0, 250.5])
def test_rotate_matches_scipy_grid_constant(rng, shape, degrees):
    img = rng.random(shape)
    expected = ndimage.rotate(img, degrees, reshape=False, order=1, mode="grid-constant", cval=0.0)
    np.testing.assert_allclose(A.rotate(img, degrees), expected, atol=1e-12)


def test_rotate_direction_is_counter_clockwise():
    img = np.zeros((5, 5))
    img[0, 2] = 1.0  # above the centre
    out = A.rotate(img, 90.0)
    assert np.unravel_index(np.argmax(out), out.shape) == (2, 0)  # now left of the centre


def test_affine_matches_scipy_affine_transform(rng):
    img = rng.random((11, 15))
    out = A.affine(img, angle=20.0, translate=(1.5, -2.0), scale=1.3, shear=12.0)
    # build the same inverse map for scipy (row, col coordinates)
    t, sh, s = np.deg2rad(20.0), np.tan(np.deg2rad(12.0)), 1.3
    rot_t = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])  # R^T in (x, y)
    lin_xy = np.array([[1, -sh], [0, 1]]) @ rot_t / s
    lin_rc = lin_xy[::-1, ::-1]  # swap x/y for (row, col)
    centre = np.array([(11 - 1) / 2, (15 - 1) / 2])
    offset = centre - lin_rc @ (centre + np.array([-2.0, 1.5]))
    expected = ndimage.affine_transform(img, lin_rc, offset=offset, order=1, mode="grid-constant", cval=0.0)
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_integer_translation_shifts_exactly(rng):
    img = rng.random((6, 7))
    out = A.affine(img, translate=(2, 1))
    np.testing.assert_allclose(out[1:, 2:], img[:-1, :-2])
    np.testing.assert_allclose(out[0], 0, atol=1e-12)
    np.testing.assert_allclose(out[:, :2], 0, atol=1e-12)


def test_flips_crop_pad_resize(rng):
    img = rng.random((6, 8, 3))
    np.testing.assert_array_equal(A.hflip(img), img[:, ::-1])
    np.testing.assert_array_equal(A.vflip(img), img[::-1])
    np.testing.assert_array_equal(A.crop(img, 1, 2, 3, 4), img[1:4, 2:6])
    np.testing.assert_array_equal(A.center_crop(img, (2, 4)), img[2:4, 2:6])
    np.testing.assert_array_equal(A.pad(img, 2)[2:-2, 2:-2], img)
    np.testing.assert_array_equal(A.pad(img, (1, 0, 0, 0), mode="edge")[:, 0], img[:, 0])
    assert A.resize(img, (3, 4)).shape == (3, 4, 3)
    with pytest.raises(ValueError):
        A.crop(img, 4, 0, 3, 3)


def test_resized_crop_of_output_size_copies_pixels(rng):
    img = rng.random((10, 10))
    np.testing.assert_allclose(A.resized_crop(img, 2, 3, 4, 5, (4, 5)), img[2:6, 3:8], atol=1e-12)


def test_kinds_round_trip(rng):
    arr = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    out = A.rotate(arr, 0.0)
    assert out.dtype == np.uint8 and np.array_equal(out, arr)
    pil = A.rotate(Image.fromarray(arr), 0.0)
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and np.array_equal(np.asarray(pil), arr)
    grey = Image.fromarray(arr[..., 0])
    assert A.hflip(grey).mode == "L"
    t = torch.tensor(arr).permute(2, 0, 1)
    out_t = A.rotate(t, 0.0)
    assert out_t.dtype == torch.uint8 and out_t.shape == t.shape and torch.equal(out_t, t)
    f32 = rng.random((5, 5)).astype(np.float32)
    assert A.rotate(f32, 10.0).dtype == np.float32
    batch = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    assert A.rotate(batch, 10.0).dtype == torch.float64


def test_bad_inputs_are_rejected():
    with pytest.raises(TypeError):
        A.rotate([[1, 2], [3, 4]], 10)
    with pytest.raises(TypeError):
        A.rotate(np.zeros((4, 4), dtype=bool), 10)
    with pytest.raises(ValueError):
        A.rotate(np.zeros((4, 4, 5)), 10)
    with pytest.raises(ValueError):
        A.affine(np.zeros((4, 4)), scale=0.0)
    with pytest.raises(ValueError):
        A.RandomHorizontalFlip(p=1.5)


def test_gaussian_blur_matches_scipy(rng):
    img = rng.random((10, 12))
    for sigma in (0.5, 1.0, 2.0):
        expected = ndimage.gaussian_filter(img, sigma, mode="mirror", truncate=3.0)
        np.testing.assert_allclose(A.gaussian_blur(img, sigma), expected, atol=1e-12)


def test_per_image_blur_in_a_batch_equals_one_by_one(rng):
    batch = torch.tensor(rng.random((3, 2, 9, 9)))
    sigmas = torch.tensor([0.4, 1.0, 2.0], dtype=torch.float64)
    out = P.gaussian_blur_batch(batch, sigmas)
    for i in range(3):
        torch.testing.assert_close(out[i], P.gaussian_blur_batch(batch[i:i + 1], float(sigmas[i]))[0])


def test_hsv_matches_colorsys(rng):
    rgb = torch.tensor(rng.random((1, 3, 4, 5)))
    hsv = P.rgb_to_hsv(rgb)
    for i in range(4):
        for j in range(5):
            np.testing.assert_allclose(hsv[0, :, i, j].numpy(), colorsys.rgb_to_hsv(*rgb[0, :, i, j].tolist()),
                                       atol=1e-12)
    torch.testing.assert_close(P.hsv_to_rgb(hsv), rgb)


def test_photometric_definitions(rng):
    img = rng.random((6, 6, 3))
    np.testing.assert_allclose(A.adjust_brightness(img, 0.5), img * 0.5)
    grey = 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]
    np.testing.assert_allclose(A.adjust_saturation(img, 0.0), np.repeat(grey[..., None], 3, 2), atol=1e-12)
    np.testing.assert_allclose(A.adjust_contrast(img, 0.0), np.full_like(img, grey.mean()), atol=1e-12)
    np.testing.assert_allclose(A.adjust_hue(img, 0.0), img, atol=1e-12)
    shifted = A.adjust_hue(img, 0.25)
    h = colorsys.rgb_to_hsv(*img[0, 0])
    np.testing.assert_allclose(shifted[0, 0], colorsys.hsv_to_rgb((h[0] + 0.25) % 1, h[1], h[2]), atol=1e-12)
    np.testing.assert_allclose(A.solarize(img, 0.5), np.where(img >= 0.5, 1 - img, img))
    u8 = (img * 255).astype(np.uint8)
    np.testing.assert_array_equal(A.posterize(u8, 3), u8 & 0b11100000)
    assert A.autocontrast(img * 0.5 + 0.2).min() == 0.0
    np.testing.assert_array_equal(A.erase(img, 1, 1, 2, 3)[1:3, 1:4], 0)


def test_random_transforms_are_reproducible_and_per_image():
    pipeline = A.Compose([A.RandomAffine(20, (0.1, 0.1), (0.9, 1.1), 5), A.ColorJitter(0.3, 0.3, 0.3, 0.1),
                          A.GaussianBlur((0.2, 1.0)), A.GaussianNoise(0.05), A.RandomErasing(0.5),
                          A.RandomHorizontalFlip(), A.RandAugment()])
    batch = torch.rand(1, 3, 16, 16).repeat(6, 1, 1, 1)
    a = pipeline(batch, A.make_generator(0))
    b = pipeline(batch, A.make_generator(0))
    c = pipeline(batch, A.make_generator(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(img.flatten()[:20].tolist()) for img in a}) == 6  # each image its own draw
    assert a.min() >= 0 and a.max() <= 1


def test_repr_rounds_float_noise():
    t = A.Compose([A.RandomAffine(degrees=69.99999999999999, scale=(1 - 0.7, 1 + 0.7)), A.ColorJitter(0.1 * 3)])
    assert repr(t) == ("Compose(transforms=[RandomAffine(degrees=(-70.0, 70.0), translate=None, scale=(0.3, 1.7), "
                       "shear=(0.0, 0.0), fill=0.0), ColorJitter(brightness=0.3, contrast=0.0, saturation=0.0, hue=0.0)])")
    assert A.format_value((0.5,)) == "(0.5,)" and A.format_value(True) == "True" and A.format_value(1e-7) == "1e-07"


def test_random_crop_and_resized_crop_shapes():
    x = torch.rand(5, 3, 32, 32)
    assert A.RandomCrop(32, padding=4)(x, A.make_generator(0)).shape == x.shape
    assert A.RandomResizedCrop(24)(x, A.make_generator(0)).shape == (5, 3, 24, 24)
    crops = A.RandomCrop(28)(x, A.make_generator(0))
    # integer offsets: each crop is exactly a window of its image
    found = [any(torch.equal(crops[i], x[i, :, t:t + 28, s:s + 28]) for t in range(5) for s in range(5))
             for i in range(5)]
    assert all(found)


def test_mixup_and_cutmix():
    x = torch.rand(4, 1, 8, 8)
    y = A.one_hot(torch.tensor([0, 1, 2, 3]), 4)
    perm = torch.tensor([1, 2, 3, 0])
    xm, ym = A.mixup(x, y, 0.3, perm)
    torch.testing.assert_close(xm, 0.3 * x + 0.7 * x[perm])
    torch.testing.assert_close(ym, 0.3 * y + 0.7 * y[perm])
    xc, yc = A.cutmix(x, y, (2, 2, 4, 4), perm)
    torch.testing.assert_close(xc[..., 2:6, 2:6], x[perm][..., 2:6, 2:6])
    torch.testing.assert_close(yc[:, :].sum(1), torch.ones(4))
    assert float(yc[0, 0]) == pytest.approx(1 - 16 / 64)
    xs, ys = A.MixUp(4, 0.4)(x, torch.tensor([0, 1, 2, 3]), A.make_generator(0))
    torch.testing.assert_close(ys.sum(1), torch.ones(4))
    xs2, _ = A.MixUp(4, 0.4)(x, torch.tensor([0, 1, 2, 3]), A.make_generator(0))
    assert torch.equal(xs, xs2)
    _, yc2 = A.CutMix(4)(x, torch.tensor([0, 1, 2, 3]), A.make_generator(3))
    torch.testing.assert_close(yc2.sum(1), torch.ones(4))
    with pytest.raises(ValueError):
        A.mixup(x, y, 1.5, perm)


def test_randaugment_operations_all_run():
    x = torch.rand(3, 3, 12, 12)
    for name in OPERATIONS:
        out = apply_operation(x, name, torch.full((3,), 0.2, dtype=torch.float64))
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(apply_operation(x, "identity", torch.zeros(3)), x)
    assert A.RandAugment(magnitude=0, operations=("rotate", "brightness"))(x, A.make_generator(0)).shape == x.shape
    with pytest.raises(ValueError):
        A.RandAugment(operations=("sharpness",))


def test_digits_experiment_helpers():
    from bigtrain_lab.data import load_dataset

    d = load_dataset("digits", seed=0)
    idx = small_subset(d.y_train, 3, seed=0)
    assert len(idx) == 30 and np.bincount(d.y_train[idx]).tolist() == [3] * 10
    x = digits_as_images(d.X_train[idx])
    assert x.shape == (30, 1, 8, 8) and float(x.max()) <= 1.0
    model = train_digits_cnn(x, torch.tensor(d.y_train[idx]), transform=A.RandomRotation(10), steps=3)
    assert model(x).shape == (30, 10)


def test_colour_shift_experiment_helpers():
    from bigtrain_lab.augment.experiment import INK, colour_cnn, colour_shift_experiment, colourize

    grey = torch.rand(6, 1, 8, 8)
    rgb = colourize(grey)
    assert rgb.shape == (6, 3, 8, 8)
    torch.testing.assert_close(rgb[:, 1:2], grey * INK[1])
    with pytest.raises(ValueError):
        colourize(rgb)
    assert colour_cnn()(rgb).shape == (6, 10)
    y = torch.arange(6) % 10
    shifted = {"same": rgb.clone(), "dark": A.adjust_brightness(rgb, 0.0)}
    (r,) = colour_shift_experiment(rgb, y, rgb, y, shifted, {"plain": {}}, seeds=[0], steps=2, progress=False)
    assert r.config == "plain" and r.changed["same"] == 0.0 and r.shifted_accuracy["same"] == r.accuracy
    assert 0.0 <= r.changed["dark"] <= 1.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_same_generator_same_result_on_the_gpu():
    pipeline = A.Compose([A.RandomAffine(20, (0.1, 0.1), (0.9, 1.1), 5), A.ColorJitter(0.3, 0.3, 0.3, 0.1),
                          A.GaussianBlur((0.2, 1.0)), A.GaussianNoise(0.05), A.RandomErasing(0.5),
                          A.RandomCrop(14, padding=2), A.RandAugment()])
    batch = torch.rand(8, 3, 16, 16)
    on_cpu = pipeline(batch, A.make_generator(0))
    on_gpu = pipeline(batch.cuda(), A.make_generator(0))
    assert on_gpu.is_cuda
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=1e-4)

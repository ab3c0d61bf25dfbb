"""albumentations adapters: dtypes, seeding by Compose(seed=...), agreement with kornia, argument errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch

A = pytest.importorskip("albumentations")
AA = pytest.importorskip("augment.albumentations")

BANK = np.random.default_rng(0).integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
ADAPTERS = {
    "clouds": lambda **kw: AA.RandomClouds(**kw),
    "snow": lambda **kw: AA.RandomSnowCover(**kw),
    "season": lambda **kw: AA.RandomSeasonShift(**kw),
    "haze": lambda **kw: AA.RandomHaze(**kw),
    "illumination": lambda **kw: AA.RandomIllumination(**kw),
    "camera": lambda **kw: AA.RandomCameraEffects(**kw),
    "abstraction": lambda **kw: AA.RandomEdgeAbstraction(**kw),
    "fda": lambda **kw: AA.FourierDomainAdaptation(BANK, **{"beta": (0.1, 0.3), **kw}),
    "simtoreal": lambda **kw: AA.SimToReal(strength=0.8, op_p=1.0, **kw),
}


@pytest.fixture(params=sorted(ADAPTERS))
def name(request):
    return request.param


def _image(dtype):
    img = np.random.default_rng(1).integers(20, 235, (24, 24, 3), dtype=np.uint8)
    return img if dtype == np.uint8 else img.astype(np.float32) / 255.0


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_dtype_shape_and_range(name, dtype):
    img = _image(dtype)
    out = A.Compose([ADAPTERS[name](p=1.0)], seed=0)(image=img)["image"]
    assert out.shape == img.shape and out.dtype == img.dtype
    if dtype == np.float32:
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert not np.array_equal(out, img)


def test_seeded_by_compose(name):
    img = _image(np.uint8)
    a = A.Compose([ADAPTERS[name](p=1.0)], seed=7)(image=img)["image"]
    b = A.Compose([ADAPTERS[name](p=1.0)], seed=7)(image=img)["image"]
    assert np.array_equal(a, b)
    # FDA draws only a window size and a bank index: one other seed may collide, four will not.
    others = [A.Compose([ADAPTERS[name](p=1.0)], seed=s)(image=img)["image"] for s in (8, 9, 10, 11)]
    assert not all(np.array_equal(a, c) for c in others)


def test_global_torch_rng_untouched(name):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    A.Compose([ADAPTERS[name](p=1.0)], seed=1)(image=_image(np.uint8))
    assert torch.equal(torch.rand(3), expected)


def test_p0_is_identity(name):
    img = _image(np.uint8)
    assert np.array_equal(A.Compose([ADAPTERS[name](p=0.0)], seed=0)(image=img)["image"], img)


def test_batch_of_images(name):
    images = np.stack([_image(np.uint8)] * 2)
    out = A.Compose([ADAPTERS[name](p=1.0)], seed=0)(images=images)["images"]
    assert out.shape == images.shape and out.dtype == np.uint8


def test_float_output_equals_the_kornia_op():
    import augment

    img = _image(np.float32)
    adapter = AA.RandomHaze(p=1.0)
    out = adapter.apply(img, torch_seed=123)
    torch.manual_seed(123)
    ref = augment.RandomHaze(p=1.0)(torch.from_numpy(img).permute(2, 0, 1)[None])
    np.testing.assert_allclose(out, ref[0].permute(1, 2, 0).numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "factory, arg",
    [
        (lambda: AA.RandomClouds(opacity=(0.9, 0.2)), "opacity"),
        (lambda: AA.RandomClouds(opacity=(-0.5, 0.2)), "opacity"),
        (lambda: AA.RandomSnowCover(amount=(1.0, 0.0)), "amount"),
        (lambda: AA.RandomHaze(density=-1.0), "density"),
        (lambda: AA.RandomIllumination(gamma=(2.0, 1.0)), "gamma"),
        (lambda: AA.RandomCameraEffects(blur_sigma=(3.0, 1.0)), "blur_sigma"),
        (lambda: AA.RandomEdgeAbstraction(levels=(1.0, 3.0)), "levels"),
        (lambda: AA.FourierDomainAdaptation(BANK, beta=(0.3, 0.1)), "beta"),
        (lambda: AA.SimToReal(strength=2.0), "strength"),
        (lambda: AA.SimToReal(op_p=1.5), "^op_p must be a number in"),  # was named `p`, the composition's
        (lambda: AA.RandomHaze(p=1.5), "p"),
    ],
)
def test_bad_arguments_name_the_argument(factory, arg):
    with pytest.raises(ValueError, match=arg):
        factory()


def test_bad_images():
    t = AA.RandomHaze(p=1.0)
    with pytest.raises(TypeError, match="image"):
        t(image=np.zeros((8, 8, 3), np.float64))
    with pytest.raises(ValueError, match=r"image must have shape \(H, W, 3\) \(RGB\) or \(H, W, 4\) \(RGBA"):
        t(image=np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(ValueError, match="bank"):
        AA.FourierDomainAdaptation(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="bank"):
        AA.FourierDomainAdaptation("photos/")


def test_float_images_outside_the_unit_range_are_refused_not_clamped():
    # images in [0, 255] as float32, or after A.Normalize, were clamped: a white image, no error
    t = AA.RandomClouds(p=1.0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"image: float32 images must be in \[0, 1\] .*got values in \[0.0\d*, 25\d"):
        t(image=rng.random((16, 24, 3), dtype=np.float32) * 255)
    with pytest.raises(ValueError, match=r"\[0, 1\] .*got values in \[-2.1"):
        A.Compose([A.Normalize(), AA.RandomHaze(p=1.0)], seed=0)(image=rng.integers(0, 256, (16, 24, 3), np.uint8))
    with pytest.raises(ValueError, match=r"images: float32 images must be in \[0, 1\]"):
        t.apply_to_images(rng.random((2, 16, 24, 3), dtype=np.float32) * 3)  # [0, 2] is a resize's margin
    with pytest.raises(ValueError, match=r"got values in \[nan"):
        t(image=np.full((16, 24, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"bank: float32 images must be in \[0, 1\]"):
        AA.FourierDomainAdaptation(rng.random((2, 16, 24, 3), dtype=np.float32) * 255)
    edge = np.zeros((16, 24, 3), np.float32)
    edge[0, 0] = 1.0
    assert t(image=edge)["image"].shape == (16, 24, 3)  # 0 and 1 themselves are fine


def test_a_bank_of_mixed_or_no_images_is_refused_by_name():
    u8 = BANK[0]
    with pytest.raises(ValueError, match=r"bank images must share one shape and dtype: .*bank\[1\] is \(16, 24, 3\)"):
        AA.FourierDomainAdaptation([u8, u8[:16]])
    with pytest.raises(ValueError, match=r"bank\[1\] is \(24, 24, 3\) float32"):  # the uint8 image became white
        AA.FourierDomainAdaptation([u8, u8.astype(np.float32) / 255])
    with pytest.raises(ValueError, match="at least one image"):
        AA.FourierDomainAdaptation([])
    with pytest.raises(ValueError, match=r"image must be at least 1 x 1 pixels"):
        AA.RandomCameraEffects(p=1.0)(image=np.zeros((0, 0, 3), np.uint8))


def test_augment_imports_without_albumentations():
    code = (
        "import sys; sys.modules['albumentations'] = None\n"
        "import augment, torch\n"
        "assert augment.RandomClouds(p=1.0)(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)\n"
        "try:\n    import augment.albumentations\nexcept ImportError as e:\n    assert 'pip install' in str(e)\n"
        "else:\n    raise SystemExit('augment.albumentations imported without albumentations')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_read_only_image_is_augmented_without_a_warning():
    # np.asarray(PIL.Image.open(path)) is read-only: torch.from_numpy warned "The given NumPy array is not writable"
    # from augment/albumentations.py, an error under -W error. torch warns once per process: a fresh one is asked.
    code = (
        "import warnings, numpy as np, albumentations as A, augment.albumentations as AA\n"
        "warnings.simplefilter('error')\n"
        "img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)\n"
        "for im in (img, img.astype(np.float32) / 255):\n"
        "    frozen = im.copy(); frozen.flags.writeable = False\n"
        "    run = lambda x: A.Compose([AA.RandomClouds(p=1.0)], seed=0)(image=x)['image']\n"
        "    assert np.array_equal(run(frozen), run(im))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_serialisation_round_trip():
    pipeline = A.Compose([AA.RandomClouds(opacity=(0.3, 0.6), p=0.3), AA.RandomHaze(p=1.0)], seed=3)
    restored = A.from_dict(A.to_dict(pipeline))
    assert isinstance(restored.transforms[0], AA.RandomClouds)
    assert tuple(restored.transforms[0].opacity) == (0.3, 0.6) and restored.transforms[0].p == 0.3


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_ranges_given_as_numpy_or_torch_values_are_saved_as_numbers(fmt, tmp_path):
    # check_range takes arrays, tensors and numpy scalars; A.save then raised "Object of type ndarray is not JSON
    # serializable" (YAML: "cannot represent an object") and left a partial file, as albumentations' own do not
    clouds = AA.RandomClouds(opacity=np.array([0.5, 0.9]), coverage=(np.float32(0.25), 0.5),
                             softness=torch.tensor([0.25, 0.5]), octaves=np.int64(3), p=np.float64(1.0))
    path = tmp_path / f"pipeline.{fmt}"
    A.save(A.Compose([clouds, AA.SimToReal(strength=np.float32(0.5))]), str(path), data_format=fmt)
    restored = A.load(str(path), data_format=fmt).transforms[0]
    assert (list(restored.opacity), list(restored.coverage), list(restored.softness), restored.octaves) == (
        [0.5, 0.9], [0.25, 0.5], [0.25, 0.5], 3)
    image = _image(np.uint8)
    assert np.array_equal(A.Compose([restored], seed=2)(image=image)["image"],
                          A.Compose([clouds], seed=2)(image=image)["image"])


def test_repr_summarises_the_bank_and_keeps_the_arguments():
    text = repr(AA.FourierDomainAdaptation(BANK, beta=(0.02, 0.04), p=0.7))
    assert text == "FourierDomainAdaptation(p=0.7, bank=<ndarray (2, 24, 24, 3) uint8>, beta=(0.02, 0.04))"
    assert repr(AA.RandomClouds(opacity=(0.3, 0.6), p=0.3)).startswith("RandomClouds(p=0.3, ")
    assert "opacity=(0.3, 0.6)" in repr(AA.RandomClouds(opacity=(0.3, 0.6), p=0.3))


def test_one_call_draws_once_for_image_images_and_volume(name):
    # albumentations' convention: every item of a call gets the same parameters (its own transforms do)
    img = _image(np.uint8)
    stack = np.stack([img, img, img])
    native = A.Compose([A.RandomFog(p=1.0)], seed=0)(image=img, images=stack)
    assert all(np.array_equal(native["images"][i], native["image"]) for i in range(3))
    out = A.Compose([ADAPTERS[name](p=1.0)], seed=0)(image=img, images=stack, volume=stack)
    assert not np.array_equal(out["image"], img)
    for key in ("images", "volume"):
        assert all(np.array_equal(out[key][i], out["image"]) for i in range(3)), key


def test_the_same_seed_gives_the_same_image_from_several_threads():
    # the torch RNG that the adapters seed is one per process: two threads must not mix their seeds
    from concurrent.futures import ThreadPoolExecutor

    adapter = AA.RandomClouds(p=1.0)
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    expected = [adapter.apply(img, torch_seed=s) for s in range(40)]
    torch.manual_seed(0)
    untouched = torch.rand(3)
    torch.manual_seed(0)
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda s: adapter.apply(img, torch_seed=s), range(40)))
    assert sum(not np.array_equal(a, b) for a, b in zip(expected, got)) == 0
    assert torch.equal(torch.rand(3), untouched)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_an_rgba_image_is_augmented_in_its_colours_and_keeps_its_alpha(name, dtype):
    # renders saved with an alpha channel (a Cesium screenshot, say) were refused: "must have shape (H, W, 3)"
    rgb = _image(dtype)
    alpha = np.linspace(0, 255, rgb.shape[0] * rgb.shape[1]).reshape(*rgb.shape[:2], 1).astype(np.uint8)
    rgba = np.concatenate([rgb, alpha if dtype == np.uint8 else alpha.astype(np.float32) / 255], axis=-1)
    out = A.Compose([ADAPTERS[name](p=1.0)], seed=3)(image=rgba, images=np.stack([rgba, rgba]))
    expected = A.Compose([ADAPTERS[name](p=1.0)], seed=3)(image=rgb)["image"]
    assert out["image"].shape == rgba.shape and out["image"].dtype == rgba.dtype
    np.testing.assert_array_equal(out["image"][..., :3], expected)
    np.testing.assert_array_equal(out["image"][..., 3], rgba[..., 3])
    np.testing.assert_array_equal(out["images"][1], out["image"])


def test_uint8_output_is_the_kornia_op_rounded_to_the_nearest_level():
    # uint8 in: the op runs on img / 255 and its float output v comes back as round(255 * v), not floor.
    import augment

    img = _image(np.uint8)
    out = AA.RandomHaze(p=1.0).apply(img, torch_seed=5)
    torch.manual_seed(5)
    ref = augment.RandomHaze(p=1.0)(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0)
    scaled = ref[0].permute(1, 2, 0).numpy() * np.float32(255.0)  # the float32 product, as the adapter forms it
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out.astype(np.int64), np.rint(scaled).astype(np.int64))
    assert (np.abs(scaled - np.floor(scaled)) > 0.5).mean() > 0.2  # many pixels where floor would differ


KORNIA_OPS = {
    "clouds": "RandomClouds",
    "snow": "RandomSnowCover",
    "season": "RandomSeasonShift",
    "haze": "RandomHaze",
    "illumination": "RandomIllumination",
    "camera": "RandomCameraEffects",
    "abstraction": "RandomEdgeAbstraction",
    "fda": "FourierDomainAdaptation",
    "simtoreal": "SimToReal",
}


def test_adapter_defaults_are_the_kornia_ops_defaults(name):
    # "see augment.X for the arguments": every argument the adapter shares with the kornia op defaults alike.
    # SimToReal's op_p is the kornia composition's p (the adapter's own p is albumentations' probability).
    import inspect

    import augment

    adapter = inspect.signature(getattr(AA, KORNIA_OPS[name]).__init__).parameters
    op = inspect.signature(getattr(augment, KORNIA_OPS[name]).__init__).parameters
    pairs = [(n, n) for n in adapter if n in op and n not in ("self", "p")]
    pairs.append(("op_p", "p") if name == "simtoreal" else ("p", "p"))
    assert len(pairs) >= 2
    for a, k in pairs:
        assert adapter[a].default == op[k].default, (a, adapter[a].default, op[k].default)


def test_images_of_another_shape_or_dtype_are_refused_by_name():
    t = AA.RandomHaze(p=1.0)
    with pytest.raises(ValueError, match=r"image must be at least 1 x 1 pixels, got shape \(0, 8, 3\)"):
        t.apply(np.zeros((0, 8, 3), np.uint8))  # one side empty (was the kornia op's "input must be ...")
    with pytest.raises(ValueError, match=r"image must have shape \(H, W, 3\) \(RGB\)"):
        t.apply(np.zeros((1, 8, 8, 3), np.uint8))  # a batch passed as `image`
    for grey in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 1), np.uint8)):
        with pytest.raises(ValueError, match=r"got \(8, 8(, 1)?\)\. For a greyscale image put A\.ToRGB\(\) before it"):
            t.apply(grey)
        assert A.Compose([A.ToRGB(p=1.0), t])(image=grey)["image"].shape == (8, 8, 3)  # what the message says works
    with pytest.raises(ValueError, match=r"images must be a numpy array \(N, H, W, 3\)"):
        t.apply_to_images(np.zeros((8, 8, 3), np.uint8))  # one image passed as `images`
    with pytest.raises(ValueError, match=r"images must be a numpy array .*got shape \(0, 12, 16, 2\)"):
        t.apply_to_images(np.zeros((0, 12, 16, 2), np.uint8))  # empty, but not of RGB images either
    with pytest.raises(TypeError, match="images\\[0\\] must be uint8 \\(0..255\\) or float32 \\(0..1\\), got float64"):
        t.apply_to_images(np.full((2, 8, 8, 3), 0.5))
    images = np.full((2, 8, 8, 3), 0.5, np.float32)
    images[1] = 3.0  # the first image in range, the second not
    with pytest.raises(ValueError, match=r"images: float32 images must be in \[0, 1\] .*got values in \[0.5, 3\]"):
        t.apply_to_images(images)


def test_p_must_be_a_number_not_a_bool():
    with pytest.raises(TypeError, match=r"p must be a number in \[0, 1\], got bool True"):
        AA.RandomHaze(p=True)


def test_a_bank_empty_or_out_of_range_or_in_a_list_is_handled_by_name():
    with pytest.raises(ValueError, match=r"bank must have shape \(N, H, W, 3\) with N >= 1, got \(0, 24, 24, 3\)"):
        AA.FourierDomainAdaptation(BANK[:0])
    with pytest.raises(ValueError, match=r"bank must hold images in \[0, 1\]"):  # a torch bank is checked too
        AA.FourierDomainAdaptation(torch.full((2, 3, 8, 8), 3.0))
    assert "bank=<2 arrays (24, 24, 3) uint8>" in repr(AA.SimToReal(bank=[BANK[0], BANK[1]]))  # kept as given


def test_an_rgba_bank_is_refused_in_the_shape_it_was_given():
    # the bank is channels last, (N, H, W, 4): the refusal said "3 (RGB) channels in dimension -3, got (2, 4, 24, 24)"
    rgba = np.concatenate([BANK, np.full((2, 24, 24, 1), 255, np.uint8)], axis=-1)
    for bank in (rgba, list(rgba)):
        with pytest.raises(ValueError, match=r"bank must hold RGB images \(N, H, W, 3\), got \(2, 24, 24, 4\)"):
            AA.FourierDomainAdaptation(bank)
        with pytest.raises(ValueError, match=r"bank must hold RGB images \(N, H, W, 3\), got \(2, 24, 24, 4\)"):
            AA.SimToReal(bank=bank)


def test_simtoreal_takes_the_bank_as_fourier_domain_adaptation_does():
    ops = [type(op).__name__ for op in AA.SimToReal(bank=BANK)._op.children()]
    assert "FourierDomainAdaptation" in ops and "FourierDomainAdaptation" not in [
        type(op).__name__ for op in AA.SimToReal()._op.children()]
    fda = dict(AA.SimToReal(bank=BANK)._op.named_children())["FourierDomainAdaptation_5"]
    torch.testing.assert_close(fda.bank, torch.from_numpy(BANK).permute(0, 3, 1, 2).float() / 255)


def test_compose_seeds_draw_torch_seeds_from_a_wide_range():
    # each Compose seed gives the adapter a torch seed of its own: 8 seeds, 8 different cloud fields
    img = _image(np.uint8)
    outs = [A.Compose([AA.RandomClouds(p=1.0)], seed=s)(image=img)["image"] for s in range(8)]
    assert len({o.tobytes() for o in outs}) == 8


ARGUMENTS = {  # arguments other than the defaults, passed on to the kornia op
    "clouds": dict(opacity=(0.2, 0.3), octaves=2, shadow_shift=(0.3, 0.4)),
    "snow": dict(amount=(0.95, 1.0), softness=(0.5, 0.6), brightness=(0.5, 0.6)),
    "season": dict(autumn=(0.9, 1.0), winter=(0.1, 0.2), tint=(0.0, 0.1)),
    "haze": dict(density=(0.5, 0.6), horizon=(-0.2, 0.1), airlight=(0.5, 0.6), blue=(0.4, 0.5)),
    "illumination": dict(sun_azimuth=(10.0, 20.0), sun_elevation=(60.0, 80.0), relief=(20.0, 30.0),
                         gamma=(1.5, 2.0), exposure=(0.5, 0.6)),
    "camera": dict(temperature=(0.3, 0.4), tint=(0.2, 0.3), vignetting=(1.0, 2.0), noise_std=(0.1, 0.2),
                   blur_sigma=(2.0, 3.0)),
    "abstraction": dict(levels=(2.0, 3.0), smoothing=(0.0, 0.1), edge_strength=(0.0, 0.1),
                        edge_threshold=(0.5, 0.6)),
    "fda": dict(beta=(0.2, 0.3)),
    "simtoreal": dict(strength=0.3, op_p=0.9),
}


def test_the_arguments_reach_the_kornia_op(name):
    # the adapter runs the kornia op built with its arguments: on img / 255 from the same torch seed
    import augment

    args = ARGUMENTS[name]
    adapter = ADAPTERS[name](**args, p=1.0) if name != "simtoreal" else AA.SimToReal(**args)
    if name == "simtoreal":
        op = augment.SimToReal(strength=args["strength"], p=args["op_p"])
    elif name == "fda":
        op = augment.FourierDomainAdaptation(torch.from_numpy(BANK).permute(0, 3, 1, 2).float() / 255, **args, p=1.0)
    else:
        op = getattr(augment, KORNIA_OPS[name])(**args, p=1.0)
    img = _image(np.float32)
    out = adapter.apply(img, torch_seed=11)
    torch.manual_seed(11)
    want = op(torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, want, atol=1e-6)
    default = ADAPTERS[name](p=1.0).apply(img, torch_seed=11)
    assert not np.allclose(out, default, atol=1e-3)  # the arguments changed something


@pytest.mark.parametrize("interpolation, source", [("INTER_CUBIC", "square"), ("INTER_LANCZOS4", "noise")])
def test_a_cubic_or_lanczos_resize_before_an_adapter_is_taken_and_clamped(interpolation, source):
    # albumentations' own cubic and Lanczos resizes overshoot [0, 1] beside sharp edges (float32 is not clipped):
    # the adapters refused their output. Values within [-1, 2] are clamped to [0, 1], as uint8 output would be.
    cv2 = pytest.importorskip("cv2")
    if source == "square":
        img = np.zeros((16, 16, 3), np.float32)
        img[4:12, 4:12] = 1.0  # a bright square on black
    else:
        img = (np.random.default_rng(0).random((16, 16, 3)) > 0.5).astype(np.float32)  # black and white pixels
    resize = A.Resize(64, 64, interpolation=getattr(cv2, interpolation))
    resized = resize(image=img)["image"]
    assert resized.min() < -0.1 and resized.max() > 1.1  # the premise: the resize itself leaves [0, 1]
    neutral = AA.RandomIllumination(relief=0.0, gamma=1.0, exposure=0.0, p=1.0)  # no relief, gamma or exposure
    out = A.Compose([resize, neutral], seed=0)(image=img)["image"]
    np.testing.assert_array_equal(out, np.clip(resized, 0.0, 1.0))
    assert AA.RandomClouds(p=1.0)(image=resized)["image"].shape == (64, 64, 3)


def test_float_images_just_outside_the_resampling_margin_are_still_refused():
    # [-1, 2] holds any cubic or Lanczos resize of an image in [0, 1] (their kernels' negative lobes add up to
    # less than 1 in two dimensions); images in [0, 255] or after A.Normalize go beyond it
    t = AA.RandomHaze(p=1.0)
    img = np.full((8, 8, 3), 0.5, np.float32)
    for value, shown in ((2.05, r"\[0.5, 2.05\]"), (-1.05, r"\[-1.05, 0.5\]"), (np.inf, r"\[0.5, inf\]")):
        bad = img.copy()
        bad[0, 0, 0] = value
        with pytest.raises(ValueError, match=r"image: float32 images must be in \[0, 1\] \(values within \[-1, 2\], "
                                             rf"a cubic or Lanczos resize's overshoot, are clamped to it\), got values "
                                             rf"in {shown}"):
            t(image=bad)
    for value in (2.0, -1.0):  # the margin's ends are taken
        edge = img.copy()
        edge[0, 0, 0] = value
        assert t(image=edge)["image"].shape == (8, 8, 3)


def test_an_image_normalised_into_minus_one_to_one_is_refused_and_a_lanczos_resize_is_not():
    # A.Normalize(mean=0.5, std=0.5) gives [-1, 1], within a resize's margin: half the image came out black
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (16, 24, 3), np.uint8)
    with pytest.raises(ValueError, match=r"got values in \[-1, 1\], \d\d\.\d % of them more than 0.25 outside "
                                         r"\[0, 1\]; .*augment before A.Normalize"):
        A.Compose([A.Normalize(mean=0.5, std=0.5), AA.RandomHaze(p=1.0)], seed=0)(image=photo)
    # albumentations' own Lanczos resize of a float checkerboard overshoots to about [-0.45, 1.45] and passes
    board = ((np.arange(8)[:, None] + np.arange(12)[None]) % 2).astype(np.float32)[..., None].repeat(3, 2)
    cv2 = pytest.importorskip("cv2")
    out = A.Compose([A.Resize(32, 48, interpolation=cv2.INTER_LANCZOS4), AA.RandomHaze(p=1.0)], seed=0)(image=board)
    assert out["image"].shape == (32, 48, 3) and 0 <= out["image"].min() and out["image"].max() <= 1
    resized = A.Resize(32, 48, interpolation=cv2.INTER_LANCZOS4)(image=board)["image"]
    assert resized.min() < -0.4 and resized.max() > 1.4


def test_always_apply_and_strict_of_albumentations_1_build_with_a_warning(recwarn):
    # albumentations 2.0 dropped always_apply and its own transforms warn and ignore it; the adapters raised TypeError
    with pytest.warns(UserWarning, match=r"RandomClouds: `always_apply` is not an argument in albumentations 2.0 .*"
                                         r"p=1.0"):
        t = AA.RandomClouds(p=0.3, always_apply=True, strict=True)
    assert t.p == 0.3
    config = A.to_dict(A.Compose([AA.SimToReal(p=0.5)]))
    config["transform"]["transforms"][0]["always_apply"] = False  # as albumentations 1.x wrote it
    with pytest.warns(UserWarning, match="SimToReal: `always_apply`"):
        assert A.from_dict(config).transforms[0].p == 0.5
    with pytest.raises(TypeError, match="opactiy"):  # a misspelt argument is still refused
        AA.RandomHaze(opactiy=0.5)

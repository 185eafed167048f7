"""The augmentation playground: the plain view function, and the widget's wiring."""

import base64

import numpy as np
import pytest

from bigtrain_lab.widgets.augment import (
    SOURCES,
    STRENGTHS,
    AugmentPlayground,
    augment_playground,
    build_pipeline,
    image_grid_figure,
    playground_view,
    png_data_uri,
    source_image,
)


@pytest.mark.parametrize("source", SOURCES)
def test_no_strength_gives_copies_of_the_original(source):
    view = playground_view(source, {}, n_samples=3, seed=0)
    assert view.samples.shape == (3, *view.original.shape)
    for s in view.samples:
        np.testing.assert_array_equal(s, view.original)
    assert view.mosaic.dtype == np.uint8 and view.mosaic.ndim == 3


def test_samples_are_random_per_image_and_seeded():
    a = playground_view("china", {"rotate": 40.0, "brightness": 0.5}, n_samples=4, seed=1)
    b = playground_view("china", {"rotate": 40.0, "brightness": 0.5}, n_samples=4, seed=1)
    c = playground_view("china", {"rotate": 40.0, "brightness": 0.5}, n_samples=4, seed=2)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    assert len({s.tobytes() for s in a.samples}) == 4


def test_hflip_of_a_digit_is_its_mirror():
    view = playground_view("digit 3", {"hflip": 1.0}, n_samples=2)
    np.testing.assert_array_equal(view.samples[0], source_image("digit 3")[:, ::-1])


EXPECTED_CLASS = {"rotate": "RandomAffine", "translate": "RandomAffine", "scale": "RandomAffine",
                  "shear": "RandomAffine", "hflip": "RandomHorizontalFlip", "vflip": "RandomVerticalFlip",
                  "brightness": "ColorJitter", "contrast": "ColorJitter", "saturation": "ColorJitter",
                  "hue": "ColorJitter", "noise": "GaussianNoise", "blur": "GaussianBlur",
                  "erasing": "RandomErasing", "randaugment": "RandAugment"}


def test_every_strength_builds_and_runs_at_its_maximum():
    assert set(EXPECTED_CLASS) == set(STRENGTHS)
    for name, (top, _, _) in STRENGTHS.items():
        view = playground_view("flower", {name: top}, n_samples=2, seed=0)
        assert view.samples.shape == (2, 96, 144, 3), name
        assert EXPECTED_CLASS[name] in view.pipeline, name


def test_bad_states_raise():
    with pytest.raises(ValueError):
        build_pipeline({"zoom": 1.0})
    with pytest.raises(ValueError):
        build_pipeline({"rotate": -5.0})
    with pytest.raises(ValueError):
        playground_view("mona lisa", {})
    with pytest.raises(ValueError):
        playground_view("china", {}, n_samples=0)


def test_png_data_uri_and_grid():
    uri = png_data_uri(np.zeros((4, 5)), zoom=2)
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert uri.startswith("data:image/png;base64,") and raw[:4] == b"\x89PNG"
    fig = image_grid_figure([np.zeros((8, 8)), np.ones((10, 12, 3))], ["a", "b"], cols=2)
    assert len(fig.data) == 2


def test_widget_wiring_changes_the_figure():
    w = augment_playground("china", {"rotate": 10.0}, n_samples=3)
    assert isinstance(w, AugmentPlayground)
    before = w.figure.data[0].source
    w.sliders["rotate"].value = 90.0
    assert w.figure.data[0].source != before
    assert "RandomAffine" in w.caption.value
    w.source.value = "digit 6"
    assert w.view.original.shape == (8, 8)
    assert w.strengths["rotate"] == 90.0


def test_float_noise_from_a_slider_reads_as_the_value_meant():
    w = augment_playground("china", {"rotate": 10.0, "scale": 0.3}, n_samples=2)
    w.sliders["rotate"].value = 69.99999999999999  # what a browser's slider can send
    assert w.strengths["rotate"] == 70.0
    assert "degrees=(-70.0, 70.0)" in w.caption.value and "9999" not in w.caption.value
    assert "scale=(0.7, 1.3)" in w.caption.value  # 1 - 0.3 is 0.7, not 0.30000000000000004-style noise

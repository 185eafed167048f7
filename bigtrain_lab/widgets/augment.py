"""Augmentation playground of the data lesson: pick a source image and transform strengths, see a grid
of random augmented samples.

``playground_view`` is the plain function (source, strengths, n, seed -> images and a mosaic) that the
unit tests call; ``AugmentPlayground`` only draws what it returns: a Dropdown "image", one slider per
transform (described by its name), an IntText "seed", and a plotly FigureWidget with one ``Image`` trace
named "samples" (its ``source`` is a PNG data URI of the mosaic).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from bigtrain_lab.augment import (
    ColorJitter,
    Compose,
    GaussianBlur,
    GaussianNoise,
    RandAugment,
    RandomAffine,
    RandomErasing,
    RandomHorizontalFlip,
    RandomVerticalFlip,
    Transform,
    make_generator,
    resize,
)

__all__ = ["SOURCES", "STRENGTHS", "AugmentPlayground", "PlaygroundView", "augment_playground",
           "build_pipeline", "image_grid_figure", "playground_view", "png_data_uri", "source_image"]

#: transform name -> (slider max, step, description of the strength)
STRENGTHS: dict[str, tuple[float, float, str]] = {
    "rotate": (180.0, 5.0, "max degrees"),
    "translate": (0.5, 0.05, "max fraction of the size"),
    "scale": (0.5, 0.05, "zoom in 1 +- s"),
    "shear": (45.0, 5.0, "max degrees"),
    "hflip": (1.0, 0.1, "probability"),
    "vflip": (1.0, 0.1, "probability"),
    "brightness": (1.0, 0.1, "factor in 1 +- s"),
    "contrast": (1.0, 0.1, "factor in 1 +- s"),
    "saturation": (1.0, 0.1, "factor in 1 +- s"),
    "hue": (0.5, 0.05, "max shift (turns)"),
    "noise": (0.3, 0.02, "noise std (0..1 scale)"),
    "blur": (3.0, 0.25, "max sigma (pixels)"),
    "erasing": (1.0, 0.1, "probability"),
    "randaugment": (30.0, 1.0, "magnitude bin (0 = off)"),
}
SOURCES = ("china", "flower", "digit 6", "digit 3")


@lru_cache(maxsize=8)
def _source(name: str) -> np.ndarray:
    if name in ("china", "flower"):
        from bigtrain_lab.data import load_sample_photos

        return resize(load_sample_photos()[name], (96, 144))
    if name.startswith("digit "):
        from sklearn.datasets import load_digits

        digits = load_digits()
        idx = int(np.flatnonzero(digits.target == int(name.split()[1]))[0])
        return (digits.images[idx] / 16.0 * 255).round().astype(np.uint8)
    raise ValueError(f"unknown source {name!r}; choose one of {SOURCES}")


def source_image(name: str) -> np.ndarray:
    """The playground's source image ``name`` (uint8): a photo downsized to 96 x 144 x 3, or an 8 x 8 digit."""
    return _source(name).copy()


def max_blur_sigma(shape: tuple[int, ...], step: float = STRENGTHS["blur"][1]) -> float:
    """The largest blur sigma (a multiple of ``step``, at most the slider's top) an image of ``shape`` takes:
    the blur's mirror padding needs its radius ``floor(3 sigma + 0.5)`` below the smaller side.

    >>> max_blur_sigma((8, 8)), max_blur_sigma((96, 144, 3))
    (2.25, 3.0)
    """
    side = min(shape[:2])
    largest = math.floor(((side - 0.5) / 3) / step) * step
    while math.floor(3 * largest + 0.5) >= side:
        largest -= step
    return min(STRENGTHS["blur"][0], round(largest, 6))


def build_pipeline(strengths: Mapping[str, float]) -> Transform:
    """A :class:`~bigtrain_lab.augment.Compose` with each transform whose strength is non-zero."""
    unknown = set(strengths) - set(STRENGTHS)
    if unknown:
        raise ValueError(f"unknown transforms {sorted(unknown)}; known: {list(STRENGTHS)}")
    s = {name: float(strengths.get(name, 0.0)) for name in STRENGTHS}
    for name, value in s.items():
        if not 0.0 <= value <= STRENGTHS[name][0]:
            raise ValueError(f"strength of {name!r} must be in [0, {STRENGTHS[name][0]}], got {value!r}")
    steps: list[Transform] = []
    if s["hflip"]:
        steps.append(RandomHorizontalFlip(s["hflip"]))
    if s["vflip"]:
        steps.append(RandomVerticalFlip(s["vflip"]))
    if s["rotate"] or s["translate"] or s["scale"] or s["shear"]:
        steps.append(RandomAffine(degrees=s["rotate"], translate=(s["translate"],) * 2,
                                  scale=(1 - s["scale"], 1 + s["scale"]), shear=s["shear"]))
    if s["brightness"] or s["contrast"] or s["saturation"] or s["hue"]:
        steps.append(ColorJitter(s["brightness"], s["contrast"], s["saturation"], s["hue"]))
    if s["blur"]:
        steps.append(GaussianBlur((0.1, s["blur"])))
    if s["noise"]:
        steps.append(GaussianNoise((0.0, s["noise"])))
    if s["randaugment"]:
        steps.append(RandAugment(num_ops=2, magnitude=int(s["randaugment"])))
    if s["erasing"]:
        steps.append(RandomErasing(p=s["erasing"]))
    return Compose(steps)


def _mosaic(images: np.ndarray, cols: int, zoom: int, gap: int = 2) -> np.ndarray:
    n, h, w = images.shape[:3]
    rows = -(-n // cols)
    rgb = images if images.ndim == 4 else np.repeat(images[..., None], 3, axis=3)
    rgb = rgb.repeat(zoom, axis=1).repeat(zoom, axis=2)
    hh, ww = h * zoom, w * zoom
    out = np.full((rows * (hh + gap) - gap, cols * (ww + gap) - gap, 3), 255, dtype=np.uint8)
    for i, img in enumerate(rgb):
        r, c = divmod(i, cols)
        out[r * (hh + gap):r * (hh + gap) + hh, c * (ww + gap):c * (ww + gap) + ww] = img
    return out


def _as_uint8_rgb(image) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]


def png_data_uri(image: np.ndarray, zoom: int = 1) -> str:
    """A ``data:image/png;base64,...`` URI of an image (uint8, or float in [0, 1]), enlarged ``zoom`` times
    (nearest): plotly's ``go.Image(source=...)`` draws it, far smaller than a ``z`` array in the notebook."""
    import base64
    import io

    from PIL import Image

    img = _as_uint8_rgb(image).repeat(zoom, axis=0).repeat(zoom, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_grid_figure(images, titles, *, cols: int = 4, height: int | None = None, width: int = 840) -> go.Figure:
    """A plotly figure: ``images`` (uint8, or float in [0, 1]; grey or RGB) in a grid with ``titles``.
    Small images (digits) are enlarged so they do not look blurred."""
    from plotly.subplots import make_subplots

    rows = -(-len(images) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.01,
                        vertical_spacing=0.08)
    for i, img in enumerate(images):
        zoom = 16 if np.asarray(img).shape[0] <= 16 else 1
        fig.add_trace(go.Image(source=png_data_uri(img, zoom)), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height or 210 * rows, width=width, margin=dict(l=0, r=0, t=30, b=0))
    return fig


@dataclass(frozen=True)
class PlaygroundView:
    """What the playground shows for one state."""

    original: np.ndarray  # the source image (uint8)
    samples: np.ndarray  # (n, H, W[, 3]) uint8 augmented samples
    mosaic: np.ndarray  # (rows, cols, 3) uint8: the original first, then the samples
    pipeline: str  # repr of the pipeline


def playground_view(source: str, strengths: Mapping[str, float], *, n_samples: int = 11, seed: int = 0,
                    cols: int = 4) -> PlaygroundView:
    """Apply :func:`build_pipeline` (``strengths``) to ``n_samples`` copies of the source image as ONE
    batch (each copy draws its own parameters from a generator seeded with ``seed``)."""
    import torch

    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples!r}")
    original = source_image(source)
    pipeline = build_pipeline(strengths)
    chw = torch.from_numpy(original).float().div(255)
    chw = chw[None] if chw.dim() == 2 else chw.permute(2, 0, 1)
    batch = chw[None].repeat(n_samples, 1, 1, 1)
    out = pipeline(batch, make_generator(seed))
    samples = (out * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    samples = samples[..., 0] if original.ndim == 2 else samples
    zoom = 12 if original.shape[0] <= 16 else 1
    mosaic = _mosaic(np.concatenate([original[None], samples]), cols, zoom)
    return PlaygroundView(original, np.ascontiguousarray(samples), mosaic, repr(pipeline))


class AugmentPlayground(widgets.VBox):
    """Dropdown ``source``, one FloatSlider per transform in ``sliders``, IntText ``seed`` and a plotly
    ``figure`` whose "samples" Image trace shows the mosaic (original top-left)."""

    def __init__(self, source: str = "china", strengths: Mapping[str, float] | None = None, *,
                 n_samples: int = 11, seed: int = 0):
        strengths = dict(strengths or {"rotate": 20.0, "brightness": 0.3})
        self.n_samples = n_samples
        view = playground_view(source, strengths, n_samples=n_samples, seed=seed)  # validates
        self.source = widgets.Dropdown(options=list(SOURCES), value=source, description="image")
        self.sliders = {
            name: widgets.FloatSlider(value=strengths.get(name, 0.0), min=0.0, max=top, step=step,
                                      description=name, tooltip=what, continuous_update=False,
                                      style={"description_width": "90px"})
            for name, (top, step, what) in STRENGTHS.items()
        }
        self._fit_blur_to_source()
        self.seed = widgets.IntText(value=seed, description="seed")
        self.caption = widgets.HTML()
        self.figure = go.FigureWidget(go.Image(source=png_data_uri(view.mosaic), name="samples"))
        self.figure.update_layout(width=640, height=460, margin=dict(l=0, r=0, t=30, b=0),
                                  title="original (top left) and random augmented samples")
        self.figure.update_xaxes(visible=False)
        self.figure.update_yaxes(visible=False)
        controls = widgets.GridBox(list(self.sliders.values()),
                                   layout=widgets.Layout(grid_template_columns="repeat(2, 330px)"))
        super().__init__(children=[widgets.HBox([self.source, self.seed]), controls, self.caption, self.figure])
        self._show(view)
        self.source.observe(self._fit_blur_to_source, names="value")  # before the refresh: it may move the blur
        for w in [self.source, self.seed, *self.sliders.values()]:
            w.observe(self._refresh, names="value")

    def _fit_blur_to_source(self, change: dict | None = None) -> None:  # noqa: ARG002 - observe callback
        """Cap the blur slider at the largest sigma the chosen image takes (an 8 x 8 digit: 2.25)."""
        self.sliders["blur"].max = max_blur_sigma(source_image(self.source.value).shape)

    @property
    def strengths(self) -> dict[str, float]:
        """The slider values, rounded to 6 decimals: a browser's slider can send ``69.99999999999999``."""
        return {name: round(float(s.value), 6) for name, s in self.sliders.items()}

    @property
    def view(self) -> PlaygroundView:
        """The view for the controls' current state."""
        return playground_view(self.source.value, self.strengths, n_samples=self.n_samples, seed=self.seed.value)

    def _refresh(self, change: dict) -> None:  # noqa: ARG002 - observe callback signature
        self._show(self.view)

    def _show(self, view: PlaygroundView) -> None:
        self.figure.data[0].source = png_data_uri(view.mosaic)
        self.caption.value = f"<code>{view.pipeline}</code>"


def augment_playground(source: str = "china", strengths: Mapping[str, float] | None = None, *,
                       n_samples: int = 11, seed: int = 0) -> AugmentPlayground:
    """The interactive playground (see :class:`AugmentPlayground`)."""
    return AugmentPlayground(source, strengths, n_samples=n_samples, seed=seed)

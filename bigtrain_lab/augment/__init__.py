"""Data augmentation with PIL / numpy / torch only (no torchvision).

Functional transforms (``geometric``, ``photometric``), random transforms and pipelines
(``transforms``), mixup / CutMix (``mixing``) and a RandAugment policy (``policy``). Every transform takes a
numpy array, a PIL image or a torch tensor (one image or a batch ``(N, C, H, W)``, any device) and returns
the same kind; random ones draw per-image parameters from a ``torch.Generator`` (reproducible).

>>> from bigtrain_lab.augment import Compose, RandomAffine, ColorJitter, make_generator
>>> pipeline = Compose([RandomAffine(degrees=15, translate=(0.1, 0.1)), ColorJitter(brightness=0.3)])
>>> out = pipeline(image, generator=make_generator(0))  # doctest: +SKIP
"""

from bigtrain_lab.augment._core import ImageLike, to_batch
from bigtrain_lab.augment.geometric import (
    affine,
    affine_batch,
    center_crop,
    crop,
    hflip,
    pad,
    resize,
    resized_crop,
    rotate,
    vflip,
)
from bigtrain_lab.augment.mixing import CutMix, MixUp, cutmix, mixup, one_hot
from bigtrain_lab.augment.photometric import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    autocontrast,
    erase,
    gaussian_blur,
    gaussian_noise,
    posterize,
    solarize,
)
from bigtrain_lab.augment.policy import OPERATIONS, RandAugment
from bigtrain_lab.augment.transforms import (
    ColorJitter,
    Compose,
    GaussianBlur,
    GaussianNoise,
    RandomAffine,
    RandomApply,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
    Transform,
    format_value,
    make_generator,
)

__all__ = [
    "OPERATIONS", "ColorJitter", "Compose", "CutMix", "GaussianBlur", "GaussianNoise", "ImageLike", "MixUp",
    "RandAugment", "RandomAffine", "RandomApply", "RandomCrop", "RandomErasing", "RandomHorizontalFlip",
    "RandomResizedCrop", "RandomRotation", "RandomVerticalFlip", "Transform", "adjust_brightness",
    "adjust_contrast", "adjust_hue", "adjust_saturation", "affine", "affine_batch", "autocontrast",
    "center_crop", "crop", "cutmix", "erase", "format_value", "gaussian_blur", "gaussian_noise", "hflip",
    "make_generator", "mixup", "one_hot", "pad", "posterize", "resize", "resized_crop", "rotate", "solarize",
    "to_batch", "vflip",
]

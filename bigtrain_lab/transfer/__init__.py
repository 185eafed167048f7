"""Transfer learning for lesson 10: offline pretraining cached in the kit home (``pretrain``, ``text``, ``cache``),
the digits 5-9 target task, the strategies (scratch, linear probe, fine-tuning, discriminative LRs, gradual
unfreezing, LoRA: ``strategies``, ``lora``) and what the features look like (``features``). The freezing helper
the linear probe uses is ``freezing``."""

from bigtrain_lab.transfer.features import FEATURE_LAYERS, backbone_features, feature_projection
from bigtrain_lab.transfer.lora import LoRALinear, add_lora
from bigtrain_lab.transfer.pretrain import MAX_SHIFT, RECIPES, pretrained_cnn, shift_images, target_task
from bigtrain_lab.transfer.strategies import (
    STRATEGIES,
    curve_figure_data,
    learning_curves,
    prepare,
    relative_change,
    train_strategy,
)

__all__ = ["FEATURE_LAYERS", "MAX_SHIFT", "RECIPES", "STRATEGIES", "LoRALinear", "add_lora", "backbone_features",
           "curve_figure_data", "feature_projection", "learning_curves", "prepare", "pretrained_cnn",
           "relative_change", "shift_images", "target_task", "train_strategy"]

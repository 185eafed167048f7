"""Transfer learning for lesson 10: offline pretraining cached in the kit home, the digits 5-9 target task,
and the strategies (scratch, linear probe, fine-tuning, discriminative LRs, gradual unfreezing, LoRA)."""

from bigtrain_lab.transfer.pretrain import RECIPES, pretrained_cnn, target_task

__all__ = ["RECIPES", "pretrained_cnn", "target_task"]

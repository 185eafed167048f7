"""Model compression that measures what it claims: pruning, quantization, distillation, low-rank
factorization and LoRA, lightweight backbones, and the measurements that judge them (size on disk,
parameters, latency, accuracy). Lesson: notebooks/06_compression.ipynb."""

from bigtrain_lab.compress.digits import Digits, load_digits
from bigtrain_lab.compress.distillation import (
    agreement,
    distillation_loss,
    distillation_loss_fn,
    kl_to,
    transfer_loss_fn,
    transfer_targets,
)
from bigtrain_lab.compress.lightweight import DepthwiseSeparableConv, SeparableCNN, conv_macs, count_macs
from bigtrain_lab.compress.lowrank import (
    LoRALinear,
    add_lora,
    energy_kept,
    factorize_linears,
    low_rank_factorize,
    merge_lora,
)
from bigtrain_lab.compress.measure import (
    Latency,
    count_parameters,
    gzipped_size,
    measure_latency,
    report,
    size_on_disk,
    sparsity,
)
from bigtrain_lab.compress.pruning import (
    GradualPruner,
    iterative_prune,
    layer_sparsities,
    magnitude_prune_mask,
    make_permanent,
    per_round_amount,
    polynomial_sparsity,
    prune_unstructured,
    shrink_cnn,
    shrink_mlp,
)
from bigtrain_lab.compress.quantization import (
    FakeQuantLinear,
    compile_frozen,
    dequantize_affine,
    dequantize_per_channel,
    fake_quantize,
    int8_dynamic,
    int8_static,
    int8_weight_only,
    legacy_quantize_dynamic,
    prepare_qat,
    quantize_affine,
    quantize_per_channel,
    quantize_weights,
    strip_fake_quant,
)

__all__ = [
    "Digits", "DepthwiseSeparableConv", "FakeQuantLinear", "GradualPruner", "Latency", "LoRALinear", "SeparableCNN",
    "add_lora", "agreement", "compile_frozen", "conv_macs", "count_macs", "count_parameters", "dequantize_affine",
    "dequantize_per_channel", "distillation_loss", "distillation_loss_fn", "energy_kept", "factorize_linears",
    "fake_quantize", "gzipped_size", "int8_dynamic", "int8_static", "int8_weight_only",
    "iterative_prune", "kl_to", "layer_sparsities", "legacy_quantize_dynamic", "load_digits",
    "low_rank_factorize", "magnitude_prune_mask", "make_permanent", "measure_latency", "merge_lora",
    "per_round_amount", "polynomial_sparsity", "prepare_qat", "prune_unstructured", "quantize_affine", "quantize_per_channel",
    "quantize_weights", "report", "shrink_cnn", "shrink_mlp", "size_on_disk", "sparsity",
    "strip_fake_quant", "transfer_loss_fn", "transfer_targets",
]

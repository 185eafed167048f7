"""bigtrain_lab.parallel.comm (simulated groups) and .sequence: the sequence-parallel collectives' shapes
and counts, and the activation bytes one layer keeps per rank against Korthikanti et al.'s formula."""

import pytest
import torch

from bigtrain_lab.estimate.formulas import activation_bytes_per_layer
from bigtrain_lab.parallel.comm import (
    copy_to_tensor_parallel_region,
    count_collectives,
    gather_from_sequence_parallel_region,
    reduce_from_tensor_parallel_region,
    reduce_scatter_to_sequence_parallel_region,
    scatter_to_sequence_parallel_region,
    simulated_group,
)
from bigtrain_lab.parallel.sequence import compare_activation_bytes, measure_activation_bytes_per_layer

torch.set_num_threads(1)
SHAPE = dict(seq_len=64, micro_batch=2, hidden=64, n_heads=4)


def test_conjugate_collectives_shapes_and_counts_on_a_simulated_group():
    group = simulated_group(4, rank=1)
    x = torch.arange(2 * 8 * 3, dtype=torch.float32).view(2, 8, 3).requires_grad_()
    with count_collectives() as calls:
        shard = scatter_to_sequence_parallel_region(x, group)
        assert shard.shape == (2, 2, 3) and torch.equal(shard, x[:, 2:4])  # rank 1's positions
        full = gather_from_sequence_parallel_region(shard, group)
        assert full.shape == (2, 8, 3)
        back = reduce_scatter_to_sequence_parallel_region(full, group)
        assert back.shape == (2, 2, 3)
        y = reduce_from_tensor_parallel_region(copy_to_tensor_parallel_region(back, group), group)
        y.sum().backward()
    assert dict(calls) == {"forward all_gather": 1, "forward reduce_scatter": 1, "forward all_reduce": 1,
                           "backward all_reduce": 1, "backward all_gather": 2, "backward reduce_scatter": 1}
    with pytest.raises(ValueError):
        scatter_to_sequence_parallel_region(torch.zeros(1, 6, 1), group)  # 6 positions over 4 ranks
    with pytest.raises(TypeError):
        copy_to_tensor_parallel_region([1.0], group)
    with pytest.raises(ValueError):
        simulated_group(2, rank=2)


def test_measured_activation_bytes_match_korthikanti_within_a_few_percent():
    rows = compare_activation_bytes(**SHAPE, tps=(1, 2, 4))
    assert [(r["tp"], r["sequence_parallel"]) for r in rows] == [(1, False), (2, False), (2, True), (4, False),
                                                                  (4, True)]
    for r in rows:
        assert r["formula"] == activation_bytes_per_layer(**SHAPE, tp=r["tp"], sequence_parallel=r["sequence_parallel"])
        # the rest: the (s, s) causal mask and LayerNorm's saved mean / rstd, which the formula leaves out
        assert 1.0 <= r["ratio"] < 1.1, r
    measured = {(r["tp"], r["sequence_parallel"]): r["measured"] for r in rows}
    assert measured[(1, False)] > measured[(2, False)] > measured[(2, True)] > measured[(4, True)]
    assert measured[(4, False)] > measured[(4, True)]


def test_cpu_dropout_keeps_two_byte_masks_and_flash_free_attention_is_needed_for_the_5as_term():
    bool_masks = measure_activation_bytes_per_layer(**SHAPE)
    cpu_masks = measure_activation_bytes_per_layer(**SHAPE, bool_masks=False)
    s, b, h, a = SHAPE["seq_len"], SHAPE["micro_batch"], SHAPE["hidden"], SHAPE["n_heads"]
    # three dropout masks (attention scores a s^2 b, two residual s b h), 1 byte more each on the CPU path
    assert cpu_masks.measured - bool_masks.measured == a * s * s * b + 2 * s * b * h
    with pytest.raises(ValueError):
        measure_activation_bytes_per_layer(**SHAPE, dropout=0.0)
    with pytest.raises(ValueError):
        measure_activation_bytes_per_layer(**{**SHAPE, "seq_len": 66}, tp=4, sequence_parallel=True)

"""Beyond data parallelism, for lesson 15 (``notebooks/15_parallel1_tensor_sequence_pipeline.ipynb``), on the
kit's TinyGPT and the real engine (``torch.distributed`` under ``torchrun``: gloo on CPU, NCCL on GPUs).

* ``tensor``: Megatron-style column- and row-parallel linear layers (``column_parallel_linear``,
  ``row_parallel_linear`` are the exercise references), the tensor-parallel MLP and attention block.
* ``sequence``: sequence parallelism (LayerNorm / dropout regions sharded along the sequence; all-gather and
  reduce-scatter in place of all-reduce) and its activation memory.
* ``pipeline``: GPipe and 1F1B schedules (``pipeline_schedule`` is the exercise reference), their
  dependencies, in-flight activations, bubble and timeline.
"""

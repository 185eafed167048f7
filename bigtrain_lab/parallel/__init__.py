"""Beyond data parallelism, for lesson 15 (``notebooks/15_parallel1_tensor_sequence_pipeline.ipynb``), on the
kit's TinyGPT and the real engine (``torch.distributed`` under ``torchrun``: gloo on CPU, NCCL on GPUs).

* ``comm``: Megatron's conjugate collectives as autograd functions (f / g for tensor parallelism, all-gather /
  reduce-scatter along the sequence for sequence parallelism), a collective counter and simulated groups.
* ``tensor``: column- and row-parallel linear layers (``column_parallel_linear``, ``row_parallel_linear`` are
  the exercise references), the tensor-parallel MLP and attention (head-aware split of the fused q|k|v), a
  TinyGPT made tensor-parallel by hand or with DTensor, and its full state_dict gathered back.
* ``sequence``: sequence parallelism's activation memory per layer and rank, measured against Korthikanti et al.
* ``pipeline``: GPipe and 1F1B schedules (``pipeline_schedule`` is the exercise reference), their checker,
  in-flight activations, a timeline simulation and the bubble.
* ``stages``: TinyGPT split into pipeline stages, the tied embedding across the first and last stage, and the
  executor that runs a schedule with point-to-point sends and receives.
"""

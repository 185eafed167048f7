"""Back-of-envelope arithmetic of a training plan, for lesson 15
(``notebooks/15_parallel2_planning_scaling_drills.ipynb``).

* ``formulas``: training FLOPs (6ND) and days, model-state memory per GPU of a (DP, TP, PP, ZeRO) plan, ring
  all-reduce time, activation memory per layer (Korthikanti et al. 2022), pipeline bubble, parameter counts
  (``training_memory_per_gpu``, ``training_days`` and ``allreduce_seconds`` are the exercise references).
* ``planner``: candidate (DP, TP, PP, ZeRO) plans for a model on a cluster, with memory per GPU, step time and
  MFU, and probes of this CPU's matmul rate and gloo bandwidth.
* ``published``: published figures (Megatron-LM, Korthikanti et al., Llama 2) the planner is checked against.
* ``scaling``: a TinyGPT scaling-law grid, the fit of L(N, D) and the compute-optimal size, beside Chinchilla.
* ``drills``: back-of-envelope questions with fresh numbers, graded within a tolerance.
"""

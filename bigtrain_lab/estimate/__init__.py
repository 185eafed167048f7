"""Back-of-envelope arithmetic of a training plan, for lesson 15
(``notebooks/15_parallel2_planning_scaling_drills.ipynb``).

* ``formulas``: training FLOPs (6ND) and days, model-state memory per GPU of a (DP, TP, PP, ZeRO) plan,
  ring all-reduce time, activation memory per layer (Korthikanti et al. 2022), pipeline bubble
  (``training_memory_per_gpu``, ``training_days`` and ``allreduce_seconds`` are the exercise references).
"""

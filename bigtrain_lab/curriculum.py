"""The curriculum manifest: the one place that says what each lesson teaches and where everything lives.

A lesson has a number, its notebook(s), a title and a summary, the topics it teaches, its graded exercises
and its exercise / solution notebooks. A *topic* has one key used everywhere: the package module
``bigtrain_lab.<key>``, the widget module ``bigtrain_lab.widgets.<key>`` (when the topic has a widget),
the exercise ids ``<key>.name`` and the question-bank topic ``<key>``. The interview questions a lesson
answers are the bank entries of its topics (each entry links the section that demonstrates it).

README's curriculum table (``bigtrain-lab curriculum --write-readme``), ``notebooks/00_start_here``, the
exercises' lesson links, the bank's validation and the coverage tests read this module; a new lesson is
one ``Lesson`` entry here plus its files.

>>> lesson(1).notebooks
('notebooks/01_metrics.ipynb',)
>>> topic("memory").module
'bigtrain_lab.memory'
>>> lesson_of_topic("precision").number
3
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bigtrain_lab.budget import Budget

__all__ = ["LESSONS", "NOT_YET_COVERED", "CurriculumTable", "Lesson", "Topic", "curriculum_table", "lesson",
           "lesson_of_topic", "readme_section", "readme_table", "topic", "topics", "with_readme_section"]


@dataclass(frozen=True)
class Topic:
    """One topic: ``key`` names its module, widget module, exercise ids and bank topic."""

    key: str
    title: str
    notebook: str  # the lesson notebook that teaches it (a bank entry or exercise links a section of it)
    widgets: tuple[str, ...] = ()  # names in ``bigtrain_lab.widgets.<key>`` the lesson shows

    @property
    def module(self) -> str:
        """The package module (or subpackage) that holds the topic's code."""
        return f"bigtrain_lab.{self.key}"

    @property
    def widget_module(self) -> str | None:
        """``bigtrain_lab.widgets.<key>``, or None for a topic without a widget."""
        return f"bigtrain_lab.widgets.{self.key}" if self.widgets else None


@dataclass(frozen=True)
class Lesson:
    """One numbered lesson: its notebooks, topics, graded exercises and exercise notebook."""

    number: int
    title: str
    summary: str
    topics: tuple[Topic, ...] = ()
    exercises: tuple[str, ...] = ()  # exercise ids, in the order the exercise notebook asks them
    practice: str | None = None  # stem of exercises/<stem>.ipynb and solutions/<stem>.ipynb
    extra_notebooks: tuple[str, ...] = field(default=())  # lesson notebooks that teach no topic of their own
    budget: Budget | None = None  # what the fast (test) and the full run use: ``budget.lesson_budget(n)``

    @property
    def notebooks(self) -> tuple[str, ...]:
        """The lesson's notebooks, in reading order (their file names sort in that order)."""
        return tuple(sorted(dict.fromkeys([*self.extra_notebooks, *(t.notebook for t in self.topics)])))

    @property
    def exercise_notebook(self) -> str | None:
        return f"exercises/{self.practice}.ipynb" if self.practice else None

    @property
    def solution_notebook(self) -> str | None:
        return f"solutions/{self.practice}.ipynb" if self.practice else None

    @property
    def quiz_topics(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.topics)


def _nb(name: str) -> str:
    return f"notebooks/{name}.ipynb"


LESSONS: tuple[Lesson, ...] = (
    Lesson(0, "Start here", "how lessons, exercises, grading and quizzes work",
           extra_notebooks=(_nb("00_start_here"),)),
    Lesson(1, "Metrics and evaluation",
           "accuracy and imbalance, confusion matrix, precision / recall / F1, ROC and PR curves from scores, "
           "choosing a threshold, calibration and ECE, RMSE vs MAE, (stratified) cross-validation",
           topics=(Topic("metrics", "Metrics and evaluation", _nb("01_metrics"), ("threshold_explorer",)),),
           exercises=("metrics.confusion_counts", "metrics.precision_recall_f1", "metrics.roc_auc",
                      "metrics.regression_errors", "metrics.expected_calibration_error"),
           practice="01_metrics"),
    Lesson(2, "Optimizers, losses and learning-rate schedules",
           "SGD, momentum, Nesterov, Adagrad, RMSprop, Adadelta, Adam, AdamW on 2-D surfaces and on digits; L2 "
           "in the loss vs decoupled weight decay (differ with Adam, coincide with SGD); MSE, cross-entropy, "
           "hinge, log loss and why we train on a surrogate of accuracy/F1; seven LR schedules checked against "
           "`torch.optim.lr_scheduler` (and the bank's decay that never decays); linear scaling rule and "
           "warm-up, measured",
           topics=(Topic("optim", "Optimizers and losses", _nb("02_optimizers_and_schedules"),
                         ("optimizer_explorer",)),
                   Topic("schedules", "Learning-rate schedules", _nb("02_optimizers_and_schedules"),
                         ("schedule_explorer",))),
           exercises=("schedules.step_decay", "schedules.cosine_with_warmup", "optim.sgd_step",
                      "optim.adamw_step"),
           practice="02_optimizers_and_schedules",
           budget=Budget(fast={"trajectory_steps": 300, "explorer_steps": 100, "epochs": 6, "surrogate_steps": 150,
                               "seeds": (0, 1)},
                         full={"trajectory_steps": 1000, "explorer_steps": 1000, "epochs": 20, "surrogate_steps": 400,
                               "seeds": (0, 1, 2)})),
    Lesson(3, "Batch size, mixed precision and memory",
           "batch size vs throughput and generalisation; gradient accumulation and its bugs (loss not divided "
           "by k, means of masked means); fp16 underflow and loss scaling; bf16 range vs precision and its "
           "measured CPU speed; activation checkpointing memory vs time; a memory calculator with ZeRO 0-3 "
           "checked against measured memory; how to reduce training time",
           topics=(Topic("batch", "Batch size and gradient accumulation", _nb("03_batch_precision_memory")),
                   Topic("precision", "Floating-point formats and mixed precision",
                         _nb("03_batch_precision_memory")),
                   Topic("memory", "Training memory and ZeRO", _nb("03_batch_precision_memory"),
                         ("memory_calculator",))),
           exercises=("memory.adam_training_bytes", "precision.update_loss_scale"),
           practice="03_batch_precision_memory",
           budget=Budget(fast={"timed_steps": 4, "precision_rounds": 1, "gemm_size": 512},
                         full={"timed_steps": 12, "precision_rounds": 3, "gemm_size": 1024})),
    Lesson(4, "Static and dynamic graphs, attention, debugging",
           "eager vs `torch.compile` vs `torch.export` (what a static graph means now, TorchScript's status), "
           "compile time and speed-up measured; attention from scratch vs SDPA, causal masks, multi-head and "
           "cross-attention; attention maps of a trained TinyGPT; `gradcheck` catching a wrong custom "
           "backward; sanity checks",
           topics=(Topic("graphs", "Static vs dynamic graphs", _nb("04_graphs_attention_debugging")),
                   Topic("attention", "Attention", _nb("04_graphs_attention_debugging"),
                         ("attention_explorer",)),
                   Topic("debugging", "Debugging and gradient checks", _nb("04_graphs_attention_debugging"))),
           exercises=("attention.scaled_dot_product_attention", "debugging.numerical_gradient"),
           practice="04_graphs_attention_debugging",
           budget=Budget(fast={"timing_iters": 10, "corpus_chars": 300_000, "lm_steps": 200, "lm_layers": 2,
                               "lm_batch_size": 8, "overfit_steps": 150},
                         full={"timing_iters": 50, "corpus_chars": 2_000_000, "lm_steps": 2000, "lm_layers": 4,
                               "lm_batch_size": 16, "overfit_steps": 300})),
    Lesson(5, "Data and model parallelism",
           "data / tensor / pipeline parallelism, parameter server vs all-reduce, DDP's anatomy; a live "
           "2-process DDP run with `torchrun` (gloo) equal to one process; FSDP2 memory per rank; ring "
           "all-reduce stepper and scaling calculator; commands for 1 x 8 and 2 x 8 GPUs",
           topics=(Topic("distributed", "Distributed training", _nb("05_distributed"),
                         ("ring_stepper", "scaling_calculator")),),
           exercises=("distributed.shard_indices", "distributed.ring_allreduce"),
           practice="05_distributed",
           budget=Budget(fast={"job_steps": 8, "log_every": 2}, full={"job_steps": 60, "log_every": 10})),
    Lesson(6, "Compression: pruning, quantization, distillation, low rank",
           "pruning with `torch.nn.utils.prune` (per layer, global, iterative, structured that really "
           "shrinks), why sparsity rarely speeds up dense kernels; int8 from first principles, torchao "
           "dynamic / weight-only / static, QAT; distillation; SVD and LoRA on TinyGPT; depthwise-separable "
           "CNN; one measured table of every method; trade-off widget",
           topics=(Topic("compress", "Model compression", _nb("06_compression"), ("tradeoff_explorer",)),),
           exercises=("compress.magnitude_prune_mask", "compress.quantize_affine", "compress.dequantize_affine",
                      "compress.distillation_loss", "compress.low_rank_factorize", "compress.LoRALinear"),
           practice="06_compression",
           budget=Budget(fast={}, full={})),  # compress.experiments.Budget, shared with bench/compression.py
    Lesson(7, "Data: augmentation, preprocessing, imbalance and labels",
           "geometric and photometric augmentation, label-preserving or not (a rotated 6), augmentation "
           "measured on 100 digits, mixup / CutMix, RandAugment, numpy vs batched torch, augmentation "
           "playground; train-only preprocessing and leakage measured, missing values / outliers / denoising, "
           "`ColumnTransformer`, class weights done right, 1:20 imbalance remedies, label noise, "
           "pseudo-labelling, active learning, majority vote vs Dawid-Skene, label errors, duplicates",
           topics=(Topic("augment", "Data augmentation", _nb("07_data_augmentation"), ("augment_playground",)),
                   Topic("preprocess", "Preprocessing and leakage", _nb("07_data_imbalance_labels")),
                   Topic("imbalance", "Class imbalance", _nb("07_data_imbalance_labels")),
                   Topic("labels", "Labelling and label noise", _nb("07_data_imbalance_labels")),
                   Topic("data", "Data access and anonymisation", _nb("07_data_imbalance_labels"))),
           exercises=("augment.rotate", "augment.mixup", "imbalance.balanced_class_weights",
                      "preprocess.standardize", "labels.majority_vote"),
           practice="07_data",
           budget=Budget(fast={"cnn_steps": 300, "augment_seeds": 2, "augment_steps": 200, "leakage_seeds": 2,
                               "folds": 3, "imbalanced_rows": 3000, "imbalance_seeds": 2, "imbalance_epochs": 20,
                               "noise_rates": (0.0, 0.1, 0.2, 0.4), "label_budgets": (20, 50, 100),
                               "active_rounds": 6},
                         full={"cnn_steps": 1000, "augment_seeds": 5, "augment_steps": 500, "leakage_seeds": 5,
                               "folds": 5, "imbalanced_rows": 6000, "imbalance_seeds": 5, "imbalance_epochs": 30,
                               "noise_rates": (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
                               "label_budgets": (20, 30, 50, 100, 200), "active_rounds": 15})),
    Lesson(8, "Explainability: SHAP, LIME and gradients",
           "Shapley values (exact = shap, TreeSHAP) vs LIME on breast cancer, agreement and LIME's stability "
           "measured; permutation importance, surrogate-tree fidelity and rules; digits CNN saliency / "
           "Integrated Gradients (= captum) / Grad-CAM / LIME image; the model-randomization sanity test; "
           "TinyGPT attention maps and rollout",
           topics=(Topic("explain", "Explainability", _nb("08_explainability"),
                         ("TabularExplorer", "ImageExplorer")),),
           exercises=("explain.exact_shapley", "explain.integrated_gradients", "explain.lime_tabular"),
           practice="08_explainability",
           budget=Budget(fast={"tabular_rows": 10, "importance_repeats": 3, "cnn_epochs": 5, "lime_image_samples": 200,
                               "shap_image_samples": 50, "sanity_images": 16, "gpt_steps": 120},
                         full={"tabular_rows": 86, "importance_repeats": 10, "cnn_epochs": 15,
                               "lime_image_samples": 1000, "shap_image_samples": 200, "sanity_images": 64,
                               "gpt_steps": 300})),
    Lesson(9, "Visualizing training",
           "per-layer activation / gradient statistics and dead ReLUs via hooks; six initialisations and what "
           "the plots show; live loss curves; over- and under-fitting; the LR range test",
           topics=(Topic("training_viz", "Visualizing training", _nb("09_visualizing_training"),
                         ("LayerStatsExplorer",)),),
           budget=Budget(fast={"init_epochs": 6, "fit_epochs": 10, "overfit_epochs": 100, "lr_epochs": 5},
                         full={"init_epochs": 30, "fit_epochs": 40, "overfit_epochs": 300, "lr_epochs": 20})),
    Lesson(10, "Regularization, transfer learning and lightweight backbones",
           "every regularizer run on one visibly overfit task (L2 vs decoupled weight decay, L1 sparsity, inverted "
           "dropout, early stopping, augmentation, label smoothing, max-norm, batch norm, k-fold CV); a CNN and "
           "TinyGPT pretrained offline and cached, then transferred: scratch vs linear probe vs fine-tuning vs "
           "discriminative LRs / gradual unfreezing vs LoRA at growing label budgets over seeds, and where transfer "
           "hurts; width / depth multipliers and depthwise-separable blocks on the backbone",
           topics=(Topic("regularization", "Regularization", _nb("10_regularization"), ("RegularizationExplorer",)),
                   Topic("transfer", "Transfer learning and fine-tuning", _nb("10_transfer_learning"),
                         ("FeatureProjection",)),
                   Topic("lightweight", "Lightweight models on a backbone", _nb("10_transfer_lightweight_backbones"))),
           exercises=("regularization.inverted_dropout", "regularization.label_smoothing_cross_entropy",
                      "regularization.early_stopping", "transfer.freeze_for_feature_extraction",
                      "transfer.fine_tune_classifier", "lightweight.depthwise_separable_conv"),
           practice="10_regularization_and_transfer",
           budget=Budget(fast={"reg_epochs": 30, "reg_seeds": 1, "reg_grid_wd": (0.0, 1.0), "reg_grid_dropout": (0.0, 0.5), "reg_grid_smoothing": (0.0, 0.1),  # regularization (10_regularization)
                               "tl_seeds": 1, "tl_budgets": (2, 10, 50), "tl_steps": 60, "gpt_steps": 30,  # transfer (10_transfer_learning)
                               "lw_steps": 80, "lw_seeds": 1, "lw_timer_s": 0.05},  # lightweight (10_transfer_lightweight_backbones)
                         full={"reg_epochs": 100, "reg_seeds": 3, "reg_grid_wd": (0.0, 0.3, 1.0, 3.0), "reg_grid_dropout": (0.0, 0.5), "reg_grid_smoothing": (0.0, 0.1, 0.3),
                               "tl_seeds": 3, "tl_budgets": (1, 2, 5, 10, 20, 50), "tl_steps": 100, "gpt_steps": 100,
                               "lw_steps": 300, "lw_seeds": 3, "lw_timer_s": 0.2})),
    Lesson(11, "Ensembles, model fusion and hyperparameter search",
           "bagging lowers variance, boosting lowers bias, stacking on out-of-fold predictions (and the leak "
           "without them), hard vs soft vs weighted voting; networks fused by logits, probabilities or votes, "
           "diversity vs gain, snapshot ensembles, SWA, when weights can be averaged (the loss along the line "
           "between two models); grid vs random vs TPE vs successive halving at a fixed budget, over seeds; "
           "log-scale ranges, the learning rate's dominance, nested cross-validation for an honest score",
           topics=(Topic("ensemble", "Ensembles and model fusion", _nb("11_ensembles"), ("EnsembleBuilder",)),
                   Topic("hpo", "Hyperparameter search", _nb("11_hyperparameter_search"), ("HPORace",))),
           exercises=("ensemble.soft_vote", "ensemble.out_of_fold_predictions", "ensemble.average_weights",
                      "hpo.successive_halving", "hpo.sample_log_uniform"),
           practice="11_ensembles_and_hpo",
           extra_notebooks=(_nb("11_fusing_networks"),),
           budget=Budget(fast={"bagging_replicas": 10, "bagging_trees": 10, "curve_trees": 30, "boosting_rounds": 100, "stacking_seeds": 1,  # ensemble (11_ensembles)
                               "fusion_members": 3, "fusion_epochs": 8, "fusion_alphas": 11,  # fusion (11_fusing_networks)
                               "hpo_seeds": 2, "hpo_budget": 16, "hpo_trees": 5},  # hpo (11_hyperparameter_search)
                         full={"bagging_replicas": 30, "bagging_trees": 50, "curve_trees": 200, "boosting_rounds": 300, "stacking_seeds": 5,
                               "fusion_members": 5, "fusion_epochs": 30, "fusion_alphas": 21,
                               "hpo_seeds": 4, "hpo_budget": 40, "hpo_trees": 50})),
    Lesson(12, "Privacy and security: DP-SGD, federated learning, attacks on models",
           "DP-SGD from scratch (per-sample gradients, clipping, noise) against opacus, epsilon from the RDP / PRV "
           "accountant, accuracy vs epsilon over seeds; the Laplace mechanism and randomized response; membership "
           "inference against the epsilon bound; re-identification by joining quasi-identifiers; FedAvg on torchrun "
           "(IID vs Dirichlet non-IID clients, local steps, FedSGD, client drift) and secure aggregation by pairwise "
           "masks; FGSM / PGD and adversarial training, model extraction, a backdoor and its defence, unsafe model "
           "files and weights encrypted at rest",
           topics=(Topic("privacy", "Differential privacy and DP-SGD", _nb("12_differential_privacy"), ("EpsilonDial",)),
                   Topic("federated", "Federated learning and secure aggregation", _nb("12_federated_learning"),
                         ("FederatedViewer",)),
                   Topic("security", "Attacks on models and their defences", _nb("12_model_security"))),
           exercises=("privacy.per_sample_gradients", "privacy.clip_and_noise", "privacy.laplace_mechanism",
                      "privacy.randomized_response", "federated.fedavg_round", "security.fgsm"),
           practice="12_privacy_and_security",
           budget=Budget(fast={"dp_seeds": 1, "dp_epochs": 5, "dp_epsilons": (1.0, 8.0), "mia_epochs": 100, "mia_seeds": 1,  # privacy (12_differential_privacy)
                               "fl_rounds": 40, "fl_clients": 5, "fl_alphas": (100.0, 0.1), "fl_local_steps": (1, 10),  # federated (12_federated_learning)
                               "adv_epochs": 5, "pgd_steps": 5, "extraction_queries": (50, 200, 1000)},  # security (12_model_security)
                         full={"dp_seeds": 3, "dp_epochs": 5, "dp_epsilons": (0.5, 1.0, 2.0, 4.0, 8.0), "mia_epochs": 100, "mia_seeds": 3,
                               "fl_rounds": 60, "fl_clients": 10, "fl_alphas": (100.0, 1.0, 0.1), "fl_local_steps": (1, 5, 20),
                               "adv_epochs": 20, "pgd_steps": 20, "extraction_queries": (50, 100, 200, 500, 1000, 3000)})),
    Lesson(13, "Saving, exporting and serving models in real time",
           "state_dict vs a pickled module, a checkpoint that resumes bit-identically and loads with "
           "weights_only=True, safetensors, sharded (DCP) checkpoints reloaded at another world size; ONNX via "
           "torch.export, onnxruntime and int8 against eager and torch.compile; a FastAPI server with a bounded "
           "queue and dynamic micro-batching under an open-loop load generator (p50 / p99, throughput, the knee, "
           "Little's law); input and prediction drift after deployment",
           topics=(Topic("deploy", "Saving, exporting and monitoring models", _nb("13_saving_and_export")),
                   Topic("serving", "Real-time serving", _nb("13_serving"), ("BatchingExplorer",))),
           exercises=("deploy.training_state", "deploy.restore_training_state", "serving.micro_batches",
                      "serving.latency_report"),
           practice="13_deployment_and_serving",
           budget=Budget(fast={"export_repeat_s": 0.05, "export_compile": False, "drift_windows": 6,  # deploy (13_saving_and_export)
                               "load_requests": 150, "load_rates": (50, 400), "load_configs": ((32, 2.0),), "load_seconds": 5.0},  # serving (13_serving)
                         full={"export_repeat_s": 0.5, "export_compile": True, "drift_windows": 12,
                               "load_requests": 600, "load_rates": (50, 100, 200, 400, 800), "load_configs": ((8, 2.0), (32, 2.0), (32, 5.0)),
                               "load_seconds": 15.0})),
    Lesson(14, "Inside a large language model: tokens, positions, KV cache, attention, decoding, MoE",
           "byte-level BPE from scratch against Hugging Face tokenizers, characters per token, char vs BPE TinyGPT in bits "
           "per byte (and why perplexity does not compare across tokenizers); learned, sinusoidal, RoPE and ALiBi "
           "positions past the trained length; the KV cache (identical tokens, tokens/s, bytes) and MQA / GQA; attention "
           "by an online softmax over key blocks against SDPA and its memory; greedy, temperature, top-k, top-p and "
           "repetition penalty; speculative decoding with a draft model; a top-k router with capacity and the Switch "
           "balancing loss, dense vs MoE at equal active parameters; loss spikes, clipping, z-loss, QK-norm and Adam's beta2",
           topics=(Topic("llm", "Inside a large language model", _nb("14_llm1_tokens_positions_attention"),
                         ("TokenizerPlayground", "DecodingExplorer", "KVCacheCalculator")),),
           extra_notebooks=(_nb("14_llm2_decoding_moe_stability"),),
           exercises=("llm.bpe_merges", "llm.apply_rope", "llm.attention_step_with_kv_cache",
                      "llm.online_softmax_attention", "llm.top_p_filter", "llm.topk_router"),
           practice="14_inside_an_llm",
           budget=Budget(fast={"tokens_chars": 300000, "tokens_toy_merges": 8, "tokens_vocab_sizes": (320, 384, 512, 768, 1024), "tokens_hf_chars": 6000, "tokens_hf_merges": 120, "tokens_gpt_vocab": 512, "tokens_gpt_layers": 2, "tokens_gpt_embd": 64, "tokens_gpt_block": 64, "tokens_gpt_batch": 16, "tokens_gpt_steps": 200,  # tokens (14_llm1)
                              "pos_chars": 300000, "pos_block": 32, "pos_steps": 250, "pos_batch": 16, "pos_eval_lengths": (32, 64, 128, 256), "pos_eval_batches": 4,  # positions (14_llm1)
                              "kv_text_tokens": 100, "kv_lengths": (16, 32, 64, 128, 256), "kv_repeats": 2, "kv_seeds": 1,  # KV cache (14_llm1)
                              "flash_lengths": (256, 512, 1024), "flash_naive_max": 1024, "flash_repeats": 3,  # attention memory (14_llm1)
                              "decoding_corpus_chars": 300000, "decoding_steps": 250, "decoding_batch": 16, "decoding_target_layers": 3, "decoding_target_embd": 64, "decoding_sample_tokens": 120, "decoding_test_runs": 300, "decoding_speed_reps": 6, "decoding_gammas": (1, 2, 4),  # decoding (14_llm2)
                              "moe_corpus_chars": 300000, "moe_steps": 120, "moe_layers": 2, "moe_embd": 48, "moe_block": 64, "moe_batch": 16, "moe_variants": ('dense', 'MoE 4x top-1', 'MoE 4x top-1, no balancing loss'),  # mixture of experts (14_llm2)
                              "stab_steps": 150, "stab_seeds": (0,)},  # stability (14_llm2)
                         full={"tokens_chars": 2000000, "tokens_toy_merges": 8, "tokens_vocab_sizes": (320, 384, 512, 768, 1024, 2048, 4096), "tokens_hf_chars": 20000, "tokens_hf_merges": 300, "tokens_gpt_vocab": 1024, "tokens_gpt_layers": 4, "tokens_gpt_embd": 128, "tokens_gpt_block": 64, "tokens_gpt_batch": 16, "tokens_gpt_steps": 1000,  # tokens (14_llm1)
                              "pos_chars": 1000000, "pos_block": 64, "pos_steps": 600, "pos_batch": 32, "pos_eval_lengths": (64, 128, 256, 512), "pos_eval_batches": 8,  # positions (14_llm1)
                              "kv_text_tokens": 200, "kv_lengths": (16, 32, 64, 128, 256, 512, 1024), "kv_repeats": 2, "kv_seeds": 2,  # KV cache (14_llm1)
                              "flash_lengths": (256, 512, 1024, 2048, 4096, 8192, 16384), "flash_naive_max": 8192, "flash_repeats": 2,  # attention memory (14_llm1)
                              "decoding_corpus_chars": 2000000, "decoding_steps": 1200, "decoding_batch": 16, "decoding_target_layers": 4, "decoding_target_embd": 96, "decoding_sample_tokens": 200, "decoding_test_runs": 2000, "decoding_speed_reps": 15, "decoding_gammas": (1, 2, 3, 4, 6, 8),  # decoding (14_llm2)
                              "moe_corpus_chars": 1000000, "moe_steps": 500, "moe_layers": 2, "moe_embd": 64, "moe_block": 64, "moe_batch": 16, "moe_variants": ('dense', 'MoE 4x top-1', 'MoE 4x top-1, no balancing loss', 'MoE 4x top-1, capacity factor 2', 'MoE 4x top-2 (2 experts active)'),  # mixture of experts (14_llm2)
                              "stab_steps": 400, "stab_seeds": (0, 1, 2)})),
    Lesson(15, "Beyond data parallelism: tensor, sequence and pipeline parallelism, planning a run, scaling laws",
           "Megatron column- and row-parallel layers and a TP=2 TinyGPT on torchrun equal to one process, the same with "
           "DTensor; sequence parallelism and activation memory against Korthikanti et al.; GPipe and 1F1B over "
           "stage processes, the measured bubble against (p - 1) / (m + p - 1) and in-flight activations; a 3-D "
           "(DP, TP, PP, ZeRO) planner checked against the kit's CPU runs and published GPU figures; a TinyGPT "
           "scaling-law grid fitted to L(N, D) beside Chinchilla; back-of-envelope drills",
           topics=(Topic("parallel", "Tensor, sequence and pipeline parallelism",
                         _nb("15_parallel1_tensor_sequence_pipeline"), ("PipelineTimeline",)),
                   Topic("estimate", "Planning a training run: memory, time, communication, scaling laws",
                         _nb("15_parallel2_planning_scaling_drills"), ("PlannerWidget", "DrillWidget"))),
           exercises=("parallel.column_parallel_linear", "parallel.row_parallel_linear", "parallel.pipeline_schedule",
                      "estimate.training_memory_per_gpu", "estimate.training_days", "estimate.allreduce_seconds"),
           practice="15_parallelism_and_planning",
           budget=Budget(fast={"tp_steps": 4, "tp_batch": 4, "tp_n_layer": 1, "tp_n_head": 2, "tp_n_embd": 32, "tp_block": 16, "tp_chars": 30000, "tp_sp_run": False, "sp_seq": 128, "sp_batch": 1, "sp_hidden": 128, "sp_heads": 8, "sp_tps": (1, 2, 4), "pp_stages": 2, "pp_microbatches": 4, "pp_sweep": (4,), "pp_steps": 3, "pp_batch": 8, "pp_n_layer": 2, "pp_n_embd": 32, "pp_block": 16, "pp_chars": 30000, "pp_torch_impl": (), "plan_probe_size": 128, "plan_probe_repeats": 5, "plan_gloo_probe": False, "scaling_live_points": 1, "scaling_seeds": 2, "scaling_long_steps": 300},
                         full={"tp_steps": 20, "tp_batch": 8, "tp_n_layer": 4, "tp_n_head": 4, "tp_n_embd": 128, "tp_block": 64, "tp_chars": 200000, "tp_sp_run": True, "sp_seq": 512, "sp_batch": 2, "sp_hidden": 512, "sp_heads": 8, "sp_tps": (1, 2, 4, 8), "pp_stages": 2, "pp_microbatches": 8, "pp_sweep": (1, 2, 4, 8, 16), "pp_steps": 12, "pp_batch": 32, "pp_n_layer": 8, "pp_n_embd": 256, "pp_block": 64, "pp_chars": 200000, "pp_torch_impl": ('gpipe', '1f1b'), "plan_probe_size": 512, "plan_probe_repeats": 20, "plan_gloo_probe": True, "scaling_live_points": 8, "scaling_seeds": 5, "scaling_long_steps": 1200})),
)

#: What the seed interview banks ask that no lesson covers yet (README lists it under the table).
NOT_YET_COVERED: tuple[str, ...] = ()


def lesson(number: int) -> Lesson:
    """The lesson numbered ``number`` (ValueError naming the numbers if there is none)."""
    for entry in LESSONS:
        if entry.number == number:
            return entry
    raise ValueError(f"no lesson {number!r}; lessons: {', '.join(str(x.number) for x in LESSONS)}")


def topics() -> list[Topic]:
    """Every topic, in curriculum order."""
    return [t for entry in LESSONS for t in entry.topics]


def topic(key: str) -> Topic:
    """The topic ``key`` (ValueError naming the keys if unknown)."""
    for t in topics():
        if t.key == key:
            return t
    raise ValueError(f"unknown topic {key!r}; topics: {', '.join(t.key for t in topics())}")


def lesson_of_topic(key: str) -> Lesson:
    """The lesson that teaches topic ``key``."""
    topic(key)
    return next(entry for entry in LESSONS if any(t.key == key for t in entry.topics))


def _link(path: str, prefix: str) -> str:
    return f"[`{path}`]({prefix}{path})"


def readme_table(prefix: str = "") -> str:
    """The curriculum as a Markdown table (README's, with links relative to ``prefix``)."""
    rows = ["| # | lesson | graded exercises (ids) | quiz topics |", "|---|---|---|---|"]
    for entry in LESSONS:
        notebooks = "; ".join(_link(nb, prefix) for nb in entry.notebooks)
        what = f"**{entry.title}**: {notebooks}: {entry.summary}"
        if entry.exercises:
            exercises = (f"{_link(entry.exercise_notebook, prefix)} (solved: "
                         f"{_link(entry.solution_notebook, prefix)}): "
                         + ", ".join(f"`{i}`" for i in entry.exercises))
        else:
            exercises = "—"
        quiz = ", ".join(f"`{k}`" for k in entry.quiz_topics) or "—"
        rows.append(f"| {entry.number:02d} | {what} | {exercises} | {quiz} |")
    return "\n".join(rows) + "\n"


README_BEGIN = "<!-- curriculum:begin (generated by `bigtrain-lab curriculum --write-readme`; edit curriculum.py) -->"
README_END = "<!-- curriculum:end -->"


def readme_section() -> str:
    """README's curriculum section: the table, then the topics no lesson covers yet."""
    waiting = (f"Not yet covered by a lesson (questions from the interview banks that wait for one): "
               f"{', '.join(NOT_YET_COVERED)}." if NOT_YET_COVERED
               else "Every topic of the seed interview banks has a lesson.")
    return f"{README_BEGIN}\n{readme_table()}\n{waiting}\n{README_END}"


def with_readme_section(readme: str) -> str:
    """``readme`` with its curriculum section (between the markers) replaced by ``readme_section()``."""
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"README lacks the markers {README_BEGIN!r} ... {README_END!r}")
    return readme[:begin] + readme_section() + readme[end + len(README_END):]


class CurriculumTable:
    """The curriculum table, rendered as Markdown in a notebook (links relative to ``notebooks/``)."""

    def __init__(self, prefix: str = "../") -> None:
        self.markdown = readme_table(prefix)

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return self.markdown


def curriculum_table(prefix: str = "../") -> CurriculumTable:
    """The curriculum for a notebook cell: ``curriculum_table()`` as the last line renders the table."""
    return CurriculumTable(prefix)

"""How to build every widget of ``bigtrain_lab.widgets`` with small data: the cases the conformance test
(``tests/test_widget_conformance.py``) and the browser test (``tests/test_widget_browser.py``) run.

``CASES`` maps a case id to a :class:`WidgetCase`; ``FIGURE_CASES`` maps an exported figure function
(``"module:function"``) to a builder of one figure it returns. The conformance test fails when an exported
widget (a class of a widget module's ``__all__`` that is not a dataclass) or figure function has no case
here, as scikit-learn's ``check_estimator`` runs over every estimator: a new widget needs a case before
it can land.

A case names the controls by the attribute that holds them on the widget (``slider``, ``sliders[gamma]``);
``values`` overrides the values the harness would pick (its default: the ends and the middle of a slider,
other options of a selection), for controls whose every value is expensive or whose range depends on
another control. Builders import lazily and cache their data, so this module imports in no time and the
browser test's kernel can import it too (the repository root on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WidgetCase:
    """One widget built with small data, and how to drive it.

    widget: the class it covers, ``"bigtrain_lab.widgets.<module>:<Class>"``.
    build: makes a fresh widget (through the factory the lesson calls, where there is one).
    values: control name -> values to set, in order (overrides the harness's choice).
    first / last: control names to sweep before / after the others (the rest in widget-tree order).
    inert: control name -> why changing it may leave every readout and figure unchanged.
    only: sweep only these controls (another case of the same widget sweeps the rest).
    controls: False for a widget without controls (then only its figures are checked).
    lesson: the notebook that shows it (for the browser test and the report).
    """

    widget: str
    build: Callable[[], Any]
    values: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    first: Sequence[str] = ()
    last: Sequence[str] = ()
    inert: Mapping[str, str] = field(default_factory=dict)
    only: Sequence[str] = ()
    controls: bool = True
    lesson: str = ""


# ---- small data, built once per process ---------------------------------------------------------------


@lru_cache(maxsize=1)
def scored_binary() -> tuple[np.ndarray, np.ndarray]:
    """200 labels (30 % positive) and overlapping probability scores."""
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(int)
    scores = 1 / (1 + np.exp(-(1.5 * y - 0.75 + rng.normal(0, 1, 200))))
    return y, scores


def compression_sweep() -> dict[str, Any]:
    """A synthetic trade-off sweep: three or four values per knob (the middle one is not the first)."""
    def rows(values, acc, size, lat=1.0, gzip=None):
        out = []
        for k, v in enumerate(values):
            row = {"value": v, "accuracy": acc[k], "accuracy_finetuned": min(0.97, acc[k] + 0.05),
                   "size_bytes": size[k], "latency_ms_b64": lat * (1 + 0.1 * k)}
            if gzip is not None:
                row["gzip_bytes"] = gzip[k]
            out.append(row)
        return out

    return {
        "dense": {"accuracy": 0.97, "size_bytes": 1000.0, "params": 250, "latency_ms_b64": 2.0},
        "unstructured": rows([0.0, 0.5, 0.8, 0.95], [0.97, 0.96, 0.9, 0.6], [1000] * 4,
                             gzip=[900, 600, 300, 120]),
        "structured": rows([0.25, 0.5, 0.75], [0.95, 0.9, 0.7], [750, 500, 250]),
        "bits": rows([8, 6, 4, 2], [0.97, 0.96, 0.9, 0.3], [250, 190, 125, 62]),
        "rank": rows([4, 8, 16, 32], [0.5, 0.8, 0.93, 0.96], [80, 160, 320, 640]),
    }


@lru_cache(maxsize=1)
def attention_maps() -> tuple[np.ndarray, list[str]]:
    """Causal attention maps (2 layers, 3 heads, 8 positions) over 8 one-character tokens."""
    rng = np.random.default_rng(0)
    raw = np.tril(rng.random((2, 3, 8, 8)) ** 3) + np.eye(8) * 1e-3
    return raw / raw.sum(-1, keepdims=True), list("the cat\n")


@lru_cache(maxsize=1)
def tabular_model() -> tuple[Any, ...]:
    """A 10-tree forest on 5 features, 8 test rows and their TreeSHAP values."""
    from sklearn.ensemble import RandomForestClassifier

    from bigtrain_lab.explain import tree_shap

    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 5))
    y = (X[:, 1] - X[:, 3] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X[:150], y[:150])
    X_test, y_test = X[150:158], y[150:158]
    return forest, X[:150], X_test, y_test, tree_shap(forest, X_test, class_index=1)


@lru_cache(maxsize=1)
def image_model() -> tuple[Any, Any, np.ndarray]:
    """An untrained digits CNN and 4 random 8x8 images."""
    import torch

    from bigtrain_lab.models import CNN

    torch.manual_seed(0)
    return CNN().eval(), torch.rand(4, 1, 8, 8), np.array([0, 1, 2, 3])


@lru_cache(maxsize=1)
def layer_histories() -> dict[str, Any]:
    """Two 2-epoch runs (3 recordings: epochs 0, 1, 2) of a small MLP on blobs (layer statistics every epoch), two initialisations."""
    from bigtrain_lab.models import MLP
    from bigtrain_lab.training_viz import fit_with_history, initialize

    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 6))
    y = rng.integers(0, 3, 240)
    X = centers[y] + rng.normal(size=(240, 6))
    data = (X[:160], y[:160], X[160:], y[160:])
    return {scheme: fit_with_history(initialize(MLP(6, (8, 8), 3), scheme), *data, epochs=2, stats_every=1,
                                     progress=False, batch_size=32)
            for scheme in ("kaiming", "dead_relu")}


# ---- builders -----------------------------------------------------------------------------------------


def _threshold():
    from bigtrain_lab.widgets.metrics import threshold_explorer

    return threshold_explorer(*scored_binary())


def _optimizer():
    from bigtrain_lab.widgets.optim import optimizer_explorer

    return optimizer_explorer("ill_conditioned", ("sgd", "adam"), steps=20)


def _schedule(name: str) -> Callable[[], Any]:
    def build():
        from bigtrain_lab.widgets.schedules import schedule_explorer

        return schedule_explorer(name, total_steps=400, warmup_steps=40, step_size=100)

    return build


def _memory():
    from bigtrain_lab.widgets.memory import memory_calculator

    return memory_calculator("GPT-2 small (124 M)", world_size=8)


def _attention():
    from bigtrain_lab.widgets.attention import attention_explorer

    maps, tokens = attention_maps()
    return attention_explorer(maps, tokens, layer=0, position=6)


def _ring():
    from bigtrain_lab.widgets.distributed import ring_stepper

    return ring_stepper(world_size=4)


def _scaling():
    from bigtrain_lab.widgets.distributed import scaling_calculator

    return scaling_calculator(n_params_m=124, compute_ms=100, bandwidth_gbs=25, latency_us=5, grad_bytes=2)


def _tradeoff():
    from bigtrain_lab.widgets.compress import tradeoff_explorer

    return tradeoff_explorer(compression_sweep())


def _augment():
    from bigtrain_lab.widgets.augment import augment_playground

    return augment_playground("digit 6", {"rotate": 20.0, "brightness": 0.3}, n_samples=3)


def _tabular():
    from bigtrain_lab.widgets.explain import TabularExplorer

    forest, X_train, X_test, y_test, shap_values = tabular_model()
    return TabularExplorer(forest.predict_proba, X_train, X_test, y_test, shap_values,
                           feature_names=[f"feature {j}" for j in range(5)], class_names=["no", "yes"],
                           num_samples=100)


def _image():
    from bigtrain_lab.widgets.explain import ImageExplorer

    return ImageExplorer(*image_model(), steps=4, lime_samples=40)


def _layer_stats():
    from bigtrain_lab.widgets.training_viz import LayerStatsExplorer

    return LayerStatsExplorer(layer_histories(), scheme="kaiming")


def _live_curves():
    from bigtrain_lab.training_viz import history_curves
    from bigtrain_lab.widgets.training_viz import LiveCurves

    history = layer_histories()["kaiming"]
    live = LiveCurves(history_curves, title="MLP on blobs", x_title="epoch", accuracy_panel=True, display=False)
    live(history)
    return live


@lru_cache(maxsize=1)
def ensemble_members() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Four members' predicted probabilities on 60 samples of 3 blobs (logistic regression, kNN, naive Bayes, a
    stump), and the samples' labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    X = rng.normal(0, 1.2, (3, 4))[y] + rng.normal(size=(200, 4))
    models = {"logreg": LogisticRegression(), "kNN": KNeighborsClassifier(7), "naive Bayes": GaussianNB(),
              "stump": DecisionTreeClassifier(max_depth=1, random_state=0)}
    return {name: m.fit(X[:140], y[:140]).predict_proba(X[140:]) for name, m in models.items()}, y[140:]


def _ensemble_builder():
    from bigtrain_lab.widgets.ensemble import EnsembleBuilder

    return EnsembleBuilder(*ensemble_members())


def synthetic_race() -> dict:
    """A race of four strategies over 3 seeds and 6 trials, in ``bigtrain_lab.hpo.race``'s format: random
    best-so-far curves."""
    rng = np.random.default_rng(0)
    results = {"n_trials": 6, "max_epochs": 9, "seeds": [0, 1, 2], "budgets": list(range(1, 7)), "strategies": {}}
    for strategy in ("grid", "random", "tpe", "halving"):
        curves = np.maximum.accumulate(rng.uniform(0.5, 1.0, (3, 6)), axis=1).tolist()
        results["strategies"][strategy] = {"curves": curves, "final": [c[-1] for c in curves]}
    return results


def _hpo_race():
    from bigtrain_lab.widgets.hpo import HPORace

    return HPORace(synthetic_race(), strategies=["random", "tpe"])


def synthetic_sweep(epochs: int = 6) -> dict:
    """A 2 x 2 x 2 sweep with made-up curves: the stronger the regularization, the smaller the gap."""
    from bigtrain_lab.regularization import HIST_EDGES, point_key

    rng = np.random.default_rng(0)
    grid = {"weight_decay": [0.0, 1.0], "dropout": [0.0, 0.5], "label_smoothing": [0.0, 0.1]}
    runs = {}
    for wd in grid["weight_decay"]:
        for p in grid["dropout"]:
            for ls in grid["label_smoothing"]:
                strength = wd + p + 5 * ls
                e = np.arange(epochs + 1)
                train_loss = 2.3 * np.exp(-e)
                val_loss = 2.3 * np.exp(-e / 2) + 0.1 * e / (1 + strength)
                counts = rng.integers(0, 50, len(HIST_EDGES) - 1)
                final = {"train_loss": float(train_loss[-1]), "val_loss": float(val_loss[-1]), "train_accuracy": 1.0,
                         "val_accuracy": round(0.8 + 0.02 * strength, 4), "gap": round(0.2 - 0.02 * strength, 4),
                         "loss_gap": float(val_loss[-1] - train_loss[-1]), "norm": 20 / (1 + wd), "sparsity": 0.01,
                         "largest": 1.0}
                runs[point_key(wd, p, ls)] = {
                    "epochs": e.tolist(), "train_loss": train_loss.tolist(), "val_loss": val_loss.tolist(),
                    "train_acc": np.minimum(1, 0.1 + e / 3).tolist(), "val_acc": np.minimum(0.8, 0.1 + e / 4).tolist(),
                    "final": final, "hist_counts": counts.tolist()}
    return {**grid, "epochs": epochs, "hist_edges": list(HIST_EDGES), "runs": runs}


def _regularization_explorer():
    from bigtrain_lab.widgets.regularization import RegularizationExplorer

    return RegularizationExplorer(synthetic_sweep(), dropout=0.5)


def _feature_projection():
    import torch

    from bigtrain_lab.models import CNN
    from bigtrain_lab.widgets.transfer import FeatureProjection

    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(40, 1, 8, 8, generator=g), torch.arange(40) % 5
    torch.manual_seed(0)
    return FeatureProjection({"random": CNN(5), "other": CNN(5)}, X, y, class_names=list("56789"))


def synthetic_load_sweep() -> dict:
    """Made-up load runs: 3 batching settings x 3 rates; no batching saturates at the highest rate."""
    from bigtrain_lab.serving.sweep import sweep_key

    rng = np.random.default_rng(0)
    configs = [{"max_batch": 1, "max_wait_ms": 0.0}, {"max_batch": 8, "max_wait_ms": 2.0},
               {"max_batch": 8, "max_wait_ms": 5.0}, {"max_batch": 32, "max_wait_ms": 2.0},
               {"max_batch": 32, "max_wait_ms": 5.0}]
    rates = [50.0, 200.0, 800.0]
    runs = {}
    for c in configs:
        for r in rates:
            base = 2.0 + c["max_wait_ms"] / 2 + (60.0 if c["max_batch"] == 1 and r >= 800 else 0.0)
            lat = (base * rng.lognormal(0.0, 0.4, 60)).round(3)
            served = min(r, 300.0 if c["max_batch"] == 1 else 900.0)
            pct = np.percentile(lat, [50, 95, 99])
            runs[sweep_key(c["max_batch"], c["max_wait_ms"], r)] = {
                "latencies_ms": lat.tolist(), "batch_sizes": [min(c["max_batch"], 1 + int(r // 100))] * 5,
                "report": {"p50": float(pct[0]), "p95": float(pct[1]), "p99": float(pct[2]), "mean": float(lat.mean()),
                           "max": float(lat.max()), "throughput_per_s": served, "error_rate": 1 - served / r}}
    return {"configs": configs, "rates": rates, "forward_ms": [2.0, 0.02], "runs": runs}


def _batching_explorer():
    from bigtrain_lab.widgets.serving import BatchingExplorer

    return BatchingExplorer(synthetic_load_sweep(), max_batch=8, rate=200.0)


def _epsilon_dial():
    from bigtrain_lab.widgets.privacy import EpsilonDial
    from tests.test_privacy_experiments import tiny_sweep

    return EpsilonDial(tiny_sweep(), epsilon=1.0)


def _federated_viewer():
    from bigtrain_lab.widgets.federated import FederatedViewer

    return FederatedViewer(alpha=0.1, local_steps=10, n_clients=3, rounds=8)


@lru_cache(maxsize=1)
def tiny_tokenizers() -> dict[int, Any]:
    """Byte-level BPE tokenizers at 256 (bytes only), 300, 350 and 400 tokens, trained on 8,000 characters of the
    corpus (one training run; the smaller ones are its prefixes, which is what training to them gives)."""
    from bigtrain_lab.data import load_text_corpus
    from bigtrain_lab.llm.bpe import train_bpe

    corpus = load_text_corpus(max_chars=8000)
    largest = train_bpe(corpus.decode(corpus.train), 400)
    return {v: largest.prefix(v - 256) for v in (256, 300, 350, 400)}


@lru_cache(maxsize=1)
def tiny_lm() -> tuple[Any, Callable[[str], list[int]], Callable[[Any], str]]:
    """An untrained one-layer TinyGPT over the 100 printable ASCII characters, with its encode and decode."""
    import string

    import torch

    from bigtrain_lab.models import GPTConfig, TinyGPT

    chars = string.printable
    lookup = {c: i for i, c in enumerate(chars)}

    def encode(text: str) -> list[int]:
        return [lookup[c] for c in text]

    def decode(ids: Any) -> str:
        return "".join(chars[int(i)] for i in ids)

    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=len(chars), block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()
    return model, encode, decode


def _tokenizer_playground():
    from bigtrain_lab.widgets.llm import TokenizerPlayground

    return TokenizerPlayground(tiny_tokenizers(), text="def f(x):\n    return x  # café", vocab_size=350)


def _decoding_explorer():
    from bigtrain_lab.widgets.llm import DecodingExplorer

    return DecodingExplorer(*tiny_lm(), prompt="def ", temperature=0.8, n_samples=2, max_new_tokens=10, show=12)


def _kv_cache_calculator():
    from bigtrain_lab.widgets.llm import KVCacheCalculator

    return KVCacheCalculator("Llama-2-7B")


def _pipeline_timeline():
    from bigtrain_lab.widgets.parallel import PipelineTimeline

    return PipelineTimeline(num_stages=4, num_microbatches=8, schedule="1f1b")


def _planner():
    from bigtrain_lab.widgets.estimate import PlannerWidget

    return PlannerWidget("Llama-2 7B", nodes=1, global_batch=64, top=4)


def _drill():
    from bigtrain_lab.widgets.estimate import DrillWidget

    return DrillWidget("training_flops", record=False, seed=0)


_SCHEDULE_SLIDERS = {"sliders[total_steps]": (200, 1000, 400), "sliders[warmup_steps]": (0, 80, 20),
                     "sliders[step_size]": (1, 150, 50), "sliders[base_lr]": (1e-5, 0.1, 0.001),
                     "sliders[min_lr]": (1e-6, 1e-4, 1e-5), "sliders[gamma]": (0.1, 0.9, 0.5),
                     "sliders[pct_start]": (0.1, 0.6, 0.3), "sliders[decay_fraction]": (0.1, 0.5, 0.3)}

CASES: dict[str, WidgetCase] = {
    "threshold_explorer": WidgetCase("bigtrain_lab.widgets.metrics:ThresholdExplorer", _threshold,
                                     lesson="01_metrics"),
    "optimizer_explorer": WidgetCase(
        "bigtrain_lab.widgets.optim:OptimizerExplorer", _optimizer,
        # a new surface runs its own number of steps (300 on himmelblau): one surface change only
        values={"optimizers": [("sgd",), ("momentum", "adam")], "surface": ["himmelblau"],
                "lr_scale": [3.0, 0.5], "steps": [5, 30]},
        lesson="02_optimizers_and_schedules"),
    # Each schedule greys out the sliders it does not read: three cases exercise every slider enabled.
    **{f"schedule_explorer[{name}]": WidgetCase(
        "bigtrain_lab.widgets.schedules:ScheduleExplorer", _schedule(name), values={
            **_SCHEDULE_SLIDERS, "dropdown": ["cosine", name]},
        last=("dropdown",), only=only, lesson="02_optimizers_and_schedules")
       for name, only in (("wsd", ()), ("step", ("sliders[step_size]", "sliders[gamma]")),
                          ("one_cycle", ("sliders[pct_start]",)))},
    "memory_calculator": WidgetCase("bigtrain_lab.widgets.memory:MemoryCalculator", _memory,
                                    values={"world_size": [1, 64, 16], "batch_size": [1, 64, 4]},
                                    lesson="03_batch_precision_memory"),
    "attention_explorer": WidgetCase("bigtrain_lab.widgets.attention:AttentionExplorer", _attention,
                                     lesson="04_graphs_attention_debugging"),
    "ring_stepper": WidgetCase("bigtrain_lab.widgets.distributed:RingStepper", _ring,
                               values={"workers": [8, 3], "step": [4, 1]}, lesson="05_distributed"),
    "scaling_calculator": WidgetCase("bigtrain_lab.widgets.distributed:ScalingCalculator", _scaling,
                                     lesson="05_distributed"),
    "tradeoff_explorer": WidgetCase("bigtrain_lab.widgets.compress:TradeoffExplorer", _tradeoff,
                                    lesson="06_compression"),
    "augment_playground": WidgetCase(
        "bigtrain_lab.widgets.augment:AugmentPlayground", _augment,
        values={"seed": [1, 5], "source": ["digit 3", "china", "digit 6"]},
        # at 3 samples a flip / erasing probability may draw the same flips for two close values: the
        # harness only needs one of the three values to change the picture
        lesson="07_data_augmentation"),
    "tabular_explorer": WidgetCase("bigtrain_lab.widgets.explain:TabularExplorer", _tabular,
                                   lesson="08_explainability"),
    "image_explorer": WidgetCase("bigtrain_lab.widgets.explain:ImageExplorer", _image,
                                 lesson="08_explainability"),
    "layer_stats_explorer": WidgetCase("bigtrain_lab.widgets.training_viz:LayerStatsExplorer", _layer_stats,
                                       lesson="09_visualizing_training"),
    "live_curves": WidgetCase("bigtrain_lab.widgets.training_viz:LiveCurves", _live_curves, controls=False,
                              lesson="09_visualizing_training"),
    "ensemble_builder": WidgetCase("bigtrain_lab.widgets.ensemble:EnsembleBuilder", _ensemble_builder,
                                   lesson="11_ensembles"),
    "hpo_race": WidgetCase("bigtrain_lab.widgets.hpo:HPORace", _hpo_race,
                           values={"strategies": [("grid",), ("random", "halving")], "budget": [1, 6, 3]},
                           lesson="11_hyperparameter_search"),
    "regularization_explorer": WidgetCase("bigtrain_lab.widgets.regularization:RegularizationExplorer",
                                          _regularization_explorer, lesson="10_regularization"),
    "feature_projection": WidgetCase("bigtrain_lab.widgets.transfer:FeatureProjection", _feature_projection,
                                     lesson="10_transfer_learning"),
    "batching_explorer": WidgetCase("bigtrain_lab.widgets.serving:BatchingExplorer", _batching_explorer,
                                    lesson="13_serving"),
    "epsilon_dial": WidgetCase("bigtrain_lab.widgets.privacy:EpsilonDial", _epsilon_dial,
                               lesson="12_differential_privacy"),
    "federated_viewer": WidgetCase("bigtrain_lab.widgets.federated:FederatedViewer", _federated_viewer,
                                   lesson="12_federated_learning"),
    "tokenizer_playground": WidgetCase("bigtrain_lab.widgets.llm:TokenizerPlayground", _tokenizer_playground,
                                       values={"text": ["東京 naïve", "", "x = 1\n"]},
                                       lesson="14_llm1_tokens_positions_attention"),
    "decoding_explorer": WidgetCase("bigtrain_lab.widgets.llm:DecodingExplorer", _decoding_explorer,
                                    values={"prompt": ["import os", "é", "def "]},
                                    lesson="14_llm2_decoding_moe_stability"),
    "kv_cache_calculator": WidgetCase("bigtrain_lab.widgets.llm:KVCacheCalculator", _kv_cache_calculator,
                                      lesson="14_llm1_tokens_positions_attention"),
    "pipeline_timeline": WidgetCase("bigtrain_lab.widgets.parallel:PipelineTimeline", _pipeline_timeline,
                                    lesson="15_parallel1_tensor_sequence_pipeline"),
    "planner_widget": WidgetCase("bigtrain_lab.widgets.estimate:PlannerWidget", _planner,
                                 values={"model": ["GPT-3 175B", "custom"], "nodes": [2, 4], "global_batch": [32, 128],
                                         "layers": [4, 8], "hidden": [512, 1024], "heads": [8, 16], "row": [1, 3]},
                                 lesson="15_parallel2_planning_scaling_drills"),
    "drill_widget": WidgetCase("bigtrain_lab.widgets.estimate:DrillWidget", _drill,
                               values={"answer": ["1e21", "3 ZFLOPs"]}, lesson="15_parallel2_planning_scaling_drills"),
}


def _trajectory_figure():
    from bigtrain_lab.widgets.optim import trajectory_figure, trajectory_view

    return trajectory_figure(trajectory_view("himmelblau", ("sgd", "adam"), steps=20), grid=40)


def _image_grid_figure():
    from bigtrain_lab.widgets.augment import image_grid_figure, source_image

    digit = source_image("digit 6")
    return image_grid_figure([digit, digit[::-1], digit[:, ::-1]], ["original", "flipped up-down", "mirrored"],
                             cols=3)


#: exported figure functions -> a builder of one figure each returns (the figure lints apply to them)
def _timeline_figure():
    from bigtrain_lab.widgets.parallel import timeline_figure, timeline_state

    return timeline_figure(timeline_state(4, 8, "gpipe", 2.0)["events"], title="gpipe, p = 4, m = 8")


FIGURE_CASES: dict[str, Callable[[], Any]] = {
    "bigtrain_lab.widgets.optim:trajectory_figure": _trajectory_figure,
    "bigtrain_lab.widgets.augment:image_grid_figure": _image_grid_figure,
    "bigtrain_lab.widgets.parallel:timeline_figure": _timeline_figure,
}

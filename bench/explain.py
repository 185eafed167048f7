"""Time per explanation for every explainer of bigtrain_lab.explain, and the agreement / stability figures.

    python bench/explain.py [--rows N] [--threads T] [--out-dir DIR]
    bigtrain-lab bench explain

Models: a 100-tree random forest on breast_cancer (tabular), the lesson's CNN on the 8x8 digits (images),
a 2-layer TinyGPT (attention). Each timing is the median over the explained rows / images of one call
(first call excluded: it pays one-time costs such as shap's numba compilation, reported separately).
Prints a table and saves bench/results/explain.json with the conditions it ran under (bench/conditions.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from conditions import Conditions, save_result
from sklearn.ensemble import RandomForestClassifier

from bigtrain_lab import explain as ex
from bigtrain_lab import seed_everything
from bigtrain_lab.data import load_dataset
from bigtrain_lab.models import CNN, GPTConfig, TinyGPT
from bigtrain_lab.training_viz import fit_with_history

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, items) -> tuple[float, float, list]:
    """(first call seconds, median seconds of the others, results)."""
    seconds, results = [], []
    for item in items:
        start = time.perf_counter()
        results.append(fn(item))
        seconds.append(time.perf_counter() - start)
    rest = seconds[1:] or seconds
    return seconds[0], float(np.median(rest)), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20, help="tabular rows / images explained per method")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where explain.json goes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    conditions = Conditions.start(threads=args.threads)
    seed_everything(0)
    timings: dict[str, dict] = {}

    def record(name: str, unit: str, first: float, median: float, note: str = "") -> None:
        timings[name] = {"unit": unit, "first_call_s": round(first, 4), "median_s": round(median, 5), "note": note}
        print(f"{name:44s} {1000 * median:10.2f} ms per {unit:9s} (first call {first:6.2f} s) {note}")

    # ---- tabular -----------------------------------------------------------------------------------
    bc = load_dataset("breast_cancer", seed=0)
    forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(bc.X_train, bc.y_train)
    rows = list(range(min(args.rows, len(bc.X_test))))
    proba1 = lambda X: forest.predict_proba(X)[:, 1]  # noqa: E731
    first, med, shap_rows = timed(lambda i: ex.tree_shap(forest, bc.X_test[i:i + 1])[0], rows)
    record("TreeSHAP (random forest, 30 features)", "row", first, med)
    shap_all = ex.tree_shap(forest, bc.X_test)
    cols = np.argsort(-np.abs(shap_all).mean(0))[:10]
    background = bc.X_train.mean(0)

    def on_subset(i):
        def f(Z):
            X = np.repeat(bc.X_test[i:i + 1], len(Z), axis=0)
            X[:, cols] = Z
            return proba1(X)
        return f

    first, med, _ = timed(lambda i: ex.exact_shapley(on_subset(i), bc.X_test[i, cols], background[cols]), rows)
    record("exact Shapley, ours (10 features, 1024 calls)", "row", first, med)
    first, med, _ = timed(lambda i: ex.exact_shap(on_subset(i), bc.X_test[i, cols], background[None, cols]), rows)
    record("shap.explainers.Exact (10 features)", "row", first, med, "first call compiles numba")
    first, med, _ = timed(lambda i: ex.permutation_shap(proba1, bc.X_test[i:i + 1], bc.X_train[:50], max_evals=500),
                          rows)
    record("shap Permutation (500 evals, 50 background)", "row", first, med)
    for n in (1000, 5000):
        first, med, lime_rows = timed(lambda i, n=n: ex.lime_tabular_weights(
            forest.predict_proba, bc.X_train, bc.X_test[i], num_samples=n, seed=0, discretize=True), rows)
        record(f"lime LimeTabularExplainer ({n} samples)", "row", first, med)
        if n == 1000:
            agreement = [ex.rank_agreement(w, shap_all[i], k=5) for i, w in zip(rows, lime_rows, strict=True)]
    scaled = (bc.X_train - bc.X_train.mean(0)) / bc.X_train.std(0)
    mean, std = bc.X_train.mean(0), bc.X_train.std(0)
    first, med, _ = timed(lambda i: ex.local_linear_lime(lambda Z: proba1(Z * std + mean), scaled[i],
                                                         num_samples=1000, seed=0), rows)
    record("minimal LIME, ours (1000 samples)", "row", first, med)

    stability = {}
    for n in (200, 1000, 5000):
        per_row = [ex.lime_stability(lambda s, i=i, n=n: ex.lime_tabular_weights(
            forest.predict_proba, bc.X_train, bc.X_test[i], num_samples=n, seed=s, discretize=True),
            seeds=range(5)) for i in rows[:5]]
        stability[n] = {k: float(np.mean([r[k] for r in per_row])) for k in ("spearman", "top_k", "sign_flips")}
    fidelity = {d: ex.fit_surrogate_tree(forest.predict, bc.X_train, bc.X_test, max_depth=d).fidelity
                for d in (1, 2, 3, 4, 6)}

    # ---- images ------------------------------------------------------------------------------------
    dg = load_dataset("digits", seed=0)
    to_images = lambda X: torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)  # noqa: E731
    img_train, img_val, img_test = to_images(dg.X_train), to_images(dg.X_val), to_images(dg.X_test)
    seed_everything(0)
    cnn = CNN()
    fit_with_history(cnn, img_train, dg.y_train, img_val, dg.y_val, epochs=15, lr=2e-3, progress=False)
    cnn.eval()
    images = [img_test[i:i + 1] for i in range(args.rows)]
    targets = [int(cnn(x).argmax()) for x in images]
    pairs = list(zip(images, targets, strict=True))

    def predict_rgb(batch):
        with torch.no_grad():
            return torch.softmax(cnn(torch.tensor(batch[..., 0], dtype=torch.float32).unsqueeze(1)), 1).numpy()

    image_methods = {
        "saliency": lambda p: ex.saliency(cnn, p[0], p[1]),
        "integrated gradients, ours (64 steps)": lambda p: ex.integrated_gradients(cnn, p[0], None, target=p[1],
                                                                                   steps=64),
        "integrated gradients, captum (64 steps)": lambda p: ex.captum_integrated_gradients(cnn, p[0], None,
                                                                                            target=p[1], steps=64),
        "Grad-CAM": lambda p: ex.grad_cam(cnn, p[0], p[1]),
        "lime LimeImageExplainer (300 samples)": lambda p: ex.lime_image_weights(
            predict_rgb, p[0][0, 0].numpy(), label=p[1], num_samples=300, seed=0),
        "shap GradientExplainer (200 samples)": lambda p: ex.gradient_shap(cnn, p[0], img_train[:50], p[1],
                                                                           nsamples=200, seed=0),
    }
    for name, fn in image_methods.items():
        first, med, _ = timed(fn, pairs)
        record(name, "image", first, med)
    x_all = img_test[:64]
    randomization = ex.model_randomization_test(cnn, x_all, cnn(x_all).argmax(1), {
        "saliency": lambda m, x, t: ex.saliency(m, x, t),
        "gradient x input": lambda m, x, t: ex.gradient_x_input(m, x, t),
        "integrated gradients": lambda m, x, t: ex.integrated_gradients(m, x, None, target=t, steps=16),
        "Grad-CAM": lambda m, x, t: ex.grad_cam(m, x, t),
    }, image_shape=(8, 8))

    # ---- TinyGPT -----------------------------------------------------------------------------------
    seed_everything(0)
    gpt = TinyGPT(GPTConfig(vocab_size=16, block_size=24, n_layer=2, n_head=2, n_embd=32)).eval()
    seqs = [torch.randint(0, 16, (24,)) for _ in range(args.rows)]
    for name, fn in {"attention maps (TinyGPT, T=24)": lambda s: ex.attention_maps(gpt, s),
                     "attention rollout": lambda s: ex.attention_rollout(ex.attention_maps(gpt, s)),
                     "token saliency (24 backward passes)": lambda s: ex.token_saliency(gpt, s)}.items():
        first, med, _ = timed(fn, seqs)
        record(name, "sequence", first, med)

    figures = {
        "lime_vs_shap": {"rows": len(agreement), "spearman_mean": float(np.mean([a.spearman for a in agreement])),
                         "top5_overlap_mean": float(np.mean([a.top_k for a in agreement]))},
        "lime_stability_5_seeds_5_rows": {str(n): v for n, v in stability.items()},
        "surrogate_fidelity_by_depth": {str(d): v for d, v in fidelity.items()},
        "randomization_final_spearman": {k: v[-1] for k, v in randomization.spearman.items()},
    }
    print(json.dumps(figures, indent=2))
    path = save_result("explain", {"rows": args.rows, "timings": timings, "figures": figures}, conditions.finish(),
                       out_dir=args.out_dir)
    print(f"saved {path}")


if __name__ == "__main__":
    main()

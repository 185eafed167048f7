"""Augmentation throughput (images per second): one image at a time (numpy uint8 images, the way a
per-sample Dataset transform runs) vs one call on a batched torch tensor, on the CPU and on CUDA if present.

    python bench/augment.py [--fast] [--threads N] [--out-dir DIR]
    bigtrain-lab bench augment

The pipeline is the same object on every path: RandomAffine(15 deg, 10 % shift, 0.9-1.1 zoom) +
ColorJitter(0.3, 0.3, 0.3, 0.05) + GaussianNoise(0.03) + RandomHorizontalFlip, on 3 x 64 x 64 images
(and on 3 x 224 x 224). Median of repeated runs after a warm-up. Saves bench/results/augment.json with the
conditions it ran under (bench/conditions.py). Full size: about 3 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from conditions import Conditions, save_result

from bigtrain_lab.augment import (
    ColorJitter,
    Compose,
    GaussianNoise,
    RandomAffine,
    RandomHorizontalFlip,
    make_generator,
)

ROOT = Path(__file__).resolve().parent.parent


def pipeline() -> Compose:
    return Compose([RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                    ColorJitter(0.3, 0.3, 0.3, 0.05), GaussianNoise(0.03), RandomHorizontalFlip()])


def _median_seconds(fn, repeats: int, sync=lambda: None) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int, batch: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    images = [(rng.random((size, size, 3)) * 255).astype(np.uint8) for _ in range(batch)]
    t = pipeline()
    g = make_generator(0)
    out = {"numpy_one_by_one": batch / _median_seconds(lambda: [t(im, g) for im in images], repeats)}
    cpu_batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)
    out["torch_batch_cpu"] = batch / _median_seconds(lambda: t(cpu_batch, g), repeats)
    if torch.cuda.is_available():
        gpu_batch = cpu_batch.cuda()
        out["torch_batch_cuda"] = batch / _median_seconds(lambda: t(gpu_batch, g), repeats, torch.cuda.synchronize)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="few repeats, small batches (the tests' budget)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where augment.json goes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.fast else 7
    configs = [(64, 32 if args.fast else 256), (224, 8 if args.fast else 64)]
    conditions = Conditions.start()
    results = {}
    for size, batch in configs:
        key = f"3x{size}x{size}, batch {batch}"
        results[key] = measure(size, batch, repeats)
        print(key + ": " + ", ".join(f"{k} {v:,.0f} img/s" for k, v in results[key].items()))
    out = save_result("augment", {"images_per_second": results}, conditions.finish(), out_dir=args.out_dir)
    print(f"saved {out}")


if __name__ == "__main__":
    main()

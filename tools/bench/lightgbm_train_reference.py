#!/usr/bin/env python3
"""Times LightGBM training on the data of `crates/dipper-train/benches/gbm_train.rs` (200k rows x 30
features, binary; the same splitmix64 formula, so the same values), 100 iterations, 31 leaves, 2 threads,
Dataset construction (binning) included as dipper's fit includes it. Prints the time per 100 iterations.

Run: /root/.cache/venv-ref/bin/python tools/bench/lightgbm_train_reference.py [repeats]
On a busy machine, OpenMP's spinning threads slow LightGBM down a lot; OMP_WAIT_POLICY=passive in the
environment gives it its best case there.
"""
import sys
import time

import lightgbm as lgb
import numpy as np

ROWS, FEATURES = 200_000, 30
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x):
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(x):
    return (splitmix64(x) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def make_data():
    idx = np.arange(ROWS * FEATURES, dtype=np.uint64)
    X = ((uniform(idx) - 0.5) * 4.0).reshape(ROWS, FEATURES)
    x = X.T
    logit = (x[0] - 0.8 * x[1] + 0.6 * x[2] * x[3] + 0.5 * x[4] * x[4] - 1.0 + 0.4 * x[5]
             - 0.3 * x[6] * x[7] + (x[8] > 0.5).astype(np.float64) + 0.2 * x[9])
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (uniform(np.uint64(1 << 40) + np.arange(ROWS, dtype=np.uint64)) < p).astype(np.float64)
    return X, y


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    X, y = make_data()
    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.1, "min_data_in_leaf": 20,
              "lambda_l2": 0.0, "max_bin": 255, "num_threads": 2, "verbose": -1, "seed": 0}
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        ds = lgb.Dataset(X, y, params={"max_bin": 255, "verbose": -1})
        lgb.train(params, ds, num_boost_round=100)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    times.sort()
    cpu.sort()
    print(f"LightGBM {lgb.__version__}: 200k x 30 binary, 100 iterations, 31 leaves, 2 threads: "
          f"wall median {times[len(times) // 2]:.3f} s, min {times[0]:.3f} s; CPU median "
          f"{cpu[len(cpu) // 2]:.3f} s over {repeats} runs; positives {y.mean():.3f}")


if __name__ == "__main__":
    main()

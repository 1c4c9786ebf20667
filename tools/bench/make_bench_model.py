#!/usr/bin/env python3
"""Builds the benchmark model and measures LightGBM's own prediction speed on it.

The model: binary LightGBM, 100 trees, 31 leaves, 30 features, trained on a synthetic set (seeded). It is written
to fixtures/bench/lgbm_100x31x30.txt with 1000 scoring rows (rows.jsonl) that the criterion bench
(crates/dipper-models/benches/predict.rs) also scores, so both sides score the same rows with the same model.

usage: python3 tools/bench/make_bench_model.py [--measure-only]
"""
import json, os, sys, time
import numpy as np
import lightgbm as lgb
from sklearn.datasets import make_classification

out = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "bench")
path = os.path.join(out, "lgbm_100x31x30.txt")
names = [f"x{i}" for i in range(30)]
X, y = make_classification(n_samples=20000, n_features=30, n_informative=20, random_state=7)
if "--measure-only" not in sys.argv:
    os.makedirs(out, exist_ok=True)
    params = dict(objective="binary", num_leaves=31, learning_rate=0.1, min_data_in_leaf=20, seed=7,
                  deterministic=True, num_threads=1, verbose=-1)
    b = lgb.train(params, lgb.Dataset(X, y, feature_name=names), num_boost_round=100)
    b.save_model(path)
    with open(os.path.join(out, "rows.jsonl"), "w") as f:
        for row in X[:1000]:
            f.write(json.dumps(dict(zip(names, map(float, row)))) + "\n")

b = lgb.Booster(model_file=path)
rows = X[:1000]
# Batch: all 1000 rows in one call, one thread; best of 20.
best = min(
    (lambda t0: (b.predict(rows, num_threads=1), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(20)
)
print(f"lightgbm batch: {best / len(rows) * 1e6:.2f} us/row")
# Single row: one call per row (numpy 1-row array), one thread.
one = [rows[i:i + 1] for i in range(200)]
t0 = time.perf_counter()
for r in one:
    b.predict(r, num_threads=1)
print(f"lightgbm single row: {(time.perf_counter() - t0) / len(one) * 1e6:.2f} us/row")

#!/usr/bin/env python3
"""Training quality and speed of `dipper train` against LightGBM and scikit-learn (the issue's quality bar).

For every dataset in fixtures/train and every algorithm, trains with the dipper CLI (release build) on the train
file, scores the test file with `dipper predict`, computes the metrics with scikit-learn, and compares with the
reference tools' scores in fixtures/train/reference.json (made by tools/fixtures/make_train_datasets.py with
comparable settings). Then times GBM training on 200k rows x 30 features with 2 threads against LightGBM.

The MLP is compared as the mean over seeds 0-4 on both sides (single runs of either vary by a few percent).

Bars: GBM AUC within 0.005 of LightGBM; rf, glm, nb, mlp, tree AUC within 0.01 of scikit-learn; regression RMSE
within 5% of the reference; GBM training time <= 1.5x LightGBM's.

usage: python3 tools/bench/train_quality.py [path/to/dipper] [--skip-speed]
(in a venv with numpy, scikit-learn and lightgbm)
"""
import json, os, subprocess, sys, tempfile, time
import numpy as np
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
dipper = next((a for a in sys.argv[1:] if not a.startswith("--")), os.path.join(target, "release", "dipper"))
fixtures = os.path.join(root, "fixtures", "train")
ref = json.load(open(os.path.join(fixtures, "reference.json")))
tmp = tempfile.mkdtemp()

# Settings comparable to the references (see reference.json "_settings").
PARAMS = {
    "gbm": ["--param", "num_iterations=200", "--param", "num_leaves=31", "--param", "learning_rate=0.1"],
    "rf": ["--param", "n_estimators=100"],
    "tree": ["--param", "max_depth=8", "--param", "min_samples_leaf=5"],
    "glm": [],
    "nb": [],
    "mlp": ["--param", "hidden=[64,32]"],
}


def run(args):
    r = subprocess.run([dipper] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(" ".join(args) + ": " + r.stderr.strip()[-400:])
    return r


def to_jsonl(csv_path):
    out = csv_path.replace(".csv", ".jsonl").replace(fixtures, tmp)
    head, *rows = open(csv_path).read().splitlines()
    names = head.split(",")
    with open(out, "w") as f:
        for r in rows:
            f.write(json.dumps(dict(zip(names, map(float, r.split(","))))) + "\n")
    return out


def evaluate_seeds(name, algo, classification, seeds):
    """Mean metrics over several seeds (for the MLP, whose single runs vary by a few percent)."""
    runs = [evaluate(name, algo, classification, ["--seed", str(s)]) for s in seeds]
    return {k: sum(r[0][k] for r in runs) / len(runs) for k in runs[0][0]}, sum(r[1] for r in runs)


def evaluate(name, algo, classification, extra=()):
    train = os.path.join(fixtures, f"{name}_train.csv")
    test_csv = os.path.join(fixtures, f"{name}_test.csv")
    y = np.loadtxt(test_csv, delimiter=",", skiprows=1)[:, -1]
    model = os.path.join(tmp, f"{name}-{algo}.json")
    t0 = time.perf_counter()
    task = ["--task", "classification" if classification else "regression"]
    run(["train", "--input", train, "--label", "y", "--algorithm", algo, "--output", model, "--quiet"] + task
        + PARAMS.get(algo, []) + list(extra))
    secs = time.perf_counter() - t0
    out = os.path.join(tmp, "pred.jsonl")
    run(["predict", "--model", model, "--input", to_jsonl(test_csv), "--output", out, "--quiet"])
    preds = [json.loads(l) for l in open(out)]
    if classification:
        classes = sorted(preds[0]["probabilities"], key=float)
        p = np.array([[r["probabilities"][c] for c in classes] for r in preds])
        m = {"logloss": log_loss(y, p, labels=[float(c) for c in classes]),
             "accuracy": accuracy_score(y, [float(r["prediction"]) for r in preds])}
        if len(classes) == 2:
            m["auc"] = roc_auc_score(y, p[:, 1])
    else:
        m = {"rmse": mean_squared_error(y, [r["prediction"] for r in preds]) ** 0.5}
    return m, secs


rows, failed = [], 0
for name, classification, algos in (("binary", True, ["gbm", "rf", "tree", "glm", "nb", "mlp"]),
                                    ("multiclass", True, ["gbm", "rf", "tree", "glm", "nb", "mlp"]),
                                    ("regression", False, ["gbm", "rf", "tree", "glm", "mlp"]),
                                    ("counts", False, ["glm_poisson"])):
    for algo in algos:
        cli_algo, extra = (("glm", ["--param", "family=\"poisson\"", "--param", "alpha=0"])
                           if algo == "glm_poisson" else (algo, []))
        try:
            if algo == "mlp":
                m, secs = evaluate_seeds(name, cli_algo, classification, range(5))
            else:
                m, secs = evaluate(name, cli_algo, classification, extra)
        except RuntimeError as e:
            rows.append((name, algo, "error", str(e)[:120], "", "FAIL")); failed += 1; continue
        r = ref[name]["mlp_mean5" if algo == "mlp" else algo]
        algo = "mlp (5 seeds)" if algo == "mlp" else algo
        if classification and "auc" in m:
            key, bar = "auc", (0.005 if algo == "gbm" else 0.01)
            ok = m["auc"] >= r["auc"] - bar
        elif classification:
            key, bar = "accuracy", 0.01
            ok = m["accuracy"] >= r["accuracy"] - bar
        else:
            key, bar = "rmse", 0.05
            ok = m["rmse"] <= r["rmse"] * (1 + bar)
        rows.append((name, algo, key, f"{m[key]:.4f}", f"{r[key]:.4f}", ("ok" if ok else "FAIL") + f" ({secs:.1f}s)"))
        failed += not ok

print(f"{'dataset':<11} {'algorithm':<14} {'metric':<9} {'dipper':>8} {'reference':>10}  result")
for r in rows:
    print(f"{r[0]:<11} {r[1]:<14} {r[2]:<9} {r[3]:>8} {r[4]:>10}  {r[5]}")

if "--skip-speed" not in sys.argv:
    import lightgbm as lgb
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=200_000, n_features=30, n_informative=15, random_state=5)
    path = os.path.join(tmp, "big.csv")
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.6g",
               header=",".join([f"x{i}" for i in range(30)] + ["y"]), comments="")
    t0 = time.perf_counter()
    lgb.LGBMClassifier(num_leaves=31, learning_rate=0.1, n_estimators=100, n_jobs=2, verbose=-1).fit(X, y)
    t_lgb = time.perf_counter() - t0
    r = run(["train", "--input", path, "--label", "y", "--algorithm", "gbm", "--output", os.path.join(tmp, "big.json"),
             "--threads", "2", "--quiet", "--param", "num_iterations=100", "--param", "num_leaves=31"])
    total = float(r.stderr.strip().split(" in ")[-1].rstrip("s"))
    # Loading the CSV is timed separately so the training time compares like with like.
    t0 = time.perf_counter()
    run(["train", "--input", path, "--label", "y", "--algorithm", "glm", "--output", os.path.join(tmp, "x.json"),
         "--quiet", "--param", "max_iter=1"])
    load = time.perf_counter() - t0
    print(f"\nGBM 200k x 30, 100 iterations, 2 threads: LightGBM {t_lgb:.2f}s (in memory); dipper {total:.2f}s "
          f"including CSV load (~{load:.2f}s for load + a 1-iteration GLM) -> ratio {total / t_lgb:.2f} "
          f"(training only ~{max(total - load, 0.01) / t_lgb:.2f})")
sys.exit(1 if failed else 0)

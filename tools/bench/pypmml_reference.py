#!/usr/bin/env python3
"""Times pypmml (PMML4S, on the JVM through py4j) scoring a PMML model, for comparison with dipper's PMML evaluator.

usage: pypmml_reference.py MODEL.pmml INPUT.jsonl [--repeat N] [--batch]

The model is loaded once.  Per-row mode (the default) scores every input row on its own with
model.predict(dict), as a streaming scorer would; --batch scores all rows in one model.predict(pandas.DataFrame)
call.  One warm-up pass, then N timed passes (default 5).  Prints rows, total seconds of the timed passes, the
median pass's microseconds per row and rows per second.  A null in the input (or an omitted key) is a missing
value; nulls are dropped from the dict before predict(), which is how pypmml sees a missing field.

Per-row figures include the py4j round trip from Python to the JVM (one socket call per row): that is what a
Python service built on pypmml pays, but it is not PMML4S's own evaluation time.

Run with the reference venv, e.g.
    /root/.cache/venv-ref/bin/python tools/bench/pypmml_reference.py \\
        ../shared/fixtures/interop/fraud_gbm_pmml/model.pmml ../shared/fixtures/interop/fraud_gbm_pmml/input.jsonl
"""
import argparse
import json
import statistics
import time

from pypmml import Model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("--repeat", type=int, default=5, help="timed passes (default 5), after one warm-up pass")
    ap.add_argument("--batch", action="store_true", help="score all rows in one predict(DataFrame) call per pass")
    args = ap.parse_args()

    with open(args.input) as f:
        rows = [{k: v for k, v in json.loads(line).items() if v is not None} for line in f if line.strip()]
    t0 = time.perf_counter()
    model = Model.fromFile(args.model)
    load_s = time.perf_counter() - t0

    if args.batch:
        import pandas as pd
        frame = pd.DataFrame(rows, columns=model.inputNames)

        def one_pass():
            model.predict(frame)
    else:
        def one_pass():
            for r in rows:
                model.predict(r)

    one_pass()  # warm-up: JIT, py4j connection
    passes = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        one_pass()
        passes.append(time.perf_counter() - t)

    med = statistics.median(passes)
    mode = "batch (predict(DataFrame))" if args.batch else "per-row (predict(dict))"
    print(f"pypmml {mode}: {args.model}")
    print(f"  model load: {load_s:.3f} s")
    print(f"  rows: {len(rows)} x {args.repeat} passes")
    print(f"  total seconds: {sum(passes):.4f}")
    print(f"  us/row (median pass): {med / len(rows) * 1e6:.2f}")
    print(f"  rows/s (median pass): {len(rows) / med:,.0f}")
    print(f"  passes (s): {' '.join(f'{p:.4f}' for p in passes)}")


if __name__ == "__main__":
    main()

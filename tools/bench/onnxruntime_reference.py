#!/usr/bin/env python3
"""Times onnxruntime (one thread) on an interop fixture, for comparison with the `onnx_sklearn_gbm` criterion group.

usage: python3 tools/bench/onnxruntime_reference.py [fixtures/interop/fraud_gbm_onnx]
"""
import json, os, sys, time
import numpy as np
import onnxruntime as ort

d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "interop",
                                                       "fraud_gbm_onnx")
case = json.load(open(os.path.join(d, "case.json")))
rows = np.array([[json.loads(l)[f] for f in case["features"]] for l in open(os.path.join(d, "input.jsonl"))],
                dtype=np.float32)
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
s = ort.InferenceSession(os.path.join(d, case["model"]), opts, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
best = min((lambda t0: (s.run(None, {name: rows}), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(50))
print(f"onnxruntime batch: {best / len(rows) * 1e6:.2f} us/row")
t0 = time.perf_counter()
for _ in range(5):
    for i in range(len(rows)):
        s.run(None, {name: rows[i:i + 1]})
print(f"onnxruntime single row: {(time.perf_counter() - t0) / (5 * len(rows)) * 1e6:.2f} us/row")

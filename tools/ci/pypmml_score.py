#!/usr/bin/env python3
"""Scores JSON lines with PMML models through pypmml (PMML4S), for crates/dipper/tests/export_pmml.rs.

Usage: pypmml_score.py MODEL.pmml INPUT.jsonl OUTPUT.jsonl [MODEL.pmml INPUT.jsonl OUTPUT.jsonl ...]

Each model is first parsed with Python's XML parser (so a malformed document fails here, naming its line and
column), then loaded by pypmml, and each line of its input (one JSON object; null or absent fields are missing)
is scored. The output has one JSON object per non-blank input line: the output fields pypmml returns, numbers in
shortest round-trip form. Several models share one JVM (pypmml starts one; it needs Java).
"""
import json
import sys
import xml.etree.ElementTree as ET

PMML_ROOT = "{http://www.dmg.org/PMML-4_4}PMML"


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit(__doc__)
    from pypmml import Model

    for i in range(0, len(args), 3):
        model_path, input_path, output_path = args[i : i + 3]
        root = ET.parse(model_path).getroot()
        if root.tag != PMML_ROOT:
            sys.exit(f"{model_path}: the root element is {root.tag}, not PMML 4.4")
        model = Model.fromFile(model_path)
        with open(input_path) as src, open(output_path, "w") as dst:
            for line in src:
                if line.strip():
                    result = model.predict(json.loads(line))
                    dst.write(json.dumps(dict(result)) + "\n")


if __name__ == "__main__":
    main()

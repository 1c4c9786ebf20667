//! `dipper export --format pmml` end to end: every native model family (glm, nb, tree, rf, gbm, mlp; binary,
//! multiclass and regression where the algorithm has them) is trained by `dipper train` on generated data with
//! a categorical feature (one category name holds a space) and, where the algorithm accepts them, missing values
//! and unknown categories; exported; and scored by pypmml (PMML4S, a JVM evaluator) on the same rows as
//! `dipper predict` scores the native model. Every probability and value must agree to 1e-9 relative or 1e-12
//! absolute, and every predicted class (also where the best probabilities tie, as random forests' often do).
//!
//! pypmml runs through `tools/ci/pypmml_score.py` with the Python named by `DIPPER_PYPMML_PYTHON`
//! (`tools/ci/install-pypmml.sh` makes one). Without it the documents are still exported and checked for
//! well-formedness, and the comparison is skipped with a note, unless `DIPPER_REQUIRE_PYPMML=1` (as in CI), where
//! the test fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// One model to train and compare.
struct Case {
    algorithm: &'static str,
    /// `y` (0/1), `grade` (three strings), `amount` (a number) or `visits` (a count, for Poisson models).
    label: &'static str,
    params: &'static [&'static str],
    /// Whether the model accepts missing values and unknown categories (so its data has them).
    missing: bool,
}

const LABELS: [&str; 4] = ["y", "grade", "amount", "visits"];
const GBM: &[&str] = &["num_iterations=25", "min_data_in_leaf=5", "seed=3"];
const GBM_POISSON: &[&str] = &[
    "num_iterations=25",
    "min_data_in_leaf=5",
    "objective=poisson",
];
const RF: &[&str] = &["n_estimators=8", "seed=3"];
const MLP: &[&str] = &["hidden=[8]", "max_epochs=30", "seed=3"];

const CASES: &[Case] = &[
    Case {
        algorithm: "glm",
        label: "y",
        params: &[],
        missing: false,
    },
    Case {
        algorithm: "glm",
        label: "grade",
        params: &[],
        missing: false,
    },
    Case {
        algorithm: "glm",
        label: "amount",
        params: &[],
        missing: false,
    },
    Case {
        algorithm: "glm",
        label: "visits",
        params: &["family=poisson"],
        missing: false,
    },
    Case {
        algorithm: "nb",
        label: "y",
        params: &[],
        missing: true,
    },
    Case {
        algorithm: "nb",
        label: "grade",
        params: &[],
        missing: true,
    },
    Case {
        algorithm: "tree",
        label: "y",
        params: &["max_depth=8"],
        missing: true,
    },
    Case {
        algorithm: "tree",
        label: "grade",
        params: &["max_depth=8"],
        missing: true,
    },
    Case {
        algorithm: "tree",
        label: "amount",
        params: &["max_depth=8"],
        missing: true,
    },
    Case {
        algorithm: "rf",
        label: "y",
        params: RF,
        missing: true,
    },
    Case {
        algorithm: "rf",
        label: "grade",
        params: RF,
        missing: true,
    },
    Case {
        algorithm: "rf",
        label: "amount",
        params: RF,
        missing: true,
    },
    Case {
        algorithm: "gbm",
        label: "y",
        params: GBM,
        missing: true,
    },
    Case {
        algorithm: "gbm",
        label: "grade",
        params: GBM,
        missing: true,
    },
    Case {
        algorithm: "gbm",
        label: "amount",
        params: GBM,
        missing: true,
    },
    Case {
        algorithm: "gbm",
        label: "visits",
        params: GBM_POISSON,
        missing: true,
    },
    Case {
        algorithm: "mlp",
        label: "y",
        params: MLP,
        missing: false,
    },
    Case {
        algorithm: "mlp",
        label: "grade",
        params: MLP,
        missing: false,
    },
    Case {
        algorithm: "mlp",
        label: "amount",
        params: MLP,
        missing: false,
    },
];

fn dipper(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_dipper"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "dipper panicked: {stderr}");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// splitmix64: deterministic data without depending on a generator's version.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

/// `n` events with features `x1`, `x2`, `hour` (numeric) and `color` (categorical) and the four labels. With
/// `missing`, some `x1` are null and some `color`s absent.
fn events(n: usize, seed: u64, missing: bool) -> Vec<Value> {
    let mut rng = Rng(seed);
    let colors = ["red", "green", "deep blue", "gold"];
    let effect = [0.8, -0.6, 0.2, 0.0];
    (0..n)
        .map(|i| {
            let x1 = rng.normal() * 2.0 + 1.0;
            let x2 = rng.uniform() * 6.0 - 3.0;
            let hour = (rng.uniform() * 24.0).floor();
            let c = (rng.uniform() * 4.0) as usize % 4;
            let z = 0.45 * x1 - 0.6 * x2 + effect[c] + 0.04 * hour - 0.9 + 0.6 * rng.normal();
            let grade = if z < -0.7 {
                "low"
            } else if z < 0.7 {
                "mid"
            } else {
                "high"
            };
            let visits = (1.5 * (0.5 * z).exp() * rng.uniform() * 2.0).floor();
            let mut e = json!({
                "x1": x1, "x2": x2, "hour": hour, "color": colors[c],
                "y": i64::from(z > 0.0), "grade": grade, "amount": 3.0 + 1.5 * z + 0.3 * rng.normal(),
                "visits": visits,
            });
            if missing && i % 11 == 3 {
                e["x1"] = Value::Null;
            }
            if missing && i % 13 == 5 {
                e.as_object_mut().unwrap().remove("color");
            }
            e
        })
        .collect()
}

fn write_jsonl(p: &Path, rows: &[Value]) {
    let lines: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(p, lines.join("\n") + "\n").unwrap();
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A structural check that needs no XML library: the declaration, one `PMML` root, every tag closed in order,
/// attribute values quoted, no raw `<` or stray `&` in text.
fn assert_well_formed(doc: &str, what: &str) {
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    assert!(doc.starts_with(decl), "{what}: no XML declaration");
    let mut rest = &doc[decl.len()..];
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        assert!(!text.contains('>'), "{what}: stray '>' in {text:?}");
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity)
                    || entity.starts_with("&#"),
                "{what}: bad entity {entity:?}"
            );
        }
        let mut quoted = false;
        let end = rest[lt..]
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == '>' && !quoted
            })
            .map(|(i, _)| lt + i)
            .unwrap_or_else(|| panic!("{what}: unterminated tag"));
        let tag = &rest[lt + 1..end];
        assert!(!tag.contains('<'), "{what}: '<' inside tag {tag:?}");
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap();
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop(),
                Some(closing.trim()),
                "{what}: mismatched </{closing}>"
            );
        } else if !tag.ends_with('/') {
            if stack.is_empty() {
                roots += 1;
                assert_eq!(name, "PMML", "{what}: root element");
            }
            stack.push(name);
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "{what}: unclosed {stack:?}");
    assert_eq!(roots, 1, "{what}: one root element");
    assert!(rest.trim().is_empty(), "{what}: text after the root");
}

/// Whether two numbers agree: 1e-9 relative or 1e-12 absolute.
fn close(a: f64, b: f64) -> bool {
    let d = (a - b).abs();
    d <= 1e-12 || d <= 1e-9 * a.abs().max(b.abs())
}

fn label_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Both outputs of `dipper predict` (native model, its PMML export) agree row by row.
fn round_trip(name: &str, native: &[Value], pmml: &[Value]) {
    assert_eq!(native.len(), pmml.len(), "{name}: row counts");
    for (row, (n, p)) in native.iter().zip(pmml).enumerate() {
        match n["probabilities"].as_object() {
            None => {
                let (a, b) = (
                    n["prediction"].as_f64().unwrap(),
                    p["prediction"].as_f64().unwrap(),
                );
                assert!(close(a, b), "{name} row {row}: native {a} PMML {b}");
            }
            Some(probs) => {
                let mut best = f64::NEG_INFINITY;
                for (class, want) in probs {
                    let (want, have) = (
                        want.as_f64().unwrap(),
                        p["probabilities"][class].as_f64().unwrap(),
                    );
                    assert!(
                        close(want, have),
                        "{name} row {row}: p({class}) native {want} PMML {have}"
                    );
                    best = best.max(want);
                }
                // Labels agree unless the best probabilities tie (then either is right).
                let tied = probs
                    .values()
                    .filter(|v| close(v.as_f64().unwrap(), best))
                    .count()
                    > 1;
                if !tied {
                    assert_eq!(
                        n["prediction"], p["prediction"],
                        "{name} row {row}: predicted class"
                    );
                }
            }
        }
    }
}

/// The Python that runs pypmml, or `None` (after saying so) when the comparison is to be skipped.
fn pypmml_python() -> Option<PathBuf> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(p) = var("DIPPER_PYPMML_PYTHON") {
        return Some(PathBuf::from(p));
    }
    if var("DIPPER_REQUIRE_PYPMML").as_deref() == Some("1") {
        panic!(
            "DIPPER_REQUIRE_PYPMML=1 but DIPPER_PYPMML_PYTHON is not set: run tools/ci/install-pypmml.sh and set \
             DIPPER_PYPMML_PYTHON=$HOME/.cache/dipper-venv/bin/python"
        );
    }
    dipper_testkit::eprintln_uncaptured(
        "!!! SKIPPED the pypmml comparison in export_pmml: DIPPER_PYPMML_PYTHON is not set (run \
         tools/ci/install-pypmml.sh; CI sets DIPPER_REQUIRE_PYPMML=1) !!!",
    );
    None
}

/// Compares one case's outputs row by row; returns the largest absolute difference and the tied rows.
fn compare(name: &str, label: &str, native: &[Value], pmml: &[Value]) -> (f64, usize) {
    assert_eq!(native.len(), pmml.len(), "{name}: row counts");
    let predicted = format!("predicted_{label}");
    let (mut max_diff, mut ties) = (0f64, 0);
    for (row, (d, p)) in native.iter().zip(pmml).enumerate() {
        let got = |field: &str| {
            p[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{name} row {row}: pypmml gave no number {field}: {p}"))
        };
        match d["probabilities"].as_object() {
            Some(probs) => {
                let mut sorted = Vec::new();
                for (class, want) in probs {
                    let want = want.as_f64().unwrap();
                    let have = got(&format!("probability({class})"));
                    assert!(
                        close(want, have),
                        "{name} row {row}: p({class}) dipper {want} pypmml {have}"
                    );
                    max_diff = max_diff.max((want - have).abs());
                    sorted.push(want);
                }
                sorted.sort_by(|a, b| b.total_cmp(a));
                // On a tie dipper labels the first of the best classes; so does PMML4S for up to four classes
                // (its probability map keeps class order), as these cases have.
                ties += usize::from(sorted[0] - sorted[1] <= 1e-12);
                assert_eq!(
                    label_text(&d["prediction"]),
                    label_text(&p[&predicted]),
                    "{name} row {row}: predicted class ({d} / {p})"
                );
            }
            None => {
                let (want, have) = (d["prediction"].as_f64().unwrap(), got(&predicted));
                assert!(
                    close(want, have),
                    "{name} row {row}: dipper {want} pypmml {have}"
                );
                max_diff = max_diff.max((want - have).abs());
            }
        }
    }
    (max_diff, ties)
}

#[test]
fn every_native_family_scores_the_same_in_pypmml() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (train_missing, train_complete) = (d.join("train-missing.jsonl"), d.join("train.jsonl"));
    write_jsonl(&train_missing, &events(500, 1, true));
    write_jsonl(&train_complete, &events(500, 1, false));
    let (score_missing, score_complete) = (d.join("score-missing.jsonl"), d.join("score.jsonl"));
    let mut odd = events(150, 2, true);
    // An unknown category, everything missing, far-out values.
    odd.push(json!({"x1": 0.5, "x2": 1.0, "hour": 3, "color": "purple"}));
    odd.push(json!({}));
    odd.push(json!({"x1": -40.0, "x2": 25.0, "hour": 100, "color": "gold"}));
    write_jsonl(&score_missing, &odd);
    write_jsonl(&score_complete, &events(150, 2, false));

    let mut jobs = Vec::new();
    for case in CASES {
        let name = format!("{}-{}", case.algorithm, case.label);
        let (train, score) = if case.missing {
            (&train_missing, &score_missing)
        } else {
            (&train_complete, &score_complete)
        };
        let model = d.join(format!("{name}.json"));
        let exclude: Vec<&str> = LABELS
            .iter()
            .copied()
            .filter(|l| *l != case.label)
            .collect();
        let exclude = exclude.join(",");
        let mut args = vec![
            "train",
            "--input",
            path(train),
            "--label",
            case.label,
            "--algorithm",
            case.algorithm,
            "--exclude",
            &exclude,
            "--output",
            path(&model),
        ];
        for p in case.params {
            args.extend(["--param", p]);
        }
        let o = dipper(&args);
        assert!(o.status.success(), "{name}: train: {}", text(&o.stderr));

        let pmml = d.join(format!("{name}.pmml"));
        let o = dipper(&[
            "export",
            "--model",
            path(&model),
            "--format",
            "pmml",
            "--output",
            path(&pmml),
        ]);
        assert!(o.status.success(), "{name}: export: {}", text(&o.stderr));
        let doc = std::fs::read_to_string(&pmml).unwrap();
        assert_well_formed(&doc, &name);
        assert!(
            doc.contains(r#"<Application name="dipper" version=""#),
            "{name}"
        );
        assert!(doc.contains(r#"<Value value="deep blue"/>"#), "{name}");

        let native_out = d.join(format!("{name}.dipper.jsonl"));
        let o = dipper(&[
            "predict",
            "--model",
            path(&model),
            "--input",
            path(score),
            "--output",
            path(&native_out),
        ]);
        assert!(o.status.success(), "{name}: predict: {}", text(&o.stderr));

        // dipper's own PMML evaluator reads the export back and scores it as the native model does.
        let back_out = d.join(format!("{name}.dipper-pmml.jsonl"));
        let o = dipper(&[
            "predict",
            "--model",
            path(&pmml),
            "--input",
            path(score),
            "--output",
            path(&back_out),
        ]);
        assert!(
            o.status.success(),
            "{name}: predict PMML: {}",
            text(&o.stderr)
        );
        round_trip(&name, &read_jsonl(&native_out), &read_jsonl(&back_out));
        jobs.push((name, case.label, pmml, score.clone(), native_out));
    }

    let Some(python) = pypmml_python() else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/ci/pypmml_score.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script);
    for (name, _, pmml, score, _) in &jobs {
        cmd.args([pmml, score, &d.join(format!("{name}.pypmml.jsonl"))]);
    }
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        o.status.success(),
        "pypmml_score.py failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );

    let mut by_family: BTreeMap<&str, f64> = BTreeMap::new();
    for (name, label, _, _, native_out) in &jobs {
        let native = read_jsonl(native_out);
        let pmml = read_jsonl(&d.join(format!("{name}.pypmml.jsonl")));
        let (diff, ties) = compare(name, label, &native, &pmml);
        eprintln!(
            "{name}: {} rows agree, max |diff| {diff:e}, {ties} tied rows",
            native.len()
        );
        let family = name.split('-').next().unwrap();
        let m = by_family.entry(family).or_default();
        *m = m.max(diff);
    }
    eprintln!("max |dipper - pypmml| per family: {by_family:?}");
}

#[test]
fn only_native_models_are_exported_and_output_goes_to_stdout() {
    let lgbm =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/interop/fraud_lgbm/model.txt");
    let o = dipper(&[
        "export",
        "--model",
        path(&lgbm),
        "--format",
        "pmml",
        "--output",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("model.txt is a lightgbm model; only dipper's native models"),
        "{err}"
    );
    assert!(o.stdout.is_empty());

    let o = dipper(&[
        "export",
        "--model",
        path(&lgbm),
        "--format",
        "onnx",
        "--output",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let o = dipper(&[
        "export",
        "--model",
        path(&missing),
        "--format",
        "pmml",
        "--output",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("nope.json"), "{}", text(&o.stderr));

    let train = dir.path().join("t.jsonl");
    write_jsonl(&train, &events(200, 5, true));
    let model = dir.path().join("m.json");
    let o = dipper(&[
        "train",
        "--input",
        path(&train),
        "--label",
        "y",
        "--algorithm",
        "tree",
        "--exclude",
        "grade,amount",
        "--output",
        path(&model),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = dipper(&[
        "export",
        "--model",
        path(&model),
        "--format",
        "pmml",
        "--output",
        "-",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc = text(&o.stdout);
    assert_well_formed(&doc, "stdout");
    assert!(
        doc.contains("<TreeModel functionName=\"classification\""),
        "{doc}"
    );
    assert!(doc.contains("missingValueStrategy=\"defaultChild\""));
}

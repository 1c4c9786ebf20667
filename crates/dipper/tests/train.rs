//! `dipper train` end to end: train from CSV and JSON lines with cross-validation or holdout, write a native
//! model that `dipper predict` loads with no other flags (ignoring the label field in its input), and clear
//! errors naming the place for bad data and bad parameters.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const ALGORITHMS: &[&str] = &["glm", "nb", "tree", "rf", "gbm", "mlp"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/train")
        .join(name)
}

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

/// Runs `dipper predict` with only --model (no --format, no --features) and returns the output objects.
fn predict(model: &Path, input: &Path) -> Vec<Value> {
    let (m, i) = (model.to_str().unwrap(), input.to_str().unwrap());
    let o = dipper(&["predict", "--model", m, "--input", i, "--output", "-"]);
    assert!(o.status.success(), "{m}: {}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The first `n` rows of a CSV fixture as JSON lines (label included).
fn csv_as_jsonl(name: &str, n: usize) -> String {
    let t = std::fs::read_to_string(fixture(name)).unwrap();
    let mut lines = t.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .take(n)
        .map(|l| {
            let obj: serde_json::Map<String, Value> = head
                .iter()
                .zip(l.split(','))
                .map(|(k, v)| (k.to_string(), v.parse::<f64>().unwrap().into()))
                .collect();
            serde_json::to_string(&obj).unwrap()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_algorithm_trains_validates_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("test.jsonl");
    std::fs::write(&input, csv_as_jsonl("binary_test.csv", 50)).unwrap();
    for algo in ALGORITHMS {
        let model = dir.path().join(format!("{algo}.json"));
        let metrics = dir.path().join(format!("{algo}-metrics.json"));
        let o = dipper(&[
            "train",
            "--input",
            fixture("binary_train.csv").to_str().unwrap(),
            "--label",
            "y",
            "--algorithm",
            algo,
            "--output",
            model.to_str().unwrap(),
            "--cv",
            "3",
            "--metrics-json",
            metrics.to_str().unwrap(),
            "--param",
            "seed=7",
        ]);
        assert!(o.status.success(), "{algo}: {}", text(&o.stderr));
        let table = text(&o.stdout);
        assert!(
            table.contains("auc") && table.contains("confusion"),
            "{algo}: {table}"
        );
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
        let auc = m["cv"]["summary"]["auc"]["mean"].as_f64().unwrap();
        // An unpruned single tree (the default, as in scikit-learn) is the weakest; the rest reach 0.85+.
        let bar = if *algo == "tree" { 0.75 } else { 0.8 };
        assert!(auc > bar, "{algo}: cv auc {auc}");
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
        assert_eq!(file["format"], "dipper-model");
        assert_eq!(file["header"]["algorithm"], *algo);
        assert_eq!(file["header"]["features"].as_array().unwrap().len(), 20);
        assert!(file["header"]["features"][0]["stats"]["histogram"].is_object());
        assert_eq!(file["header"]["source"]["rows"], 4000);
        // predict: no --format, no --features; the label field in the input is ignored.
        let preds = predict(&model, &input);
        assert_eq!(preds.len(), 50, "{algo}");
        let p = preds[0]["probabilities"].as_object().unwrap();
        let sum: f64 = p.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{algo}: {p:?}");
    }
}

#[test]
fn jsonl_with_string_labels_and_categories_and_holdout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.jsonl");
    let mut lines = Vec::new();
    for i in 0..600 {
        let color = ["red", "green", "blue"][i % 3];
        let x = (i % 17) as f64 / 17.0;
        let fraud = (color == "red" && x > 0.5) || i % 29 == 0;
        lines.push(format!(
            r#"{{"id": "e{i}", "color": "{color}", "x": {x}, "label": "{}"}}"#,
            if fraud { "fraud" } else { "ok" }
        ));
    }
    std::fs::write(&data, lines.join("\n")).unwrap();
    let model = dir.path().join("m.json");
    let o = dipper(&[
        "train",
        "--input",
        data.to_str().unwrap(),
        "--label",
        "label",
        "--algorithm",
        "nb",
        "--output",
        model.to_str().unwrap(),
        "--holdout",
        "0.25",
        "--exclude",
        "id",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("holdout"), "{}", text(&o.stdout));
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(
        file["header"]["classes"],
        serde_json::json!(["fraud", "ok"])
    );
    let names: Vec<&str> = file["header"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["color", "x"]);
    assert_eq!(
        file["header"]["features"][0]["categories"],
        serde_json::json!(["blue", "green", "red"])
    );
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"color\": \"red\", \"x\": 0.9}\n{\"color\": \"blue\", \"x\": 0.1}\n",
    )
    .unwrap();
    let preds = predict(&model, &input);
    assert_eq!(preds[0]["prediction"], "fraud");
    assert_eq!(preds[1]["prediction"], "ok");
}

#[test]
fn bad_data_and_parameters_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "a,b,y\n1,2,0\n3,4\n").unwrap();
    let out = dir.path().join("m.json");
    let args = |input: &Path, extra: &[&str]| {
        let out = out.to_str().unwrap();
        let mut v = vec!["train", "--input", input.to_str().unwrap(), "--output", out];
        if !extra.contains(&"--label") {
            v.extend(["--label", "y"]);
        }
        v.extend(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| dipper(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let o = run(args(&csv, &["--algorithm", "glm"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("bad.csv line 3"),
        "{}",
        text(&o.stderr)
    );
    let o = run(args(
        &fixture("binary_train.csv"),
        &["--algorithm", "gbm", "--param", "no_such=1"],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("parameter 'no_such'"),
        "{}",
        text(&o.stderr)
    );
    let o = run(args(
        &fixture("binary_train.csv"),
        &["--algorithm", "magic"],
    ));
    assert!(
        text(&o.stderr).contains("unknown algorithm 'magic'"),
        "{}",
        text(&o.stderr)
    );
    let o = run(args(
        &fixture("binary_train.csv"),
        &["--algorithm", "glm", "--label", "nope"],
    ));
    assert!(
        text(&o.stderr).contains("field 'nope': the label is missing"),
        "{}",
        text(&o.stderr)
    );
    assert!(!out.exists(), "no model is written on failure");
}

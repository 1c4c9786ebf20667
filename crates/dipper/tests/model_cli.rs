//! `dipper model` end to end through the binary, on the embedded registry and on Kafka (tansu or
//! `DIPPER_TEST_BROKERS`; skipped without a broker unless `DIPPER_REQUIRE_BROKER=1`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dipper_testkit::{unique_topic, TestBroker};

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(file)
}

struct Cli {
    cwd: PathBuf,
    registry: Vec<String>,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dipper"))
            .current_dir(&self.cwd)
            .arg("model")
            .args(args)
            .args(&self.registry)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dipper model {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "dipper model {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }
}

fn registry_commands(cli: &Cli) {
    let gbm = fixture("interop/fraud_lgbm/model.txt");
    let bench = fixture("bench/lgbm_100x31x30.txt");
    let out = cli.ok(&[
        "publish",
        "fraud",
        gbm.to_str().unwrap(),
        "--meta",
        "auc=0.93",
    ]);
    assert!(
        out.starts_with("published fraud version 1 (lightgbm"),
        "{out}"
    );
    let out = cli.ok(&["publish", "fraud", bench.to_str().unwrap(), "--promote"]);
    assert!(out.contains("fraud version 2 is the champion"), "{out}");

    std::fs::write(cli.cwd.join("junk.txt"), "not a model").unwrap();
    let err = cli.fails(&["publish", "fraud", "junk.txt"]);
    assert!(err.contains("junk.txt does not load as a model"), "{err}");
    let out = cli.ok(&["publish", "fraud", "junk.txt", "--unchecked"]);
    assert!(out.contains("version 3"), "{out}");
    let err = cli.fails(&["promote", "fraud", "3"]);
    assert!(err.contains("fraud version 3 does not load"), "{err}");

    cli.ok(&["promote", "fraud", "1"]);
    let list = cli.ok(&["list"]);
    let row = list.lines().find(|l| l.starts_with("fraud")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[..3], ["fraud", "1", "3"], "{list}");
    let out = cli.ok(&["rollback", "fraud"]);
    assert!(out.contains("rollback 1 -> 2"), "{out}");

    let show: serde_json::Value =
        serde_json::from_str(&cli.ok(&["show", "fraud", "--json"])).unwrap();
    assert_eq!(show["stages"]["champion"], 2);
    let v1 = &show["versions"][2];
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["stage"], "archived");
    assert_eq!(v1["source"]["auc"], 0.93);
    assert_eq!(v1["features"][0], "amount");
    assert_eq!(v1["features"].as_array().unwrap().len(), 12);

    cli.ok(&["fetch", "fraud", "--output", "champion.txt"]);
    assert_eq!(
        std::fs::read(cli.cwd.join("champion.txt")).unwrap(),
        std::fs::read(&bench).unwrap()
    );
    let err = cli.fails(&["delete", "fraud", "2"]);
    assert!(err.contains("is the champion"), "{err}");
    cli.ok(&["delete", "fraud", "3"]);
    let err = cli.fails(&["show", "nothing"]);
    assert!(err.contains("no model named nothing"), "{err}");
}

#[test]
fn model_commands_on_the_embedded_registry() {
    let dir = tempfile::tempdir().unwrap();
    registry_commands(&Cli {
        cwd: dir.path().to_path_buf(),
        registry: vec![],
    });
    assert!(dir
        .path()
        .join("dipper-data/registry/commits.journal")
        .exists());
}

#[test]
fn model_commands_on_kafka() {
    let Some(broker) = TestBroker::start_or_skip("model_commands_on_kafka") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    registry_commands(&Cli {
        cwd: dir.path().to_path_buf(),
        registry: vec![
            "--brokers".into(),
            broker.bootstrap().into(),
            "--registry-topic".into(),
            unique_topic("models"),
            "--replication-factor".into(),
            "1".into(),
        ],
    });
}

/// `dipper train --publish NAME --promote` writes the model, publishes it with its provenance and makes it
/// the champion.
#[test]
fn train_publishes_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dipper"))
        .current_dir(dir.path())
        .args(["train", "--input"])
        .arg(fixture("train/binary_train.csv"))
        .args([
            "--label",
            "y",
            "--algorithm",
            "glm",
            "--cv",
            "3",
            "--output",
            "glm.json",
            "--quiet",
            "--publish",
            "churn",
            "--promote",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("published churn version 1"), "{err}");
    let cli = Cli {
        cwd: dir.path().to_path_buf(),
        registry: vec![],
    };
    let show: serde_json::Value =
        serde_json::from_str(&cli.ok(&["show", "churn", "--json"])).unwrap();
    assert_eq!(show["stages"]["champion"], 1);
    let v = &show["versions"][0];
    assert_eq!(v["format"], "native");
    assert_eq!(v["source"]["algorithm"], "glm");
    assert_eq!(v["source"]["label"], "y");
    assert!(v["source"]["rows"].as_u64().unwrap() > 0);
    assert!(v["source"]["metrics"].is_object(), "{v}");
    assert!(
        v["source"]["data"].is_object() || v["source"]["data"].is_string(),
        "{v}"
    );
    assert_eq!(v["features"].as_array().unwrap().len(), 20);
}

//! The README's first command, `dipper demo`, end to end on the embedded log (short and small): it trains a
//! model with `dipper train`, scores a live stream and exits 0 only if every produced event was scored or
//! dead-lettered.

use std::process::Command;

#[test]
fn demo_runs_the_whole_loop_and_accounts_for_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_dipper"))
        .args([
            "demo",
            "--duration",
            "3",
            "--history",
            "4000",
            "--rate",
            "500",
            "--dir",
        ])
        .arg(&work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("history: 4000 labelled card transactions"),
        "{stdout}"
    );
    assert!(stdout.contains("training: dipper train"), "{stdout}");
    assert!(
        stdout.contains("scoring pipeline running (exactly-once)"),
        "{stdout}"
    );
    assert!(work.join("pipeline.yaml").exists());
    // A second run into the same (now full) directory is refused rather than mixing topics.
    let again = Command::new(env!("CARGO_BIN_EXE_dipper"))
        .args(["demo", "--duration", "1", "--dir"])
        .arg(&work)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

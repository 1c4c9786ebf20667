use super::*;
use proptest::prelude::*;

/// A log in memory: applies records as a store would, giving them offsets.
#[derive(Default)]
struct MemLog {
    records: Vec<RawRecord>,
    state: RegistryState,
}

impl MemLog {
    fn write(&mut self, records: Vec<RawRecord>) {
        for mut r in records {
            r.offset = self.records.len() as u64;
            self.state.apply(&r);
            self.records.push(r);
        }
    }

    fn publish(&mut self, name: &str, artifact: &[u8], chunk_bytes: usize) -> u32 {
        let p = PublishRequest {
            name: name.into(),
            artifact: artifact.to_vec(),
            format: "lightgbm".into(),
            features: vec!["a".into()],
            source: serde_json::json!({"file": "m.txt"}),
            chunk_bytes,
        };
        let (meta, records) = plan_publish(&self.state, &p, 1, "p").unwrap();
        self.write(records);
        meta.version
    }

    fn change(&mut self, name: &str, c: StageChange) -> Result<Stages, RegistryError> {
        let (s, r) = plan_stage_change(&self.state, name, 2, c)?;
        self.write(vec![r]);
        Ok(s)
    }

    /// A fresh fold of every record, as a restarted reader sees it.
    fn refold(&self) -> RegistryState {
        let mut s = RegistryState::default();
        for r in &self.records {
            s.apply(r);
        }
        s
    }
}

#[test]
fn publish_numbers_versions_and_chunks_the_artifact() {
    let mut log = MemLog::default();
    let artifact: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
    assert_eq!(log.publish("fraud", &artifact, 1000), 1);
    assert_eq!(log.publish("fraud", b"second", 1000), 2);
    assert_eq!(log.publish("churn", b"x", 1000), 1);
    let v1 = log.state.version("fraud", 1).unwrap();
    assert_eq!(v1.meta.chunks, 3);
    assert_eq!(v1.meta.bytes, 2500);
    assert_eq!(v1.meta.sha256, wire::sha256_hex(&artifact));
    assert!(v1.complete());
    // The chunk records come first and hold the artifact in order.
    let joined: Vec<u8> = v1
        .chunks
        .values()
        .flat_map(|&o| log.records[o as usize].value.clone().unwrap())
        .collect();
    assert_eq!(joined, artifact);
    let model = log.state.model("fraud").unwrap();
    assert_eq!(model.stages.max_version, 2);
    assert_eq!(model.stages.champion, None);
    assert_eq!(
        version_stages(model),
        vec![(2, Stage::Candidate), (1, Stage::Candidate)]
    );
    assert_eq!(log.refold(), log.state);
}

#[test]
fn promote_rollback_and_challengers() {
    let mut log = MemLog::default();
    for _ in 0..3 {
        log.publish("m", b"abc", 2);
    }
    log.change("m", StageChange::Promote(1)).unwrap();
    let s = log.change("m", StageChange::Promote(2)).unwrap();
    assert_eq!(s.champion, Some(2));
    assert_eq!(s.history, vec![1]);
    assert_eq!(s.stage_of(1), Stage::Archived);
    let e = log.change("m", StageChange::Promote(2)).unwrap_err();
    assert!(e.to_string().contains("already the champion"), "{e}");

    log.change("m", StageChange::Challenge(3, true)).unwrap();
    assert_eq!(
        log.state.model("m").unwrap().stages.stage_of(3),
        Stage::Challenger
    );
    let e = log
        .change("m", StageChange::Challenge(2, true))
        .unwrap_err();
    assert!(e.to_string().contains("is the champion"), "{e}");

    let s = log.change("m", StageChange::Rollback).unwrap();
    assert_eq!(s.champion, Some(1));
    assert_eq!(s.stage_of(2), Stage::Archived);
    assert_eq!(s.change, "rollback 2 -> 1");
    let e = log.change("m", StageChange::Rollback).unwrap_err();
    assert!(e.to_string().contains("no earlier champion"), "{e}");
    assert_eq!(log.state.champion("m").unwrap().meta.version, 1);
    assert_eq!(log.refold(), log.state);
}

#[test]
fn delete_keeps_numbers_and_refuses_the_champion() {
    let mut log = MemLog::default();
    log.publish("m", b"one", 10);
    log.publish("m", b"two", 10);
    log.change("m", StageChange::Promote(1)).unwrap();
    log.change("m", StageChange::Promote(2)).unwrap();
    let e = plan_delete(&log.state, "m", 2, 3).unwrap_err();
    assert!(e.to_string().contains("is the champion"), "{e}");
    let (s, records) = plan_delete(&log.state, "m", 1, 3).unwrap();
    assert!(s.deleted.contains(&1));
    assert!(s.history.is_empty());
    log.write(records);
    let e = log.state.version("m", 1).unwrap_err().to_string();
    assert!(e.contains("was deleted"), "{e}");
    // Numbers are never reused, and rollback has nowhere to go.
    assert_eq!(log.publish("m", b"three", 10), 3);
    assert!(log.change("m", StageChange::Rollback).is_err());
    assert_eq!(log.refold(), log.state);
}

#[test]
fn strangers_and_cut_short_publishes_are_harmless() {
    let mut log = MemLog::default();
    log.write(vec![
        RawRecord {
            key: Some(b"not-ours".to_vec()),
            value: Some(b"x".to_vec()),
            ..RawRecord::default()
        },
        RawRecord::default(),
        record(
            &Key::Stages { name: "m".into() },
            Some(b"{not json".to_vec()),
        ),
        // A publish cut short: a chunk of version 1, no version record.
        record(
            &Key::Chunk {
                name: "m".into(),
                version: 1,
                index: 0,
            },
            Some(b"partial".to_vec()),
        ),
    ]);
    assert_eq!(log.state.skipped.len(), 3);
    assert!(log.state.skipped[2].reason.contains("stages of m"));
    assert!(log.state.model("m").is_err());
    // The next publish takes version 1 again: nothing was published.
    assert_eq!(log.publish("m", b"full", 4), 1);
    let v = log.state.version("m", 1).unwrap();
    assert_eq!(v.meta.chunks, 1);
    // The stale chunk 0 of the cut-short publish is older than the new one and was replaced by it.
    assert_eq!(
        log.records[v.chunks[&0] as usize].value.as_deref(),
        Some(&b"full"[..])
    );
}

#[test]
fn a_version_missing_a_chunk_is_incomplete() {
    let mut log = MemLog::default();
    log.publish("m", b"abcdef", 2);
    let v = log.state.version("m", 1).unwrap().clone();
    let tomb = record(
        &Key::Chunk {
            name: "m".into(),
            version: 1,
            index: 1,
        },
        None,
    );
    log.write(vec![tomb]);
    assert!(v.complete());
    assert!(!log.state.version("m", 1).unwrap().complete());
}

#[derive(Clone, Debug)]
enum Op {
    Publish(u8),
    Promote(u32),
    Rollback,
    Challenge(u32, bool),
    Archive(u32),
    Delete(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..4).prop_map(Op::Publish),
        (1u32..8).prop_map(Op::Promote),
        Just(Op::Rollback),
        ((1u32..8), any::<bool>()).prop_map(|(v, on)| Op::Challenge(v, on)),
        (1u32..8).prop_map(Op::Archive),
        (1u32..8).prop_map(Op::Delete),
    ]
}

proptest! {
    /// Whatever operations run (and fail), the state keeps its invariants and a fresh fold of the log
    /// equals the incremental one.
    #[test]
    fn invariants_hold_under_any_operations(ops in proptest::collection::vec(op(), 1..40)) {
        let mut log = MemLog::default();
        let mut published = 0u32;
        for op in ops {
            match op {
                Op::Publish(n) => {
                    let v = log.publish("m", &[n; 5], 2);
                    published += 1;
                    prop_assert_eq!(v, published);
                }
                Op::Promote(v) => { let _ = log.change("m", StageChange::Promote(v)); }
                Op::Rollback => { let _ = log.change("m", StageChange::Rollback); }
                Op::Challenge(v, on) => { let _ = log.change("m", StageChange::Challenge(v, on)); }
                Op::Archive(v) => { let _ = log.change("m", StageChange::Archive(v)); }
                Op::Delete(v) => {
                    if let Ok((_, records)) = plan_delete(&log.state, "m", v, 9) {
                        log.write(records);
                    }
                }
            }
            if let Ok(model) = log.state.model("m") {
                let s = &model.stages;
                if let Some(c) = s.champion {
                    prop_assert!(model.versions.contains_key(&c), "champion {} is not live", c);
                    prop_assert!(!s.challengers.contains(&c) && !s.archived.contains(&c));
                }
                for v in s.challengers.iter().chain(&s.archived) {
                    prop_assert!(model.versions.contains_key(v));
                }
                for v in &s.deleted {
                    prop_assert!(!model.versions.contains_key(v));
                }
                prop_assert_eq!(s.max_version, published);
                prop_assert!(model.versions.values().all(VersionEntry::complete));
            }
        }
        prop_assert_eq!(log.refold(), log.state);
    }
}

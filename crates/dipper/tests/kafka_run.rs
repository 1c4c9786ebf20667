//! `dipper run` on Kafka, through the real binary.
//!
//! * At-least-once on a Kafka-compatible broker (tansu, or `DIPPER_TEST_BROKERS`): a plain run (every event
//!   predicted or dead-lettered exactly once, dead-letter headers, the group's offsets), a run SIGKILLed three
//!   times (nothing missing; duplicates counted), and two instances in one group, the first stopped with
//!   SIGTERM while events flow (nothing missing, both produced outputs).
//! * Exactly-once, killed three times, against librdkafka's in-process mock cluster (or `DIPPER_TEST_BROKERS`):
//!   dipper's side is proved with its commit ledger and the `dipper.txn`/`dipper.txn.seq` headers, since the
//!   mock neither hides aborted transactions nor keeps offsets committed in transactions. With
//!   `DIPPER_BROKER_IS_KAFKA=1` a plain `read_committed` reader must also see every event exactly once.
//! * Exactly-once on tansu, which has no EndTxn, must stop with an error saying so.
//!
//! Figures (duplicates, missing, extra records) are printed past libtest's output capture so they show up in CI
//! logs for passing tests too. Knobs: `DIPPER_TEST_SEED` (kill points), `DIPPER_TEST_KEEP=1` (keep pipeline
//! files, ledgers and dipper logs), `DIPPER_TEST_RUST_LOG` (dipper's `RUST_LOG`), `DIPPER_TEST_KAFKA_DEBUG`
//! (librdkafka `debug` contexts of dipper's consumer), `DIPPER_TEST_SESSION_TIMEOUT_MS`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dipper_testkit::{
    broker_is_kafka, eprintln_uncaptured, unique_topic, ConsumedRecord, Partitioning, Record,
    TestBroker,
};
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// How long reading a topic back waits for the first/next record before calling it complete.
/// Generous: on a loaded 2-core CI machine a fresh consumer can take seconds to its first record, and
/// a read that ends before then would report records as missing.
const QUIET: Duration = Duration::from_secs(5);
const MAX_READ: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------------------

/// Input events: the fraud fixture's rows (cycled) with a unique `event_id`, keyed by that id; every
/// `malformed_every`-th one is broken, alternately not JSON (reason `decode`) and with a string where the model
/// wants a number (reason `features`, field `amount`).
struct Events {
    records: Vec<Record>,
    ids: Vec<String>,
    /// Malformed id -> the dead-letter reason it must get.
    malformed: BTreeMap<String, &'static str>,
}

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/interop/fraud_lgbm")
        .join(file)
}

fn events(n: usize, malformed_every: usize) -> Events {
    let rows: Vec<serde_json::Map<String, Value>> = std::fs::read_to_string(fixture("input.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut out = Events {
        records: Vec::with_capacity(n),
        ids: Vec::with_capacity(n),
        malformed: BTreeMap::new(),
    };
    for i in 0..n {
        let id = format!("ev-{i}");
        let mut row = rows[i % rows.len()].clone();
        row.insert("event_id".into(), Value::String(id.clone()));
        let value = if malformed_every > 0 && i % malformed_every == malformed_every - 1 {
            if (i / malformed_every).is_multiple_of(2) {
                out.malformed.insert(id.clone(), "decode");
                format!("{{\"event_id\":\"{id}\",\"amount\":").into_bytes()
            } else {
                out.malformed.insert(id.clone(), "features");
                row.insert("amount".into(), Value::String("lots".into()));
                serde_json::to_vec(&row).unwrap()
            }
        } else {
            serde_json::to_vec(&row).unwrap()
        };
        out.records
            .push((Some(id.clone().into_bytes()), value, Vec::new()));
        out.ids.push(id);
    }
    out
}

/// Produces `records` round-robin over the topic's partitions, one record batch each; returns the records per
/// partition counted from the delivery reports, and each record's (partition, offset).
fn produce(
    broker: &TestBroker,
    topic: &str,
    records: &[Record],
) -> (BTreeMap<u32, i64>, Vec<(u32, i64)>) {
    // One batch per record: tansu 0.6 skips the rest of a batch when a consumer resumes inside it.
    let at = broker
        .produce_unbatched(topic, records, Partitioning::RoundRobin)
        .unwrap();
    let mut per_partition = BTreeMap::new();
    for (p, _) in &at {
        *per_partition.entry(*p).or_insert(0) += 1;
    }
    (per_partition, at)
}

// ---------------------------------------------------------------------------------------------------------------
// Reading outputs back
// ---------------------------------------------------------------------------------------------------------------

fn header<'a>(r: &'a ConsumedRecord, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// `(dipper.txn, dipper.txn.seq)` of an output; panics if either is missing.
fn txn_tag(r: &ConsumedRecord) -> (String, u64) {
    let txn = header(r, "dipper.txn").unwrap_or_else(|| panic!("no dipper.txn header: {r:?}"));
    let seq = header(r, "dipper.txn.seq")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no numeric dipper.txn.seq header: {r:?}"));
    (txn.to_string(), seq)
}

fn key_of(r: &ConsumedRecord) -> String {
    String::from_utf8(r.key.clone().expect("outputs keep the input key")).unwrap()
}

/// The event id of a prediction, checked against its key.
fn prediction_id(r: &ConsumedRecord) -> String {
    let v: Value = serde_json::from_slice(r.value.as_deref().expect("prediction has a value"))
        .unwrap_or_else(|e| panic!("prediction is not JSON ({e}): {r:?}"));
    let id = v["event_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no event_id: {v}"));
    assert_eq!(id, key_of(r), "prediction's event_id and key differ");
    assert!(
        v["prediction"].is_number() || v["prediction"].is_string(),
        "{v}"
    );
    id.to_string()
}

/// What dipper wrote: predictions and dead letters, by id.
#[derive(Default)]
struct Outputs {
    predictions: Vec<(String, ConsumedRecord)>,
    dead: Vec<(String, ConsumedRecord)>,
}

impl Outputs {
    fn read(broker: &TestBroker, output: &str, dlq: &str, read_committed: bool) -> Outputs {
        let preds = broker
            .consume_all(output, QUIET, MAX_READ, read_committed)
            .unwrap();
        let dead = broker
            .consume_all(dlq, QUIET, MAX_READ, read_committed)
            .unwrap();
        Outputs {
            predictions: preds.into_iter().map(|r| (prediction_id(&r), r)).collect(),
            dead: dead.into_iter().map(|r| (key_of(&r), r)).collect(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &(String, ConsumedRecord)> {
        self.predictions.iter().chain(&self.dead)
    }

    /// How often each id appears (predictions and dead letters together).
    fn counts(&self) -> HashMap<&str, usize> {
        let mut c = HashMap::new();
        for (id, _) in self.all() {
            *c.entry(id.as_str()).or_insert(0) += 1;
        }
        c
    }

    fn len(&self) -> usize {
        self.predictions.len() + self.dead.len()
    }
}

/// `(missing, duplicates)` of `outputs` against `events`, after checking that every malformed event was
/// dead-lettered (at least once), never predicted, and no well-formed one was dead-lettered.
fn accounting(events: &Events, outputs: &Outputs, input_topic: &str) -> (usize, usize) {
    let known: BTreeSet<&str> = events.ids.iter().map(String::as_str).collect();
    for (id, _) in outputs.all() {
        assert!(known.contains(id.as_str()), "output for unknown id {id}");
    }
    for (id, r) in &outputs.dead {
        let want = events
            .malformed
            .get(id)
            .unwrap_or_else(|| panic!("well-formed {id} was dead-lettered: {r:?}"));
        assert_eq!(header(r, "dipper.error.reason"), Some(*want), "{r:?}");
        if *want == "features" {
            assert_eq!(header(r, "dipper.error.field"), Some("amount"), "{r:?}");
        }
        assert!(
            !header(r, "dipper.error.message").unwrap_or("").is_empty(),
            "{r:?}"
        );
        assert_eq!(header(r, "dipper.source.topic"), Some(input_topic), "{r:?}");
        txn_tag(r);
    }
    for (id, r) in &outputs.predictions {
        assert!(
            !events.malformed.contains_key(id),
            "malformed {id} was predicted: {r:?}"
        );
        txn_tag(r);
    }
    let counts = outputs.counts();
    let missing: Vec<&str> = events
        .ids
        .iter()
        .map(String::as_str)
        .filter(|id| !counts.contains_key(id))
        .collect();
    if !missing.is_empty() {
        eprintln_uncaptured(&format!(
            "{} missing, e.g. {:?} (input ids are ev-<index>; records went round-robin)",
            missing.len(),
            &missing[..missing.len().min(20)]
        ));
    }
    let duplicates = counts.values().map(|c| c - 1).sum();
    let dead_ids: BTreeSet<&str> = outputs.dead.iter().map(|(id, _)| id.as_str()).collect();
    for id in events.malformed.keys() {
        assert!(
            dead_ids.contains(id.as_str()) || missing.contains(&id.as_str()),
            "malformed {id} was never dead-lettered"
        );
    }
    (missing.len(), duplicates)
}

// ---------------------------------------------------------------------------------------------------------------
// The pipeline and the dipper process
// ---------------------------------------------------------------------------------------------------------------

struct Spec {
    brokers: String,
    input: String,
    output: String,
    dlq: String,
    group: String,
    guarantee: &'static str,
    transactional_id: Option<String>,
    /// `session.timeout.ms`: how long the group waits for a SIGKILLed member. Kafka refuses less than 6 s
    /// (`group.min.session.timeout.ms`). tansu 0.6 holds a joining member's JoinGroup for 3 s and stamps its
    /// last contact with the time before that, so with less than about 3 s the second member of a group is
    /// expired as soon as it is in and never gets an assignment (the group rebalances for ever); 4 s works.
    session_timeout_ms: u32,
    /// `delivery.commit_max_records`: small, so commits come often and kills land mid-stream.
    commit_max_records: u32,
}

impl Spec {
    fn new(broker: &TestBroker, prefix: &str, guarantee: &'static str) -> Spec {
        Spec {
            brokers: broker.bootstrap().to_string(),
            input: unique_topic(&format!("{prefix}-in")),
            output: unique_topic(&format!("{prefix}-out")),
            dlq: unique_topic(&format!("{prefix}-dlq")),
            group: unique_topic(&format!("{prefix}-group")),
            guarantee,
            transactional_id: None,
            session_timeout_ms: std::env::var("DIPPER_TEST_SESSION_TIMEOUT_MS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(if broker.tansu_bin().is_some() {
                    4_000
                } else {
                    6_000
                }),
            commit_max_records: 500,
        }
    }

    /// How long to wait after a SIGKILL before starting again: until the killed member's session has expired.
    ///
    /// tansu 0.6 needs it. If the new member joins while the dead one still counts as alive and led the last
    /// generation, the new member is added to that generation as a follower and syncs an empty assignment; when
    /// a later heartbeat finds the leader's session expired, tansu drops it and re-forms the group without
    /// bumping the generation, and answers that heartbeat (and every later one) with no error, so the survivor
    /// never rejoins and holds no partition for ever (seen with a restart 1 s after a kill). A member that joins
    /// after the session expired finds no leader and forms a new generation at once. (Kafka and the mock expire
    /// the dead member on their own and rebalance; the wait costs them nothing but time.)
    fn wait_after_kill(&self) -> Duration {
        Duration::from_millis(u64::from(self.session_timeout_ms) + 1_000)
    }

    /// `--exit-when-idle` for a run after a SIGKILL. The engine counts idle time from its start, including the
    /// wait for the group to hand out partitions (Kafka delays the first rebalance of an empty group by 3 s), so
    /// a shorter idle time could stop the run before it got any partition.
    fn idle_after_kill_ms(&self) -> u64 {
        5_000
    }

    /// Writes the pipeline file (with commit ledger `ledger`) into `dir`.
    fn write(&self, dir: &Path, name: &str, ledger: &Path) -> PathBuf {
        let txn = match &self.transactional_id {
            Some(id) => format!("    transactional_id: {id}\n"),
            None => String::new(),
        };
        // librdkafka debug contexts for the consumer, e.g. DIPPER_TEST_KAFKA_DEBUG=cgrp (with
        // DIPPER_TEST_RUST_LOG=debug).
        let debug = match std::env::var("DIPPER_TEST_KAFKA_DEBUG") {
            Ok(d) if !d.is_empty() => format!("      debug: \"{d}\"\n"),
            _ => String::new(),
        };
        let yaml = format!(
            "name: {name}\n\
             transport:\n  kafka:\n    brokers: \"{brokers}\"\n    group_id: {group}\n{txn}\
             \x20   consumer_properties:\n      session.timeout.ms: \"{session}\"\n      heartbeat.interval.ms: \"{heartbeat}\"\n{debug}\
             input:\n  topics: [{input}]\n  event_id_field: event_id\n\
             model:\n  path: {model}\n\
             output:\n  topic: {output}\n\
             dead_letter:\n  topic: {dlq}\n\
             delivery:\n  guarantee: {guarantee}\n  commit_interval_ms: 100\n  commit_max_records: {max}\n  commit_ledger: {ledger}\n",
            session = self.session_timeout_ms,
            heartbeat = self.session_timeout_ms / 4,
            max = self.commit_max_records,
            brokers = self.brokers,
            group = self.group,
            input = self.input,
            output = self.output,
            dlq = self.dlq,
            guarantee = self.guarantee,
            model = fixture("model.txt").display(),
            ledger = ledger.display(),
        );
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }
}

/// Starts `dipper run PIPELINE` (stdout and stderr appended to `log`).
fn spawn_dipper(pipeline: &Path, exit_when_idle_ms: Option<u64>, log: &Path) -> Child {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dipper"));
    cmd.arg("run").arg(pipeline);
    if let Some(ms) = exit_when_idle_ms {
        cmd.args(["--exit-when-idle", &ms.to_string()]);
    }
    let filter = std::env::var("DIPPER_TEST_RUST_LOG").unwrap_or_else(|_| "info".into());
    cmd.env("RUST_LOG", filter)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a run with `--exit-when-idle` to stop; panics (with its log) if it fails or hangs.
fn wait_success(child: &mut Child, timeout: Duration, log: &Path) {
    match wait_exit(child, timeout) {
        Some(status) if status.success() => {}
        Some(status) => panic!("dipper run failed ({status}):\n{}", tail(log, 40)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "dipper run did not stop within {timeout:?}:\n{}",
                tail(log, 40)
            );
        }
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {}", child.id());
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One line of the commit ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LedgerEntry {
    txn: String,
    seq: u64,
    records: u64,
}

/// The ledger's complete lines (a process killed mid-append may leave a partial last line: it is skipped).
fn read_ledger(path: &Path) -> Vec<LedgerEntry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| LedgerEntry {
            txn: v["txn"].as_str().unwrap().to_string(),
            seq: v["seq"].as_u64().unwrap(),
            records: v["records"].as_u64().unwrap(),
        })
        .collect()
}

fn ledger_records(path: &Path) -> u64 {
    read_ledger(path).iter().map(|e| e.records).sum()
}

/// Waits until the ledger counts at least `target` committed records; panics if the process exits or nothing
/// happens in time.
fn wait_ledger(
    child: &mut Child,
    ledger: &Path,
    target: u64,
    timeout: Duration,
    log: &Path,
) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let n = ledger_records(ledger);
        if n >= target {
            return n;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "dipper exited ({status}) before committing {target} records:\n{}",
                tail(log, 40)
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "dipper committed {n} < {target} records in {timeout:?}:\n{}",
                tail(log, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The "dipper run: N in, ..." summary line(s) in a log.
fn summaries(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("dipper run: "))
        .map(str::to_string)
        .collect()
}

/// A scratch directory for pipeline files, ledgers and logs; kept (and its path printed) with `DIPPER_TEST_KEEP=1`.
fn workdir(test: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("dipper-{test}-"))
        .tempdir()
        .unwrap();
    if std::env::var("DIPPER_TEST_KEEP").as_deref() == Ok("1") {
        dir.disable_cleanup(true);
        eprintln_uncaptured(&format!("{test}: keeping {}", dir.path().display()));
    }
    dir
}

fn seeded_rng(test: &str) -> rand_chacha::ChaCha8Rng {
    let seed = std::env::var("DIPPER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln_uncaptured(&format!("{test}: DIPPER_TEST_SEED={seed}"));
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

// ---------------------------------------------------------------------------------------------------------------
// 1. At-least-once, basic
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn at_least_once_scores_every_event_and_commits_every_offset() {
    let Some(broker) = TestBroker::start_or_skip("at_least_once_scores_every_event") else {
        return;
    };
    let spec = Spec::new(&broker, "alo", "at-least-once");
    for t in [&spec.input, &spec.output, &spec.dlq] {
        broker.create_topic(t, 3).unwrap();
    }
    let events = events(2_000, 50);
    let (per_partition, at) = produce(&broker, &spec.input, &events.records);

    let dir = workdir("alo");
    let ledger = dir.path().join("ledger.jsonl");
    let log = dir.path().join("dipper.log");
    let pipeline = spec.write(dir.path(), "alo", &ledger);
    let mut child = spawn_dipper(&pipeline, Some(2_000), &log);
    wait_success(&mut child, Duration::from_secs(60), &log);

    let outputs = Outputs::read(&broker, &spec.output, &spec.dlq, false);
    let (missing, duplicates) = accounting(&events, &outputs, &spec.input);
    eprintln_uncaptured(&format!(
        "at-least-once basic: {} in, {} predictions, {} dead-lettered, {missing} missing, {duplicates} duplicates",
        events.ids.len(),
        outputs.predictions.len(),
        outputs.dead.len()
    ));
    assert_eq!(missing, 0);
    assert_eq!(duplicates, 0, "no kill, no rebalance: nothing may repeat");
    assert_eq!(outputs.len(), events.ids.len(), "in == out + dead-lettered");
    assert_eq!(outputs.dead.len(), events.malformed.len());
    // Dead letters carry the input untouched and point at their source record.
    let index: HashMap<&str, usize> = events
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for (id, r) in &outputs.dead {
        let (p, o) = at[index[id.as_str()]];
        assert_eq!(
            header(r, "dipper.source.partition"),
            Some(p.to_string().as_str()),
            "{r:?}"
        );
        assert_eq!(
            header(r, "dipper.source.offset"),
            Some(o.to_string().as_str()),
            "{r:?}"
        );
        assert_eq!(
            r.value.as_deref(),
            Some(events.records[index[id.as_str()]].1.as_slice())
        );
        assert_eq!(header(r, "dipper.pipeline"), Some("alo"), "{r:?}");
        assert!(
            header(r, "dipper.model").is_some_and(|m| m.starts_with("model:")),
            "{r:?}"
        );
        let ts: i64 = header(r, "dipper.source.timestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no dipper.source.timestamp: {r:?}"));
        assert_eq!(
            r.timestamp,
            Some(ts),
            "a dead letter keeps its input's timestamp"
        );
    }
    // One session, every output of it tagged, and the ledger counts them all.
    let tags: BTreeSet<String> = outputs.all().map(|(_, r)| txn_tag(r).0).collect();
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert!(
        tags.iter()
            .all(|t| t.starts_with(&format!("{}/", spec.group))),
        "{tags:?}"
    );
    assert_eq!(ledger_records(&ledger), events.ids.len() as u64);
    let s = summaries(&log);
    assert_eq!(
        s,
        vec![format!(
            "dipper run: {} in, {} predictions, {} dead-lettered, {} commits, 0 aborts",
            events.ids.len(),
            events.ids.len() - events.malformed.len(),
            events.malformed.len(),
            read_ledger(&ledger).len()
        )]
    );
    assert_eq!(
        broker.committed_offsets(&spec.group, &spec.input).unwrap(),
        per_partition,
        "the group's committed offsets must be the number of records in each partition"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 2. At-least-once, killed
// ---------------------------------------------------------------------------------------------------------------

/// Where [`run_with_kills`] kills within the commit cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillTiming {
    /// A random 0-60 ms after the progress target: mid-batch, mid-commit, mid-ledger-append.
    Anywhere,
    /// 10-70 ms after a commit was appended to the ledger: with a transaction open (records keep flowing) but
    /// never between a commit and its ledger line, the one moment at which a committed transaction would be
    /// missing from the ledger (the ledger is written after the commit returns, by design). Needs commits
    /// driven by `commit_interval_ms` (100) alone: a large `commit_max_records`.
    AfterACommit,
}

/// What the broker and the ledger said when one run of [`run_with_kills`] started.
#[derive(Debug, Clone)]
struct RunStart {
    /// The group's committed offsets (next offset to read) by partition, as the broker returns them.
    committed: BTreeMap<u32, i64>,
    /// Complete ledger lines written before the run: the run's own commits are the lines after these.
    ledger_lines: usize,
}

/// Runs `pipeline` and SIGKILLs it `kills` times, each time once its commit ledger has grown by a random 5-20%
/// of the input the group has not committed yet, at a moment chosen by `timing`; then a final run until idle.
/// Every kill must land while input is left (mid-stream). (The ledger is the trigger because it is cheap to
/// watch; the group's offsets, asked once per run, say how much is left.) Returns how each run started, the
/// final run last.
#[allow(clippy::too_many_arguments)]
fn run_with_kills(
    broker: &TestBroker,
    spec: &Spec,
    pipeline: &Path,
    ledger: &Path,
    log: &Path,
    n: i64,
    kills: usize,
    timing: KillTiming,
    rng: &mut impl Rng,
) -> Vec<RunStart> {
    let mut runs = Vec::new();
    let run_start = || RunStart {
        committed: broker.committed_offsets(&spec.group, &spec.input).unwrap(),
        ledger_lines: read_ledger(ledger).len(),
    };
    for k in 0..kills {
        let start = run_start();
        let before: i64 = start.committed.values().sum();
        let left = n - before;
        assert!(
            left > 0,
            "nothing left to kill dipper in: make the input bigger"
        );
        let step = rng.random_range(left / 20..left / 5).max(1) as u64;
        let mut child = spawn_dipper(pipeline, None, log);
        let ledger_before = ledger_records(ledger);
        wait_ledger(
            &mut child,
            ledger,
            ledger_before + step,
            Duration::from_secs(60),
            log,
        );
        let delay = match timing {
            KillTiming::Anywhere => rng.random_range(0..60),
            KillTiming::AfterACommit => {
                // Wait for a fresh commit: the next is at least commit_interval_ms (100) away.
                let lines = read_ledger(ledger).len();
                let deadline = Instant::now() + Duration::from_secs(30);
                while read_ledger(ledger).len() == lines {
                    assert!(
                        Instant::now() < deadline,
                        "no commit for 30 s:\n{}",
                        tail(log, 40)
                    );
                    std::thread::sleep(Duration::from_millis(2));
                }
                rng.random_range(10..70)
            }
        };
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        std::thread::sleep(spec.wait_after_kill());
        let done_in_run = ledger_records(ledger) - ledger_before;
        eprintln_uncaptured(&format!(
            "  kill {}: group offsets {:?} at the start, run committed {done_in_run} outputs before the kill, \
             group offsets {:?} after",
            k + 1,
            start.committed,
            broker.committed_offsets(&spec.group, &spec.input).unwrap()
        ));
        assert!(
            (done_in_run as i64) < left,
            "kill {} came after the run had done all {left} inputs left: not mid-stream",
            k + 1
        );
        runs.push(start);
    }
    runs.push(run_start());
    let mut child = spawn_dipper(pipeline, Some(spec.idle_after_kill_ms()), log);
    wait_success(&mut child, Duration::from_secs(90), log);
    runs
}

#[test]
fn at_least_once_survives_sigkill_without_losing_events() {
    let Some(broker) = TestBroker::start_or_skip("at_least_once_survives_sigkill") else {
        return;
    };
    let mut rng = seeded_rng("at_least_once_survives_sigkill");
    let spec = Spec::new(&broker, "alo-kill", "at-least-once");
    for t in [&spec.input, &spec.output, &spec.dlq] {
        broker.create_topic(t, 3).unwrap();
    }
    let events = events(12_000, 97);
    let (per_partition, at) = produce(&broker, &spec.input, &events.records);

    let dir = workdir("alo-kill");
    let ledger = dir.path().join("ledger.jsonl");
    let log = dir.path().join("dipper.log");
    let pipeline = spec.write(dir.path(), "alo-kill", &ledger);
    let kills = 3;
    let n = events.ids.len() as i64;
    run_with_kills(
        &broker,
        &spec,
        &pipeline,
        &ledger,
        &log,
        n,
        kills,
        KillTiming::Anywhere,
        &mut rng,
    );

    let outputs = Outputs::read(&broker, &spec.output, &spec.dlq, false);
    let (missing, duplicates) = accounting(&events, &outputs, &spec.input);
    let distinct = outputs.counts().len();
    eprintln_uncaptured(&format!(
        "at-least-once kill test: kills {kills}, {} in, {distinct} distinct out, {duplicates} duplicates, \
         {missing} missing ({} dead letters for {} malformed inputs)",
        events.ids.len(),
        outputs.dead.len(),
        events.malformed.len()
    ));
    if missing > 0 {
        let counts = outputs.counts();
        let lost: Vec<(u32, i64)> = events
            .ids
            .iter()
            .zip(&at)
            .filter(|(id, _)| !counts.contains_key(id.as_str()))
            .map(|(_, at)| *at)
            .collect();
        panic!(
            "at-least-once lost {missing} events; (partition, offset) of the first: {:?}; committed {:?}",
            &lost[..lost.len().min(30)],
            broker.committed_offsets(&spec.group, &spec.input).unwrap()
        );
    }
    assert_eq!(distinct, events.ids.len());
    assert_eq!(
        broker.committed_offsets(&spec.group, &spec.input).unwrap(),
        per_partition
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Two instances in one consumer group
// ---------------------------------------------------------------------------------------------------------------

/// The distinct `dipper.txn` values (sessions) in a ledger.
fn ledger_sessions(path: &Path) -> BTreeSet<String> {
    read_ledger(path).into_iter().map(|e| e.txn).collect()
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_instances_share_a_group_and_hand_over_on_sigterm() {
    let Some(broker) = TestBroker::start_or_skip("two_instances_share_a_group") else {
        return;
    };
    let spec = Spec::new(&broker, "duo", "at-least-once");
    for t in [&spec.input, &spec.output, &spec.dlq] {
        broker.create_topic(t, 4).unwrap();
    }
    let events = events(8_000, 89);
    let dir = workdir("duo");
    let (ledger_a, ledger_b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let pipeline_a = spec.write(dir.path(), "duo-a", &ledger_a);
    let pipeline_b = spec.write(dir.path(), "duo-b", &ledger_b);

    // 32 chunks 250 ms apart: events flow for about 8 s, while A starts, B joins and A leaves.
    let chunks = 32;
    let chunk = events.records.len() / chunks;
    let per_partition = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            let mut per_partition = BTreeMap::new();
            for part in events.records.chunks(chunk) {
                for (p, n) in produce(&broker, &spec.input, part).0 {
                    *per_partition.entry(p).or_insert(0) += n;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            per_partition
        });
        let mut a = spawn_dipper(&pipeline_a, None, &log_a);
        wait_ledger(&mut a, &ledger_a, 1, Duration::from_secs(30), &log_a);
        let mut b = spawn_dipper(&pipeline_b, None, &log_b);
        wait_ledger(&mut b, &ledger_b, 1, Duration::from_secs(60), &log_b);
        let a_before_stop = ledger_records(&ledger_a);
        let flowing = !producer.is_finished();
        sigterm(&a);
        match wait_exit(&mut a, Duration::from_secs(30)) {
            Some(status) if status.success() => {}
            other => panic!(
                "A did not stop cleanly on SIGTERM ({other:?}):\n{}",
                tail(&log_a, 40)
            ),
        }
        let per_partition = producer.join().unwrap();
        wait_for("B to commit every input", Duration::from_secs(60), || {
            broker.committed_offsets(&spec.group, &spec.input).unwrap() == per_partition
        });
        let b_total = ledger_records(&ledger_b);
        sigterm(&b);
        match wait_exit(&mut b, Duration::from_secs(30)) {
            Some(status) if status.success() => {}
            other => panic!(
                "B did not stop cleanly on SIGTERM ({other:?}):\n{}",
                tail(&log_b, 40)
            ),
        }
        eprintln_uncaptured(&format!(
            "  A committed {a_before_stop} outputs before SIGTERM ({}), {} in all; B {b_total}",
            if flowing {
                "events still flowing"
            } else {
                "after the last event was produced"
            },
            ledger_records(&ledger_a)
        ));
        per_partition
    });

    let outputs = Outputs::read(&broker, &spec.output, &spec.dlq, false);
    let (missing, duplicates) = accounting(&events, &outputs, &spec.input);
    let (sessions_a, sessions_b) = (ledger_sessions(&ledger_a), ledger_sessions(&ledger_b));
    let mut per_session: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in outputs.all() {
        *per_session.entry(txn_tag(r).0).or_insert(0) += 1;
    }
    eprintln_uncaptured(&format!(
        "two instances: {} in, {} distinct out, {duplicates} duplicates, {missing} missing; outputs per session {per_session:?}",
        events.ids.len(),
        outputs.counts().len()
    ));
    assert_eq!(missing, 0);
    assert_eq!(sessions_a.len(), 1, "{sessions_a:?}");
    assert_eq!(sessions_b.len(), 1, "{sessions_b:?}");
    assert_ne!(sessions_a, sessions_b);
    for s in sessions_a.iter().chain(&sessions_b) {
        assert!(
            per_session.get(s).copied().unwrap_or(0) > 0,
            "no outputs from session {s}: {per_session:?}"
        );
    }
    assert_eq!(per_session.len(), 2, "{per_session:?}");
    assert_eq!(
        broker.committed_offsets(&spec.group, &spec.input).unwrap(),
        per_partition
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 4b. Exactly-once on tansu: no EndTxn
// ---------------------------------------------------------------------------------------------------------------

/// tansu 0.6 has no EndTxn, so no transaction holding records can ever commit: dipper must stop with an error
/// that says so (not retry forever, not report success).
#[test]
fn exactly_once_on_tansu_stops_naming_the_missing_end_txn() {
    let Some(broker) = TestBroker::start_or_skip("exactly_once_on_tansu_stops") else {
        return;
    };
    if broker.tansu_bin().is_none() {
        eprintln_uncaptured(
            "exactly_once_on_tansu_stops: not tansu (DIPPER_TEST_BROKERS is set): nothing to check",
        );
        return;
    }
    let mut spec = Spec::new(&broker, "eos-tansu", "exactly-once");
    spec.transactional_id = Some(unique_topic("eos-tansu-txn"));
    for t in [&spec.input, &spec.output, &spec.dlq] {
        broker.create_topic(t, 2).unwrap();
    }
    let events = events(200, 0);
    produce(&broker, &spec.input, &events.records);
    let dir = workdir("eos-tansu");
    let ledger = dir.path().join("ledger.jsonl");
    let log = dir.path().join("dipper.log");
    let pipeline = spec.write(dir.path(), "eos-tansu", &ledger);
    let started = Instant::now();
    let mut child = spawn_dipper(&pipeline, Some(5_000), &log);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let error = text
        .lines()
        .find(|l| l.starts_with("dipper: error:"))
        .unwrap_or_default()
        .to_string();
    eprintln_uncaptured(&format!(
        "exactly-once on tansu: {status:?} after {:?}: {error}",
        started.elapsed()
    ));
    let status =
        status.unwrap_or_else(|| panic!("dipper kept running for 60 s:\n{}", tail(&log, 40)));
    assert!(
        !status.success(),
        "exactly-once cannot commit on tansu 0.6:\n{}",
        tail(&log, 40)
    );
    assert!(
        error.contains("EndTxn") && error.contains("not supported by broker"),
        "the error must name the missing EndTxn: {error:?}\n{}",
        tail(&log, 40)
    );
    assert!(
        read_ledger(&ledger).is_empty(),
        "nothing may be recorded as committed"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Exactly-once, killed: dipper's side, proved with the commit ledger
// ---------------------------------------------------------------------------------------------------------------

/// The broker for the exactly-once test: `DIPPER_TEST_BROKERS` if set, else librdkafka's mock cluster in this
/// process (its brokers listen on localhost, so the dipper processes reach it). Not tansu: it cannot end a
/// transaction at all (see `exactly_once_on_tansu_stops_naming_the_missing_end_txn`).
enum EosBroker {
    External(TestBroker),
    Mock {
        mock: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
        broker: TestBroker,
    },
}

impl EosBroker {
    fn start(test: &str) -> Option<EosBroker> {
        if std::env::var("DIPPER_TEST_BROKERS").is_ok_and(|b| !b.trim().is_empty()) {
            return TestBroker::start_or_skip(test).map(EosBroker::External);
        }
        let mock = rdkafka::mocking::MockCluster::new(1).expect("librdkafka mock cluster");
        let broker = TestBroker::external(mock.bootstrap_servers());
        Some(EosBroker::Mock { mock, broker })
    }

    fn broker(&self) -> &TestBroker {
        match self {
            EosBroker::External(b) | EosBroker::Mock { broker: b, .. } => b,
        }
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        match self {
            EosBroker::External(b) => b.create_topic(name, partitions).unwrap(),
            // The mock's admin API never answers CreateTopics.
            EosBroker::Mock { mock, .. } => mock.create_topic(name, partitions as i32, 1).unwrap(),
        }
    }

    fn name(&self) -> String {
        match self {
            EosBroker::External(b) => format!("DIPPER_TEST_BROKERS={}", b.bootstrap()),
            EosBroker::Mock { broker, .. } => {
                format!("librdkafka mock cluster at {}", broker.bootstrap())
            }
        }
    }
}

#[test]
fn exactly_once_commits_every_event_once_despite_sigkills() {
    let Some(eos) = EosBroker::start("exactly_once_commits_every_event_once") else {
        return;
    };
    let broker = eos.broker();
    let mut rng = seeded_rng("exactly_once_commits_every_event_once");
    let mut spec = Spec::new(broker, "eos", "exactly-once");
    spec.transactional_id = Some(unique_topic("eos-txn"));
    // Commits only every 100 ms, so a kill 5-50 ms after one finds a transaction open with records in it.
    spec.commit_max_records = 1_000_000;
    if matches!(eos, EosBroker::Mock { .. }) {
        spec.session_timeout_ms = 3_000;
    }
    // The mock cluster keeps only 5 MiB per partition and silently drops the oldest batches beyond that; it
    // also forgets transactional offsets, so every restart replays the input and four runs write up to ~15 MB
    // of outputs. Eight output partitions keep each under 2 MiB (checked below, as on any broker).
    let out_partitions = if matches!(eos, EosBroker::Mock { .. }) {
        8
    } else {
        2
    };
    eos.create_topic(&spec.input, 2);
    for t in [&spec.output, &spec.dlq] {
        eos.create_topic(t, out_partitions);
    }
    let events = events(10_000, 101);
    let (_, at) = produce(broker, &spec.input, &events.records);
    let source: HashMap<&str, (u32, i64)> = events
        .ids
        .iter()
        .map(String::as_str)
        .zip(at.iter().copied())
        .collect();

    let dir = workdir("eos");
    let ledger = dir.path().join("ledger.jsonl");
    let log = dir.path().join("dipper.log");
    let pipeline = spec.write(dir.path(), "eos", &ledger);
    let kills = 3;
    let n = events.ids.len() as i64;
    let runs = run_with_kills(
        broker,
        &spec,
        &pipeline,
        &ledger,
        &log,
        n,
        kills,
        KillTiming::AfterACommit,
        &mut rng,
    );
    let final_run = runs.len() - 1;

    // The ledger: which transactions dipper committed, and in which run (process) each was.
    let entries = read_ledger(&ledger);
    let run_of_line = |line: usize| runs.iter().rposition(|r| r.ledger_lines <= line).unwrap();
    let mut committed: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut run_of_session: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
    for (line, e) in entries.iter().enumerate() {
        assert!(
            committed
                .insert((e.txn.clone(), e.seq), e.records)
                .is_none(),
            "the ledger names {}/{} twice",
            e.txn,
            e.seq
        );
        let run = *run_of_session
            .entry(e.txn.clone())
            .or_insert(run_of_line(line));
        assert_eq!(run, run_of_line(line), "session {} spans two runs", e.txn);
        let last = last_seq.entry(e.txn.clone()).or_insert(e.seq);
        *last = (*last).max(e.seq);
    }

    // Everything a read_committed reader sees, split by whether dipper committed the record's transaction.
    let outputs = Outputs::read(broker, &spec.output, &spec.dlq, true);
    // ... which is everything written only if the broker deleted nothing (retention, or the mock's size limit).
    for t in [&spec.output, &spec.dlq] {
        let starts = broker.log_start_offsets(t).unwrap();
        assert!(
            starts.values().all(|&o| o == 0),
            "{} deleted the oldest records of {t} (log start offsets {starts:?}), so the test cannot see \
             every transaction: give the output topics more partitions or a longer retention",
            eos.name()
        );
    }
    let mut in_ledger = Outputs::default();
    let mut extra = Outputs::default();
    let mut per_txn: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut extra_txns: BTreeSet<(String, u64)> = BTreeSet::new();
    // id -> the runs whose committed transactions hold it
    let mut committed_in: HashMap<String, Vec<usize>> = HashMap::new();
    for (is_prediction, list) in [(true, &outputs.predictions), (false, &outputs.dead)] {
        for (id, r) in list {
            let tag = txn_tag(r);
            let to = if committed.contains_key(&tag) {
                committed_in
                    .entry(id.clone())
                    .or_default()
                    .push(run_of_session[&tag.0]);
                *per_txn.entry(tag).or_insert(0) += 1;
                &mut in_ledger
            } else {
                extra_txns.insert(tag);
                &mut extra
            };
            let item = (id.clone(), r.clone());
            if is_prediction {
                to.predictions.push(item);
            } else {
                to.dead.push(item);
            }
        }
    }

    // 1. Every transaction dipper recorded as committed is visible in full, and nothing else carries its tag.
    for (tag, records) in &committed {
        assert_eq!(
            per_txn.get(tag).copied().unwrap_or(0),
            *records,
            "transaction {tag:?}"
        );
    }
    // 2. Committed records hold every input (with the right outputs and dead letters) ...
    let (missing, duplicates) = accounting(&events, &in_ledger, &spec.input);
    assert_eq!(missing, 0, "committed transactions lack inputs");
    // ... once per run, and again in a later run only if the broker did not return the offsets dipper had
    // committed with it: an input below the group's committed offset when a run started was done before, and
    // that run must not commit it again.
    let mut within_run = 0;
    let mut across_runs = 0;
    let mut violations = Vec::new();
    for (id, in_runs) in &mut committed_in {
        in_runs.sort_unstable();
        for w in in_runs.windows(2) {
            if w[0] == w[1] {
                within_run += 1;
                continue;
            }
            across_runs += 1;
            let (p, offset) = source[id.as_str()];
            let start = runs[w[1]].committed.get(&p).copied().unwrap_or(0);
            if offset < start {
                violations.push(format!(
                    "{id} ({p}/{offset}) committed in run {} and again in run {}, which started at offset {start}",
                    w[0], w[1]
                ));
            }
        }
    }
    assert_eq!(within_run + across_runs, duplicates);
    // 3. Every other record belongs to a transaction dipper did not commit: the one each killed run had open
    //    (after its last commit), never one of the final run. (A session without any ledger line is a run
    //    killed before its first commit.)
    for (txn, seq) in &extra_txns {
        if let Some(&run) = run_of_session.get(txn) {
            assert_ne!(
                run, final_run,
                "the final run left uncommitted records in {txn}/{seq}"
            );
            assert!(
                seq > &last_seq[txn],
                "{txn}/{seq} is not after the session's last commit"
            );
        }
    }
    let offsets_kept = runs[1..].iter().any(|r| !r.committed.is_empty());
    let broker_note = if offsets_kept {
        "the broker returned the group's committed offsets to every restart".to_string()
    } else {
        format!(
            "the broker returned no committed offsets to any restart although {} transactions with input \
             offsets had committed before the last one: it drops TxnOffsetCommit (librdkafka's mock cluster \
             answers it without storing anything), so every restart reads from the beginning again",
            runs[final_run].ledger_lines
        )
    };
    let counts = outputs.counts();
    let plain_duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln_uncaptured(&format!(
        "exactly-once on {}: kills {kills}, {} in, committed-distinct {}, duplicates-in-committed {within_run} \
         within a run and {across_runs} across runs ({} not covered by the offsets the broker returned; \
         {broker_note}), extra records {} (all from {} transactions dipper did not commit); a plain read_committed \
         reader sees {} records, {plain_duplicates} duplicates",
        eos.name(),
        events.ids.len(),
        in_ledger.counts().len(),
        across_runs - violations.len(),
        extra.len(),
        extra_txns.len(),
        outputs.len(),
    ));
    assert_eq!(within_run, 0, "a run committed an input twice");
    assert!(
        violations.is_empty(),
        "re-committed inputs the broker had as done: {violations:#?}"
    );
    assert_eq!(in_ledger.counts().len(), events.ids.len());
    if offsets_kept {
        assert_eq!(duplicates, 0, "committed transactions repeat inputs");
    }
    if broker_is_kafka() {
        assert!(offsets_kept, "Kafka keeps transactional offset commits");
        assert_eq!(
            plain_duplicates, 0,
            "Kafka hides aborted transactions from read_committed readers"
        );
        assert_eq!(outputs.len(), events.ids.len());
    }
}

//! Exactly-once on the embedded log under SIGKILL, through the real binary (the embedded-log counterpart of
//! `shared/tools/eos_check.py` for Kafka).
//!
//! `dipper produce` writes N events with unique ids, keyed by card, into a 4-partition topic, with a malformed one
//! every 500 (half of them not JSON at all, half with a wrongly typed feature). `dipper run` is then started and
//! SIGKILLed K times, each time a random 100-600 ms after its start but no sooner than a random 0-100 ms after its
//! first commit (a kill while the model loads tests nothing; one always right after a commit tests too little).
//! The log is opened after each kill to check that the run made progress and left input unread. A last run with
//! `--exit-when-idle` finishes the input. The log, opened here once the last child has exited, must then hold
//! every input id exactly once across the output and dead-letter topics, in input order per key, with the group's
//! positions at the input's end, and the commit ledger must agree with the transactions the outputs carry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dipper_log::{Log, Options, StoredRecord};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Events produced. Large enough that the K killed runs cannot finish the input even on a much faster machine: with
/// a debug build, this one processes 1 000-3 000 events per killed run (its start-up takes about 300 ms).
const N: usize = 60_000;
const KILLS: usize = 5;
const PARTITIONS: u32 = 4;
const CARDS: u32 = 500;
/// One event in this many is malformed.
const BAD_EVERY: usize = 500;
const SEED: u64 = 0x5eed_d199e7;
const INPUT: &str = "events";
/// The signal `Child::kill` sends on unix.
const SIGKILL: i32 = 9;
const OUTPUT: &str = "scores";
const DEAD: &str = "dead";
const GROUP: &str = "dipper-kill";
const FEATURES: [&str; 12] = [
    "amount",
    "hour",
    "merchant_risk",
    "card_age_days",
    "txn_count_1h",
    "txn_count_24h",
    "avg_amount_7d",
    "distance_home_km",
    "foreign",
    "online",
    "chargebacks_90d",
    "velocity",
];

fn event_id(i: usize) -> String {
    format!("e{i:06}")
}

/// How an input event should come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Good,
    /// Valid JSON, `amount` is a string: dead-lettered as `features`, field `amount`.
    WrongType,
    /// Cut-off JSON (unkeyed, since it has no readable key): dead-lettered as `decode`.
    NotJson,
}

struct Inputs {
    kinds: Vec<Kind>,
    /// Card of every keyed event.
    cards: Vec<Option<String>>,
    /// `(keyed JSON lines, unkeyed broken lines)` per production chunk.
    chunks: Vec<(String, String)>,
}

fn make_inputs(rng: &mut ChaCha8Rng) -> Inputs {
    const CHUNKS: usize = 4;
    let mut kinds = Vec::with_capacity(N);
    let mut cards = Vec::with_capacity(N);
    let mut chunks = vec![(String::new(), String::new()); CHUNKS];
    for i in 0..N {
        let card = format!("c{}", rng.random_range(0..CARDS));
        // Written by hand so that the id comes first and survives the cut below.
        let mut line = format!("{{\"event_id\":\"{}\",\"card_id\":\"{card}\"", event_id(i));
        for f in FEATURES {
            let v: f64 = rng.random_range(-3.0..3.0);
            line.push_str(&format!(",\"{f}\":{v}"));
        }
        line.push('}');
        let kind = match i % BAD_EVERY {
            r if r != BAD_EVERY - 1 => Kind::Good,
            _ if (i / BAD_EVERY).is_multiple_of(2) => Kind::WrongType,
            _ => Kind::NotJson,
        };
        let (keyed, broken) = &mut chunks[i * CHUNKS / N];
        match kind {
            Kind::Good => {
                keyed.push_str(&line);
                keyed.push('\n');
            }
            Kind::WrongType => {
                let pos = line.find("\"amount\":").unwrap() + "\"amount\":".len();
                line.insert_str(pos, "\"n/a\",\"was\":");
                keyed.push_str(&line);
                keyed.push('\n');
            }
            Kind::NotJson => {
                line.truncate(line.find("\"amount\"").unwrap() + 12);
                broken.push_str(&line);
                broken.push('\n');
            }
        }
        cards.push((kind != Kind::NotJson).then_some(card));
        kinds.push(kind);
    }
    Inputs {
        kinds,
        cards,
        chunks,
    }
}

/// The event id in a record value, also when the value is cut-off JSON.
fn id_in(value: &[u8]) -> usize {
    let text = std::str::from_utf8(value).unwrap();
    let at = text.find("\"event_id\":\"e").unwrap() + "\"event_id\":\"e".len();
    text[at..at + 6].parse().unwrap()
}

fn dipper() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dipper"));
    c.stdin(Stdio::null()).stdout(Stdio::null());
    c
}

fn produce(log: &Path, dir: &Path, name: &str, lines: &str, key_field: bool) {
    if lines.is_empty() {
        return;
    }
    let file = dir.join(name);
    std::fs::write(&file, lines).unwrap();
    let mut cmd = dipper();
    cmd.args(["produce", "--topic", INPUT, "--partitions"])
        .arg(PARTITIONS.to_string())
        .arg("--log")
        .arg(log)
        .arg("--input")
        .arg(&file);
    if key_field {
        cmd.args(["--key-field", "card_id"]);
    }
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "dipper produce: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `dipper run`, its stderr going to `log_file`.
fn spawn_run(pipeline: &Path, extra: &[&str], log_file: &Path) -> Child {
    dipper()
        .arg("run")
        .arg(pipeline)
        .args(extra)
        .stderr(File::create(log_file).unwrap())
        .spawn()
        .unwrap()
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let mut status = None;
    let exited = wait_until(timeout, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("dipper run did not finish within {timeout:?}");
    }
    status.unwrap()
}

fn header<'a>(r: &'a StoredRecord, name: &str) -> &'a str {
    let v = &r.headers.iter().find(|(k, _)| k == name).unwrap().1;
    std::str::from_utf8(v).unwrap()
}

fn read_all(log: &Log, topic: &str) -> Vec<(u32, StoredRecord)> {
    let mut all = Vec::new();
    for p in 0..log.partitions(topic).unwrap() {
        all.extend(
            log.read(topic, p, 0, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|r| (p, r)),
        );
    }
    all
}

/// Records in the output and dead-letter topics (zero before the first commit created them).
fn processed(log: &Log) -> u64 {
    [OUTPUT, DEAD]
        .iter()
        .map(|t| match log.partitions(t) {
            Ok(n) => (0..n).map(|p| log.high_watermark(t, p).unwrap()).sum(),
            Err(_) => 0,
        })
        .sum()
}

#[test]
fn sigkill_mid_stream_loses_and_repeats_nothing() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log_dir = dir.join("log");
    let ledger = dir.join("ledger.jsonl");
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);

    let inputs = make_inputs(&mut rng);
    for (c, (keyed, broken)) in inputs.chunks.iter().enumerate() {
        produce(&log_dir, dir, &format!("keyed-{c}.jsonl"), keyed, true);
        produce(&log_dir, dir, &format!("broken-{c}.jsonl"), broken, false);
    }
    let n_bad = inputs.kinds.iter().filter(|k| **k != Kind::Good).count();
    assert_eq!(n_bad, N / BAD_EVERY);

    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/interop/fraud_lgbm/model.txt")
        .canonicalize()
        .unwrap();
    let pipeline = dir.join("p.yaml");
    let mut f = File::create(&pipeline).unwrap();
    write!(
        f,
        "name: kill\ntransport:\n  embedded:\n    dir: '{}'\ninput:\n  topics: [{INPUT}]\n  event_id_field: event_id\n\
         model:\n  path: '{}'\noutput:\n  topic: {OUTPUT}\n  pass_through: [card_id]\ndead_letter:\n  topic: {DEAD}\n\
         delivery:\n  commit_interval_ms: 20\n  commit_ledger: '{}'\n",
        log_dir.display(),
        model.display(),
        ledger.display()
    )
    .unwrap();
    drop(f);
    let stderr_of = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    // K runs, each SIGKILLed mid-stream.
    let mut delays = Vec::new();
    let mut progress = vec![0u64];
    for k in 0..KILLS {
        let delay = Duration::from_millis(rng.random_range(100..600));
        let jitter = Duration::from_millis(rng.random_range(0..100));
        let ledger_before = file_len(&ledger);
        let spawned = Instant::now();
        let name = format!("run-{k}.log");
        let mut child = spawn_run(&pipeline, &[], &dir.join(&name));
        // Not before this run has committed something: a kill while the model loads tests nothing. And then
        // not right after that commit either, which would always catch the run at the start of a unit of work.
        let progressed = wait_until(Duration::from_secs(20), || {
            file_len(&ledger) > ledger_before || child.try_wait().unwrap().is_some()
        });
        assert!(
            progressed,
            "run {k} committed nothing in 20 s: {}",
            stderr_of(&name)
        );
        let kill_at = (spawned + delay).max(Instant::now() + jitter);
        std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
        delays.push(spawned.elapsed());
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "run {k} ended by itself ({status}): {}",
            stderr_of(&name)
        );
        // Recovered by this open: the run added something and left input unread.
        let done = processed(&Log::open(&log_dir, Options::default()).unwrap());
        assert!(
            done > *progress.last().unwrap() && done < N as u64,
            "kill {k} must land mid-stream: {done} of {N} processed, {progress:?} before (raise N if the \
             machine is this fast)"
        );
        progress.push(done);
    }

    // The last run finishes the input.
    let mut child = spawn_run(
        &pipeline,
        &["--exit-when-idle", "500"],
        &dir.join("final.log"),
    );
    let status = wait_with_timeout(&mut child, Duration::from_secs(120));
    assert!(status.success(), "final run: {}", stderr_of("final.log"));

    // Judge.
    let log = Log::open(&log_dir, Options::default()).unwrap();
    let outputs = read_all(&log, OUTPUT);
    let dead = read_all(&log, DEAD);
    let mut counts = vec![0usize; N];
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut partition_of_key: HashMap<String, u32> = HashMap::new();
    let mut txn_records: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for (p, r) in &outputs {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        let id = v["event_id"].as_str().unwrap();
        let i: usize = id[1..].parse().unwrap();
        counts[i] += 1;
        assert_eq!(inputs.kinds[i], Kind::Good, "{id} was scored");
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        assert_eq!(Some(&key), inputs.cards[i].as_ref(), "{id}: key");
        assert_eq!(v["card_id"], key.as_str());
        assert!(v["probabilities"]["1"].as_f64().is_some());
        assert_eq!(*partition_of_key.entry(key.clone()).or_insert(*p), *p);
        by_key.entry(key).or_default().push(i);
        *txn_records
            .entry((
                header(r, "dipper.txn").to_string(),
                header(r, "dipper.txn.seq").parse().unwrap(),
            ))
            .or_default() += 1;
    }
    let mut dead_by_kind = BTreeMap::new();
    for (_, r) in &dead {
        let value = r.value.as_deref().unwrap();
        let i = id_in(value);
        counts[i] += 1;
        let (reason, field) = match inputs.kinds[i] {
            Kind::Good => panic!("{} was dead-lettered: {:?}", event_id(i), r.headers),
            Kind::WrongType => ("features", Some("amount")),
            Kind::NotJson => ("decode", None),
        };
        *dead_by_kind.entry(reason).or_insert(0) += 1;
        assert_eq!(header(r, "dipper.error.reason"), reason);
        assert_eq!(
            r.headers
                .iter()
                .find(|(k, _)| k == "dipper.error.field")
                .map(|(_, v)| std::str::from_utf8(v).unwrap()),
            field
        );
        // The source headers name the input record, whose bytes the dead letter carries unchanged.
        assert_eq!(header(r, "dipper.source.topic"), INPUT);
        let src = log
            .read(
                INPUT,
                header(r, "dipper.source.partition").parse().unwrap(),
                header(r, "dipper.source.offset").parse().unwrap(),
                1,
            )
            .unwrap();
        assert_eq!(src[0].value.as_deref(), Some(value));
        *txn_records
            .entry((
                header(r, "dipper.txn").to_string(),
                header(r, "dipper.txn.seq").parse().unwrap(),
            ))
            .or_default() += 1;
    }

    let distinct = counts.iter().filter(|c| **c > 0).count();
    let duplicates: usize = counts.iter().map(|c| c.saturating_sub(1)).sum();
    let missing = counts.iter().filter(|c| **c == 0).count();
    let runs: BTreeSet<&str> = txn_records.keys().map(|(t, _)| t.as_str()).collect();
    println!(
        "kills {KILLS}, {N} in, {distinct} distinct out, {duplicates} duplicates, {missing} missing \
         ({} predictions, {} dead-lettered {dead_by_kind:?}; processed after each kill {:?}; \
         {} runs committed {} transactions; kill delays {delays:?}; {:.1} s)",
        outputs.len(),
        dead.len(),
        &progress[1..],
        runs.len(),
        txn_records.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!((duplicates, missing), (0, 0), "exactly once");
    assert_eq!(
        dead.len(),
        n_bad,
        "every malformed input, and only those, dead-lettered"
    );
    assert_eq!(outputs.len() + dead.len(), N);

    // Per key, outputs in input order.
    let mut want: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, card) in inputs.cards.iter().enumerate() {
        if inputs.kinds[i] == Kind::Good {
            want.entry(card.clone().unwrap()).or_default().push(i);
        }
    }
    assert_eq!(by_key, want, "per-key order");

    // Positions at the input's end.
    for p in 0..PARTITIONS {
        let hw = log.high_watermark(INPUT, p).unwrap();
        assert!(hw > 0);
        assert_eq!(
            log.committed(GROUP, INPUT, p).unwrap(),
            Some(hw),
            "{INPUT}/{p}"
        );
    }

    // Every run committed (each killed one before its kill, so the kills fell between commits), and the ledger
    // lists exactly the committed transactions with their record counts; only a killed run's last commit may be
    // missing from it (killed between the commit and the ledger line).
    assert_eq!(runs.len(), KILLS + 1, "runs that committed");
    let ledger_text = std::fs::read_to_string(&ledger).unwrap();
    let mut in_ledger = BTreeMap::new();
    for line in ledger_text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue; // a line cut by a kill
        };
        let key = (
            v["txn"].as_str().unwrap().to_string(),
            v["seq"].as_u64().unwrap(),
        );
        let records = v["records"].as_u64().unwrap();
        assert_eq!(
            txn_records.get(&key),
            Some(&records),
            "ledger {line} vs the log"
        );
        assert!(in_ledger.insert(key, records).is_none(), "{line} twice");
    }
    let unlisted: Vec<_> = txn_records
        .keys()
        .filter(|k| !in_ledger.contains_key(*k))
        .collect();
    let unlisted_runs: BTreeSet<&str> = unlisted.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        unlisted.len() <= KILLS && unlisted_runs.len() == unlisted.len(),
        "committed but not in the ledger: {unlisted:?}"
    );
}

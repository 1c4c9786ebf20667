//! Broker-side helper for `tools/bench/kafka_cpu.sh`, against the broker in `DIPPER_TEST_BROKERS`:
//!
//! ```text
//! bench_kafka create TOPIC PARTITIONS             # create a topic (already existing is fine)
//! bench_kafka produce TOPIC ROWS.jsonl COUNT      # COUNT events cycling over ROWS, keyed, with an event_id
//! bench_kafka count TOPIC [QUIET_MS]              # records in TOPIC (reads until quiet for QUIET_MS)
//! bench_kafka committed GROUP TOPIC               # the offsets GROUP has committed, by partition
//! ```
//!
//! Events are the rows with `"event_id":"evt-<n>"` added in front and key `card-<n % 997>`, as in
//! dipper-stream's engine benchmark.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use dipper_testkit::{Partitioning, Record, TestBroker};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_kafka: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let num = |s: &String| {
        s.parse::<u64>()
            .map_err(|e| format!("'{s}' is not a count: {e}"))
    };
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["create", topic, _] => {
            let broker = TestBroker::start()?;
            broker.create_topic(topic, num(&args[2])? as u32)
        }
        ["produce", topic, rows, _count] => {
            let count = num(&args[3])? as usize;
            let text = std::fs::read_to_string(rows).map_err(|e| format!("{rows}: {e}"))?;
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.is_empty() {
                return Err(format!("{rows} has no rows"));
            }
            let records: Vec<Record> = (0..count)
                .map(|i| {
                    let rest = lines[i % lines.len()]
                        .trim()
                        .strip_prefix('{')
                        .ok_or_else(|| format!("{rows}: rows must be JSON objects"))?;
                    Ok((
                        Some(format!("card-{:04}", i % 997).into_bytes()),
                        format!("{{\"event_id\": \"evt-{i:06}\", {rest}").into_bytes(),
                        Vec::new(),
                    ))
                })
                .collect::<Result<_, String>>()?;
            let broker = TestBroker::start()?;
            let started = Instant::now();
            broker.produce(topic, &records, Partitioning::ByKey)?;
            eprintln!(
                "produced {count} events to {topic} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        ["count", topic] | ["count", topic, _] => {
            let quiet = match args.get(2) {
                Some(ms) => Duration::from_millis(num(ms)?),
                None => Duration::from_secs(3),
            };
            let broker = TestBroker::start()?;
            let got = broker.consume_all(topic, quiet, Duration::from_secs(600), false)?;
            let mut per_partition = std::collections::BTreeMap::<u32, usize>::new();
            for r in &got {
                *per_partition.entry(r.partition).or_default() += 1;
            }
            eprintln!("{topic}: {} records, by partition {per_partition:?}", got.len());
            println!("{}", got.len());
            Ok(())
        }
        ["committed", group, topic] => {
            let broker = TestBroker::start()?;
            let offsets = broker.committed_offsets(group, topic)?;
            println!("{offsets:?}");
            Ok(())
        }
        _ => Err(
            "usage: bench_kafka create TOPIC PARTITIONS | produce TOPIC ROWS.jsonl COUNT | count TOPIC [QUIET_MS] | committed GROUP TOPIC \
             (broker from DIPPER_TEST_BROKERS)"
                .into(),
        ),
    }
}

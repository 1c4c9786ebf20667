//! `dipper produce` and `dipper consume`: move JSON lines in and out of topics on the embedded log,
//! so a pipeline can be fed and inspected with nothing else installed. (On Kafka, use any Kafka
//! client; `dipper demo --brokers` produces its own stream.)

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use dipper_log::{Log, Options, Record};
use dipper_stream::transport::embedded::kafka_partition;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The embedded log directory.
    #[arg(long, default_value = "dipper-data")]
    pub log: PathBuf,
    /// Topic to append to.
    #[arg(long)]
    pub topic: String,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    pub partitions: Option<u32>,
    /// A field whose value becomes the record key (partitioned like Kafka: murmur2 of the key).
    #[arg(long)]
    pub key_field: Option<String>,
    /// JSON-lines file, or - for stdin.
    #[arg(long, default_value = "-")]
    pub input: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The embedded log directory.
    #[arg(long, default_value = "dipper-data")]
    pub log: PathBuf,
    #[arg(long)]
    pub topic: String,
    /// Print each record as a JSON envelope with partition, offset, key and headers.
    #[arg(long)]
    pub envelope: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<usize>,
}

fn open(dir: &PathBuf) -> Result<Log> {
    Log::open(dir, Options::default())
        .with_context(|| format!("opening the embedded log {}", dir.display()))
}

pub fn produce(args: ProduceArgs) -> Result<ExitCode> {
    let log = open(&args.log)?;
    let n = match (log.partitions(&args.topic), args.partitions) {
        (Ok(n), _) => n,
        (Err(_), Some(n)) => {
            log.create_topic(&args.topic, n)?;
            n
        }
        (Err(e), None) => bail!("{e} (pass --partitions N to create it)"),
    };
    let (reader, name): (Box<dyn BufRead>, String) = if args.input.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), "stdin".into())
    } else {
        let f = std::fs::File::open(&args.input)
            .with_context(|| format!("opening {}", args.input.display()))?;
        (
            Box::new(std::io::BufReader::new(f)),
            args.input.display().to_string(),
        )
    };
    let now = dipper_stream::score::now_millis();
    let mut txn = log.begin();
    let (mut total, mut next) = (0u64, 0u32);
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{name}:{}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let key = match &args.key_field {
            None => None,
            // A line that is not a JSON object is still appended (unkeyed): producing does not
            // validate events, the pipeline dead-letters what it cannot score.
            Some(field) => match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(v) => match v.get(field) {
                    Some(serde_json::Value::String(s)) => Some(s.clone().into_bytes()),
                    Some(serde_json::Value::Null) | None => None,
                    Some(other) => Some(other.to_string().into_bytes()),
                },
                Err(e) => {
                    eprintln!(
                        "dipper produce: {name}:{}: not JSON ({e}); appended without a key",
                        i + 1
                    );
                    None
                }
            },
        };
        let partition = match &key {
            Some(k) => kafka_partition(k, n),
            None => {
                next = (next + 1) % n;
                next
            }
        };
        txn.append(
            &args.topic,
            partition,
            Record {
                key,
                value: Some(line.into_bytes()),
                headers: Vec::new(),
                timestamp: now,
            },
        )?;
        total += 1;
        if txn.len() >= 10_000 {
            log.commit(std::mem::replace(&mut txn, log.begin()))?;
        }
    }
    log.commit(txn)?;
    eprintln!("dipper produce: {total} records to {}", args.topic);
    Ok(ExitCode::SUCCESS)
}

pub fn consume(args: ConsumeArgs) -> Result<ExitCode> {
    match consume_inner(args) {
        // `dipper consume | head` closing the pipe early is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

fn consume_inner(args: ConsumeArgs) -> Result<ExitCode> {
    let log = open(&args.log)?;
    let n = log.partitions(&args.topic)?;
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    let mut left = args.limit.unwrap_or(usize::MAX);
    for p in 0..n {
        let mut from = 0;
        while left > 0 {
            let recs = log.read(&args.topic, p, from, left.min(10_000))?;
            if recs.is_empty() {
                break;
            }
            for r in recs {
                from = r.offset + 1;
                left -= 1;
                let value = r.value.as_deref().unwrap_or_default();
                if args.envelope {
                    let headers: serde_json::Map<String, serde_json::Value> = r
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned().into()))
                        .collect();
                    let env = serde_json::json!({
                        "partition": p,
                        "offset": r.offset,
                        "timestamp": r.timestamp,
                        "key": r.key.as_deref().map(String::from_utf8_lossy),
                        "headers": headers,
                        "value": String::from_utf8_lossy(value),
                    });
                    writeln!(out, "{env}")?;
                } else {
                    out.write_all(value)?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

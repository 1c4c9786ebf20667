//! Helpers shared by the generator's tests: a run of events on the simulated clock, and parsing them back.

use serde_json::Value;

use super::{Event, FraudGenerator, GeneratorConfig};

/// 2023-11-14T22:13:20Z.
pub(super) const START: i64 = 1_700_000_000_000;

pub(super) fn generate(seed: u64, config: GeneratorConfig, n: usize) -> Vec<Event> {
    let mut g = FraudGenerator::new(seed, config);
    let mut ts = START;
    (0..n)
        .map(|_| {
            ts = g.next_arrival(ts);
            g.next_event(ts)
        })
        .collect()
}

pub(super) fn parse(e: &Event) -> serde_json::Map<String, Value> {
    match serde_json::from_slice(&e.json) {
        Ok(Value::Object(m)) => m,
        other => panic!(
            "not a JSON object: {other:?} from {}",
            String::from_utf8_lossy(&e.json)
        ),
    }
}

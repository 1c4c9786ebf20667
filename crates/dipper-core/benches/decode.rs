//! Guards the speed of `RowDecoder::decode_json`, which the stream runtime runs on every Kafka event before
//! scoring. The engine target is 300k events/s/core for event -> 30 features -> 100-tree GBM (~1.2 µs) -> output,
//! so decoding a typical event has to stay well under a microsecond. Three cases:
//! - `numeric_30`: the 1000 lines of `fixtures/bench/rows.jsonl` (keys `x0`..`x29`, long decimals), the same
//!   events as `cargo bench -p dipper-models --bench predict` (json_decode_and_score_x1000);
//! - `mixed`: 1000 generated events with categorical strings (known and unknown categories), booleans, nulls,
//!   numbers as strings and integers, plus ignored fields: nested objects and arrays, strings with escapes and
//!   escaped keys;
//! - `mixed_capturing_4`: the same events, also capturing four fields no feature reads
//!   (`RowDecoder::with_captured_fields`, as the stream runtime does for the event id and pass-through fields):
//!   the id first, a nested object, the string with escapes, and one the events lack.
//!
//! Run: `cargo bench -p dipper-core --bench decode`. Times are per 1000 events (criterion also prints events/s).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec, MissingPolicy, RowDecoder};

fn numeric_lines() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bench/rows.jsonl");
    std::fs::read_to_string(path)
        .expect("fixtures/bench/rows.jsonl")
        .lines()
        .map(String::from)
        .collect()
}

fn categorical(name: &str, categories: &[&str]) -> FeatureSpec {
    FeatureSpec {
        name: name.into(),
        kind: FeatureKind::Categorical {
            categories: categories.iter().map(|c| c.to_string()).collect(),
        },
    }
}

const COUNTRIES: [&str; 8] = ["US", "FR", "DE", "GB", "ES", "IT", "JP", "BR"];
const DEVICES: [&str; 3] = ["ios", "android", "web"];

/// 30 features: 4 categorical/boolean, 6 numeric read from integers, strings or nulls, 20 plain decimals.
fn mixed_schema() -> FeatureSchema {
    let mut specs = vec![
        categorical("country", &COUNTRIES),
        categorical("device", &DEVICES),
        FeatureSpec::numeric("is_new"),
        FeatureSpec::numeric("has_promo"),
        FeatureSpec::numeric("amount"),
        FeatureSpec::numeric("age"),
        FeatureSpec::numeric("n_items"),
        FeatureSpec::numeric("score_str"),
        FeatureSpec::numeric("account_age_days"),
        FeatureSpec::numeric("hour"),
    ];
    specs.extend((0..20).map(|i| FeatureSpec::numeric(format!("f{i}"))));
    FeatureSchema::new(specs).unwrap()
}

/// Deterministic pseudo-random events (a 64-bit LCG), shaped like a payments event stream.
fn mixed_lines() -> Vec<String> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 11
    };
    let mut unit = move || (next() as f64) / (1u64 << 53) as f64;
    (0..1000)
        .map(|i| {
            let r = unit();
            let country = if r < 0.9 {
                COUNTRIES[(r * 100.0) as usize % COUNTRIES.len()]
            } else {
                "NZ"
            };
            let device = DEVICES[i % DEVICES.len()];
            let age = if i % 7 == 0 {
                "null".to_string()
            } else {
                format!("{}", 18 + i % 60)
            };
            let mut s = format!(
                r#"{{"event_id": "evt-{i:08}", "ts": "2024-05-01T12:{:02}:{:02}.123Z", "user": {{"id": {}, "tags": ["vip", "beta"], "geo": {{"lat": 48.8566, "lon": 2.3522}}}}, "country": "{country}", "device": "{device}", "is_new": {}, "has_promo": {}, "amount": {}, "age": {age}, "n_items": {}, "score_str": "{:.3}", "account_age_days": {}, "hour": {}, "items": [{{"sku": "A-{}", "qty": 2, "price": 9.99}}, {{"sku": "B-7", "qty": 1, "price": 1.5e2}}], "note": "line\nbreak \"quoted\" caf\u00e9 \\ {}", "caf\u00e9_visits": 3, "a\"b": true"#,
                i % 60,
                (i * 7) % 60,
                100_000 + i,
                i % 3 == 0,
                i % 5 == 0,
                (unit() * 50_000.0).round() / 100.0,
                1 + i % 9,
                unit() * 10.0,
                i * 3,
                i % 24,
                i % 100,
                i,
            );
            for f in 0..20 {
                s.push_str(&format!(r#", "f{f}": {}"#, (unit() - 0.5) * 10.0));
            }
            s.push('}');
            s
        })
        .collect()
}

fn bench_case(
    c: &mut Criterion,
    name: &str,
    schema: FeatureSchema,
    captured: &[&str],
    lines: &[String],
) {
    let mut dec = RowDecoder::new(schema, MissingPolicy::Allow).with_captured_fields(captured);
    let mut row = vec![0.0; dec.schema().len()];
    for line in lines {
        dec.decode_json(line.as_bytes(), &mut row)
            .unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
    }
    let mut g = c.benchmark_group("decode_json");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            for line in lines {
                dec.decode_json(black_box(line.as_bytes()), &mut row)
                    .unwrap();
                black_box(&row);
            }
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let numeric =
        FeatureSchema::numeric(&(0..30).map(|i| format!("x{i}")).collect::<Vec<_>>()).unwrap();
    bench_case(c, "numeric_30_x1000", numeric, &[], &numeric_lines());
    let mixed = mixed_lines();
    bench_case(c, "mixed_x1000", mixed_schema(), &[], &mixed);
    let captured = ["event_id", "user", "note", "absent"];
    bench_case(
        c,
        "mixed_capturing_4_x1000",
        mixed_schema(),
        &captured,
        &mixed,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

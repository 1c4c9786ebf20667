//! Event encoding: the history features of an event (velocity, new merchant, amount against the running
//! average, account age) and its JSON, written by hand in the documented field order.

use super::merchants::{CATS, SEEN_WORDS};
use super::{day_of_week, hour_of, Event, FraudGenerator, DAY_MS, HOUR_MS, VELOCITY_CAP};

impl Event {
    /// The event with `"is_fraud": 0 or 1` appended, for training history.
    pub fn labelled_json(&self) -> Vec<u8> {
        let label: &[u8] = if self.is_fraud {
            b"\"is_fraud\":1}"
        } else {
            b"\"is_fraud\":0}"
        };
        let mut body = self.json.as_slice();
        while let Some((&last, rest)) = body.split_last() {
            body = rest;
            if last == b'}' {
                break;
            }
        }
        let mut out = Vec::with_capacity(body.len() + label.len() + 1);
        out.extend_from_slice(body);
        if !matches!(body.trim_ascii_end().last(), Some(b'{') | None) {
            out.push(b',');
        }
        out.extend_from_slice(label);
        out
    }
}

/// What an event is about, before the card's history turns it into features.
pub(super) struct Draft {
    pub(super) card: usize,
    pub(super) cat: usize,
    pub(super) merchant: u32,
    pub(super) cents: u64,
    pub(super) online: bool,
    pub(super) present: bool,
    pub(super) km: f64,
    pub(super) mismatch: bool,
    pub(super) fraud: bool,
}

impl FraudGenerator {
    /// Turns a draft into an event against the card's history, and records it there.
    pub(super) fn finish(&mut self, d: Draft, ts: i64, epoch: i64) -> Event {
        let c = &mut self.cards[d.card];

        let mut velocity = 0;
        for back in 1..=usize::from(c.recent_len) {
            let slot = (usize::from(c.recent_head) + VELOCITY_CAP - back) % VELOCITY_CAP;
            if c.recent[slot] <= ts.saturating_sub(HOUR_MS) {
                break;
            }
            velocity += 1;
        }
        c.recent[usize::from(c.recent_head)] = ts;
        c.recent_head = ((usize::from(c.recent_head) + 1) % VELOCITY_CAP) as u8;
        c.recent_len = (usize::from(c.recent_len) + 1).min(VELOCITY_CAP) as u8;

        let word = &mut self.seen[d.card * SEEN_WORDS + d.merchant as usize / 64];
        let bit = 1u64 << (d.merchant % 64);
        let new_merchant = *word & bit == 0;
        *word |= bit;

        let amount = d.cents as f64 / 100.0;
        let vs_avg = amount / c.running_avg;
        c.running_avg += 0.1 * (amount - c.running_avg);
        let age_days =
            (c.age_at_start_days + ts.saturating_sub(epoch) as f64 / DAY_MS as f64).floor();

        let id = &self.ids[d.card];
        let mut json = Vec::with_capacity(448);
        json.extend_from_slice(b"{\"event_id\":\"e");
        push_u64(&mut json, self.counter);
        self.counter += 1;
        json.extend_from_slice(b"\",\"card_id\":");
        push_str(&mut json, id);
        json.extend_from_slice(b",\"merchant_id\":\"m");
        push_padded(&mut json, u64::from(d.merchant), 5);
        json.extend_from_slice(b"\",\"ts\":");
        push_i64(&mut json, ts);
        json.extend_from_slice(b",\"amount\":");
        push_fixed(&mut json, amount, 2);
        json.extend_from_slice(b",\"merchant_category\":");
        push_str(&mut json, CATS[d.cat].name);
        json.extend_from_slice(b",\"hour\":");
        push_u64(&mut json, hour_of(ts) as u64);
        json.extend_from_slice(b",\"day_of_week\":");
        push_u64(&mut json, day_of_week(ts) as u64);
        json.extend_from_slice(b",\"distance_from_home_km\":");
        push_fixed(&mut json, d.km, 1);
        json.extend_from_slice(b",\"card_velocity_1h\":");
        push_u64(&mut json, velocity);
        json.extend_from_slice(b",\"amount_vs_avg\":");
        push_fixed(&mut json, vs_avg, 3);
        json.extend_from_slice(b",\"is_online\":");
        push_bool(&mut json, d.online);
        json.extend_from_slice(b",\"card_present\":");
        push_bool(&mut json, d.present);
        json.extend_from_slice(b",\"new_merchant\":");
        push_bool(&mut json, new_merchant);
        json.extend_from_slice(b",\"country_mismatch\":");
        push_bool(&mut json, d.mismatch);
        json.extend_from_slice(b",\"account_age_days\":");
        push_fixed(&mut json, age_days, 0);
        json.push(b'}');

        Event {
            key: id.clone(),
            json,
            is_fraud: d.fraud,
            timestamp_ms: ts,
        }
    }
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut digits = 1;
    let mut rest = v / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    out.resize(out.len() + width.saturating_sub(digits), b'0');
    push_u64(out, v);
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// `v` rounded to `decimals` places in plain decimal notation (a JSON number; not finite becomes 0).
fn push_fixed(out: &mut Vec<u8>, v: f64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let scaled = if v.is_finite() {
        (v.abs() * scale as f64).round().min(1e18) as u64
    } else {
        0
    };
    if v < 0.0 && scaled != 0 {
        out.push(b'-');
    }
    push_u64(out, scaled / scale);
    if decimals > 0 {
        out.push(b'.');
        push_padded(out, scaled % scale, decimals as usize);
    }
}

fn push_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// A JSON string, escaped.
fn push_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet, VecDeque};

    use serde_json::Value;

    use super::*;
    use crate::demo::generator::merchants::{regular_merchant, NCAT, REGULARS};
    use crate::demo::generator::test_support::{generate, parse};
    use crate::demo::generator::{GeneratorConfig, CATEGORIES, FIELDS, LABEL};

    #[test]
    fn generator_events_are_json_with_every_field() {
        let events = generate(1, GeneratorConfig::default(), 50_000);
        let mut ids = HashSet::new();
        let mut last = i64::MIN;
        let mut categories = HashSet::new();
        for e in &events {
            let m = parse(e);
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            let mut expected = FIELDS.to_vec();
            expected.sort_unstable();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, expected);
            for s in ["event_id", "card_id", "merchant_id", "merchant_category"] {
                assert!(m[s].is_string(), "{s} in {m:?}");
            }
            for b in [
                "is_online",
                "card_present",
                "new_merchant",
                "country_mismatch",
            ] {
                assert!(m[b].is_boolean(), "{b} in {m:?}");
            }
            for i in [
                "ts",
                "hour",
                "day_of_week",
                "card_velocity_1h",
                "account_age_days",
            ] {
                assert!(m[i].is_i64(), "{i} in {m:?}");
            }
            for f in ["amount", "distance_from_home_km", "amount_vs_avg"] {
                let v = m[f].as_f64().unwrap_or_else(|| panic!("{f} in {m:?}"));
                assert!(v.is_finite() && v >= 0.0, "{f} in {m:?}");
            }
            assert!(ids.insert(m["event_id"].as_str().unwrap().to_owned()));
            assert_eq!(m["card_id"].as_str(), Some(e.key.as_str()));
            let ts = m["ts"].as_i64().unwrap();
            assert_eq!(ts, e.timestamp_ms);
            assert!(ts >= last);
            last = ts;
            assert_eq!(m["hour"].as_i64(), Some((ts / HOUR_MS) % 24));
            assert_eq!(m["day_of_week"].as_i64(), Some((ts / DAY_MS + 3) % 7));
            let amount = m["amount"].as_f64().unwrap();
            assert!(amount >= 0.5);
            assert!((amount * 100.0 - (amount * 100.0).round()).abs() < 1e-6);
            let category = m["merchant_category"].as_str().unwrap().to_owned();
            assert!(CATEGORIES.contains(&category.as_str()));
            categories.insert(category);
            assert!(m["account_age_days"].as_i64().unwrap() >= 1);
            if m["is_online"] == Value::Bool(true) {
                assert_eq!(m["card_present"], Value::Bool(false));
            }
        }
        assert_eq!(categories.len(), NCAT);
    }

    #[test]
    fn generator_history_features_match_the_timeline() {
        let events = generate(5, GeneratorConfig::default(), 100_000);
        let salt = FraudGenerator::new(5, GeneratorConfig::default()).salt;
        let mut recent: HashMap<String, VecDeque<i64>> = HashMap::new();
        let mut used = HashSet::new();
        let mut busy = 0;
        for e in &events {
            let m = parse(e);
            let ts = e.timestamp_ms;
            let times = recent.entry(e.key.clone()).or_default();
            while times.front().is_some_and(|&t| t <= ts - HOUR_MS) {
                times.pop_front();
            }
            let expected = times.len().min(VELOCITY_CAP) as u64;
            assert_eq!(m["card_velocity_1h"].as_u64(), Some(expected), "{m:?}");
            busy += usize::from(expected > 0);
            times.push_back(ts);

            let merchant = m["merchant_id"].as_str().unwrap().to_owned();
            let index: u32 = merchant[1..].parse().unwrap();
            let card: usize = e.key[1..].parse().unwrap();
            let regular = (0..NCAT)
                .any(|cat| (0..REGULARS).any(|s| regular_merchant(salt, card, cat, s) == index));
            let new = used.insert((e.key.clone(), merchant)) && !regular;
            assert_eq!(m["new_merchant"].as_bool(), Some(new), "{m:?}");
        }
        assert!(busy > 1000, "only {busy} events with velocity");
    }

    #[test]
    fn generator_labelled_json_is_json_plus_the_label() {
        for e in generate(2, GeneratorConfig::default(), 5_000) {
            let mut m = parse(&e);
            let labelled: Value = serde_json::from_slice(&e.labelled_json()).unwrap();
            m.insert(LABEL.to_owned(), Value::from(u8::from(e.is_fraud)));
            assert_eq!(labelled, Value::Object(m));
            assert!(e.labelled_json().starts_with(&e.json[..e.json.len() - 1]));
        }
        let empty = Event {
            key: String::new(),
            json: b"{}".to_vec(),
            is_fraud: true,
            timestamp_ms: 0,
        };
        assert_eq!(empty.labelled_json(), b"{\"is_fraud\":1}");
    }

    #[test]
    fn generator_writes_json_numbers_and_strings() {
        let mut out = Vec::new();
        push_fixed(&mut out, 12.345, 2);
        out.push(b' ');
        push_fixed(&mut out, 0.004, 2);
        out.push(b' ');
        push_fixed(&mut out, 7.0, 0);
        out.push(b' ');
        push_fixed(&mut out, f64::NAN, 1);
        out.push(b' ');
        push_fixed(&mut out, -1.05, 1);
        out.push(b' ');
        push_i64(&mut out, i64::MIN);
        out.push(b' ');
        push_str(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "12.35 0.00 7 0.0 -1.1 -9223372036854775808 \"a\\\"b\\\\c\\n\\u0001é\""
        );
    }
}

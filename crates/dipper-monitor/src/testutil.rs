//! Test-only helpers: a small checker of the Prometheus text format used by
//! the exposition and HTTP tests.

use std::collections::{HashMap, HashSet};

type Labels = Vec<(String, String)>;

/// One parsed sample line.
#[derive(Debug)]
pub(crate) struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `{k="v",...}` starting after `{`; returns the labels and the
/// rest of the line after `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without =")?;
        let name = &s[..eq];
        if !valid_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("raw newline in label value".into()),
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        s = &s[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

/// A small checker of the 0.0.4 text format: every line is a HELP,
/// TYPE or `name{labels} value` sample; every sample belongs to a family
/// declared before it with both HELP and TYPE; no family is declared
/// twice; histogram buckets are cumulative and `+Inf` equals `_count`.
pub(crate) fn check_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut helps = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    if !text.ends_with('\n') {
        return Err("no trailing newline".into());
    }
    for line in text.lines() {
        let ctx = |e: String| format!("{e} in line {line:?}");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !valid_name(name) || !helps.insert(name.to_owned()) {
                return Err(ctx("bad or duplicate HELP".into()));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| ctx("bad TYPE".into()))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
                || types.insert(name.to_owned(), kind.to_owned()).is_some()
            {
                return Err(ctx("bad or duplicate TYPE".into()));
            }
        } else if line.starts_with('#') || line.is_empty() {
            return Err(ctx("unexpected comment or blank line".into()));
        } else {
            let name_end = line
                .find(['{', ' '])
                .ok_or_else(|| ctx("no value".into()))?;
            let name = &line[..name_end];
            let (labels, rest) = match line[name_end..].strip_prefix('{') {
                Some(after) => parse_labels(after).map_err(ctx)?,
                None => (Vec::new(), &line[name_end..]),
            };
            let value = rest
                .strip_prefix(' ')
                .ok_or_else(|| ctx("no space before value".into()))?;
            let value = parse_value(value).map_err(ctx)?;
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|f| types.get(*f).is_some_and(|t| t == "histogram"))
                .unwrap_or(name);
            if !valid_name(name) || !types.contains_key(family) || !helps.contains(family) {
                return Err(ctx(format!("sample of undeclared family {family}")));
            }
            let mut seen = HashSet::new();
            if !labels.iter().all(|(k, _)| seen.insert(k.clone())) {
                return Err(ctx("duplicate label".into()));
            }
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
    }
    check_histograms(&samples, &types)?;
    Ok(samples)
}

fn check_histograms(samples: &[Sample], types: &HashMap<String, String>) -> Result<(), String> {
    type Key = (String, Labels);
    let mut buckets: HashMap<Key, Vec<(f64, f64)>> = HashMap::new();
    let mut counts: HashMap<Key, f64> = HashMap::new();
    for s in samples {
        let others: Vec<_> = s
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .cloned()
            .collect();
        if let Some(f) = s.name.strip_suffix("_bucket") {
            if types.get(f).is_some_and(|t| t == "histogram") {
                let le = parse_value(s.label("le").ok_or("bucket without le")?)?;
                buckets
                    .entry((f.to_owned(), others))
                    .or_default()
                    .push((le, s.value));
            }
        } else if let Some(f) = s.name.strip_suffix("_count") {
            if types.get(f).is_some_and(|t| t == "histogram") {
                counts.insert((f.to_owned(), others), s.value);
            }
        }
    }
    for (key, bs) in &buckets {
        if !bs.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1) {
            return Err(format!("{key:?}: buckets not ascending/cumulative"));
        }
        let last = bs.last().ok_or("no buckets")?;
        if last.0 != f64::INFINITY || Some(&last.1) != counts.get(key) {
            return Err(format!("{key:?}: +Inf bucket missing or != _count"));
        }
    }
    if buckets.len() != counts.len() {
        return Err("histogram _count without buckets".into());
    }
    Ok(())
}

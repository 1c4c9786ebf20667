//! Writing the Prometheus text exposition format 0.0.4: `# HELP` / `# TYPE`
//! headers, sample lines, label-value escaping and value formatting.
//!
//! These helpers only append to a `String`; they are public so other crates
//! can expose their own series next to the pipeline metrics.

use std::fmt::Write as _;

use crate::metric::HistogramSnapshot;

/// The `Content-Type` of the text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic count; names end in `_total`.
    Counter,
    /// Value that can go up and down.
    Gauge,
    /// `_bucket{le=...}`, `_sum` and `_count` series.
    Histogram,
}

impl MetricType {
    /// The keyword used on the `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// Appends `# HELP name help` (help escaped) and `# TYPE name type`.
pub fn write_header(out: &mut String, name: &str, help: &str, kind: MetricType) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind.as_str());
    out.push('\n');
}

/// Appends `value` with backslash, double quote and newline escaped, as a
/// label value must be inside its quotes.
pub fn push_escaped_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `name="value"` with the value escaped, ready to go between braces.
pub fn label_pair(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 3);
    out.push_str(name);
    out.push_str("=\"");
    push_escaped_label_value(&mut out, value);
    out.push('"');
    out
}

/// Appends a sample value: integers without a fraction, `+Inf`, `-Inf` and
/// `NaN` spelled as the format wants.
pub fn push_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Appends one sample line `name{labels,extra} value`. `labels` is a
/// pre-rendered, already escaped `k="v",...` list (may be empty); `extra`
/// pairs are escaped here.
pub fn write_sample(
    out: &mut String,
    name: &str,
    labels: &str,
    extra: &[(&str, &str)],
    value: f64,
) {
    out.push_str(name);
    if !labels.is_empty() || !extra.is_empty() {
        out.push('{');
        out.push_str(labels);
        let mut first = labels.is_empty();
        for (k, v) in extra {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            push_escaped_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_value(out, value);
    out.push('\n');
}

/// Appends the `_bucket` (coarse Prometheus bounds and `+Inf`), `_sum` and
/// `_count` lines of one histogram series, all from the same snapshot so
/// `+Inf` equals `_count`.
pub fn write_histogram(out: &mut String, name: &str, labels: &str, snap: &HistogramSnapshot) {
    let bucket = format!("{name}_bucket");
    let mut le = String::new();
    for (bound, cum) in snap.prometheus_buckets() {
        le.clear();
        push_value(&mut le, bound);
        write_sample(out, &bucket, labels, &[("le", &le)], cum as f64);
    }
    write_sample(out, &format!("{name}_sum"), labels, &[], snap.sum);
    write_sample(
        out,
        &format!("{name}_count"),
        labels,
        &[],
        snap.count() as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        assert_eq!(label_pair("p", "a\\b\"c\nd"), r#"p="a\\b\"c\nd""#);
        assert_eq!(label_pair("p", "plain é"), "p=\"plain é\"");
    }

    #[test]
    fn formats_values() {
        let mut s = String::new();
        for v in [
            1.0,
            0.25,
            1e-5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -3.0,
        ] {
            push_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "1 0.25 0.00001 +Inf -Inf NaN -3 ");
    }

    #[test]
    fn writes_samples_and_headers() {
        let mut s = String::new();
        write_header(&mut s, "x_total", "line\\one\ntwo", MetricType::Counter);
        write_sample(&mut s, "x_total", "", &[], 3.0);
        write_sample(&mut s, "x_total", "a=\"1\"", &[], 4.0);
        write_sample(&mut s, "x_total", "", &[("b", "q\"")], 5.0);
        write_sample(&mut s, "x_total", "a=\"1\"", &[("b", "2")], 6.0);
        assert_eq!(
            s,
            "# HELP x_total line\\\\one\\ntwo\n# TYPE x_total counter\n\
             x_total 3\nx_total{a=\"1\"} 4\nx_total{b=\"q\\\"\"} 5\nx_total{a=\"1\",b=\"2\"} 6\n"
        );
    }
}

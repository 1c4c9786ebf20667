//! A small XML writer for the PMML exporter: elements with escaped attributes and text, indented two spaces per
//! level, and the number format every exported value uses.
//!
//! Numbers are written so that they read back as exactly the same `f64`: Rust's shortest round-trip formatting,
//! in scientific notation (`1.5e-7`, valid `xs:double`) for very large or very small magnitudes so that no value
//! becomes hundreds of digits long. Non-finite numbers have no PMML spelling here and are refused by
//! [`num`]. Text that XML 1.0 cannot carry (control characters other than tab, newline and carriage return) is
//! refused too, so a written document is always well-formed.

use std::fmt::Write as _;

use super::ExportError;

/// Formats a finite `f64` so that parsing the text gives back the same bits.
pub fn num(v: f64, what: &str) -> Result<String, ExportError> {
    if !v.is_finite() {
        return Err(ExportError::NotFinite {
            what: what.to_string(),
            value: v,
        });
    }
    let a = v.abs();
    Ok(if a == 0.0 || (1e-5..1e16).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    })
}

/// Checks that `s` can be written as XML 1.0 character data.
pub fn check_text(s: &str, what: &str) -> Result<(), ExportError> {
    match s.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        Some(c) => Err(ExportError::Unsupported(format!(
            "{what} {s:?} contains the character U+{:04X}, which XML cannot hold",
            c as u32
        ))),
        None => Ok(()),
    }
}

/// Appends `s` escaped for a double-quoted attribute value (or text, which needs a subset of the same escapes).
/// Tabs and line breaks are written as character references so that attribute-value normalisation keeps them.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Builds one XML document in memory.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
    /// Names of the elements opened and not yet closed.
    open: Vec<&'static str>,
}

impl XmlWriter {
    /// A document with the XML declaration written.
    pub fn new() -> Self {
        XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            open: Vec::new(),
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }

    fn tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            let _ = write!(self.out, " {k}=\"");
            escape_into(&mut self.out, v);
            self.out.push('"');
        }
    }

    /// Opens `<name attrs...>`; close it with [`XmlWriter::end`].
    pub fn start(&mut self, name: &'static str, attrs: &[(&str, &str)]) {
        self.tag(name, attrs);
        self.out.push_str(">\n");
        self.open.push(name);
    }

    /// Writes `<name attrs.../>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.tag(name, attrs);
        self.out.push_str("/>\n");
    }

    /// Writes `<name attrs...>text</name>` (text escaped).
    pub fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.tag(name, attrs);
        self.out.push('>');
        escape_into(&mut self.out, text);
        let _ = writeln!(self.out, "</{name}>");
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) {
        if let Some(name) = self.open.pop() {
            self.indent();
            let _ = writeln!(self.out, "</{name}>");
        }
    }

    /// Closes every open element and returns the document.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_exactly() {
        for v in [
            0.0,
            -0.0,
            1.0,
            0.1,
            -2.5,
            1.0 / 3.0,
            1e-5,
            9.99999e-6,
            1e16,
            123456789.123,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -7.25e-300,
            std::f64::consts::PI,
        ] {
            let s = num(v, "v").unwrap();
            assert_eq!(
                s.parse::<f64>().unwrap().to_bits(),
                v.to_bits(),
                "{v} -> {s}"
            );
            assert!(s.len() < 26, "{s}");
        }
        assert_eq!(num(0.5, "v").unwrap(), "0.5");
        assert_eq!(num(1e300, "v").unwrap(), "1e300");
        assert_eq!(num(1.5e-7, "v").unwrap(), "1.5e-7");
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = num(bad, "the threshold").unwrap_err().to_string();
            assert!(e.contains("the threshold"), "{e}");
        }
    }

    #[test]
    fn escapes_and_nesting() {
        let mut w = XmlWriter::new();
        w.start("A", &[("name", "a&b<\"c'>\tx\ny")]);
        w.empty("B", &[]);
        w.text("C", &[], "1 < 2 & \"q\"");
        let doc = w.finish();
        assert!(doc.contains(r#"<A name="a&amp;b&lt;&quot;c'&gt;&#9;x&#10;y">"#));
        assert!(doc.contains("  <B/>\n"));
        assert!(doc.contains("  <C>1 &lt; 2 &amp; &quot;q&quot;</C>\n"));
        assert!(doc.ends_with("</A>\n"));
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        assert_eq!(
            parsed.root_element().attribute("name"),
            Some("a&b<\"c'>\tx\ny")
        );
        assert!(check_text("ok\ttab", "name").is_ok());
        assert!(check_text("bell\u{7}", "name").is_err());
    }
}

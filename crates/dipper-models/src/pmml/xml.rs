//! Safe XML reading for PMML: size, depth and element-count limits, no DTD (so no entity expansion), and element
//! helpers whose errors name the element and its line.
//!
//! PMML files come from other teams' tools and travel through registries and topics, so the parser must not be a
//! way to exhaust memory or stack: a document is refused before it is used if it is too large, nests too deeply or
//! has too many nodes. Namespaces are ignored (PMML 3.x and 4.x use different ones for the same elements), and
//! `Extension` elements, which carry vendor data, are skipped wherever they appear.

use roxmltree::{Document, Node, ParsingOptions};

use crate::ModelError;

/// Largest PMML document accepted.
pub(crate) const MAX_BYTES: usize = 512 << 20;
/// Deepest element nesting accepted (trees nest one element per level).
pub(crate) const MAX_DEPTH: usize = 1000;
/// Most XML nodes (elements, text, attributes' owners) accepted.
pub(crate) const MAX_NODES: u32 = 64 << 20;

const FORMAT: &str = "PMML";

/// A parsed document and the name it is reported under.
pub(crate) struct Xml<'input> {
    doc: Document<'input>,
    source: String,
}

impl<'input> Xml<'input> {
    /// Parses `text`, enforcing every limit.
    pub fn parse(text: &'input str, source: &str) -> Result<Self, ModelError> {
        if text.len() > MAX_BYTES {
            return Err(ModelError::parse(
                FORMAT,
                source,
                format!(
                    "document is {} bytes, over the {MAX_BYTES} limit",
                    text.len()
                ),
            ));
        }
        // The parser recurses per level, so nesting is checked on the raw text first.
        check_depth(text, source)?;
        let options = ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
        };
        let doc = Document::parse_with_options(text, options).map_err(|e| {
            let hint = match e {
                roxmltree::Error::DtdDetected => {
                    " (DTDs and entity declarations are refused: PMML never needs them)"
                }
                _ => "",
            };
            ModelError::parse(FORMAT, source, format!("not well-formed XML: {e}{hint}"))
        })?;
        Ok(Xml {
            doc,
            source: source.to_string(),
        })
    }

    /// The root element.
    pub fn root(&self) -> El<'_, 'input> {
        El {
            node: self.doc.root_element(),
            xml: self,
        }
    }
}

/// An element of a PMML document, with helpers that report errors at its line.
#[derive(Clone, Copy)]
pub(crate) struct El<'a, 'input> {
    node: Node<'a, 'input>,
    xml: &'a Xml<'input>,
}

impl std::fmt::Debug for El<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}> at line {}", self.tag(), self.line())
    }
}

impl<'a, 'input> El<'a, 'input> {
    /// The element's name without namespace.
    pub fn tag(&self) -> &'a str {
        self.node.tag_name().name()
    }

    pub fn line(&self) -> u32 {
        self.xml.doc.text_pos_at(self.node.range().start).row
    }

    /// `model.pmml line 42 <SimplePredicate>`: where errors about this element point.
    pub fn location(&self) -> String {
        format!("{} line {} <{}>", self.xml.source, self.line(), self.tag())
    }

    pub fn err(&self, message: impl Into<String>) -> ModelError {
        ModelError::parse(FORMAT, self.location(), message)
    }

    pub fn unsupported(&self, message: impl Into<String>) -> ModelError {
        ModelError::unsupported(FORMAT, self.location(), message)
    }

    pub fn attr(&self, name: &str) -> Option<&'a str> {
        self.node.attribute(name)
    }

    /// A required attribute.
    pub fn req(&self, name: &str) -> Result<&'a str, ModelError> {
        self.attr(name)
            .ok_or_else(|| self.err(format!("attribute '{name}' is required")))
    }

    /// An optional number attribute.
    pub fn num(&self, name: &str) -> Result<Option<f64>, ModelError> {
        match self.attr(name) {
            None => Ok(None),
            Some(s) => parse_f64(s)
                .map(Some)
                .ok_or_else(|| self.err(format!("attribute {name}=\"{s}\" is not a number"))),
        }
    }

    /// A number attribute with a default.
    pub fn num_or(&self, name: &str, default: f64) -> Result<f64, ModelError> {
        Ok(self.num(name)?.unwrap_or(default))
    }

    /// A required number attribute.
    pub fn req_num(&self, name: &str) -> Result<f64, ModelError> {
        self.num(name)?
            .ok_or_else(|| self.err(format!("attribute '{name}' is required")))
    }

    /// An optional non-negative integer attribute.
    pub fn uint(&self, name: &str) -> Result<Option<usize>, ModelError> {
        match self.attr(name) {
            None => Ok(None),
            Some(s) => s.trim().parse::<usize>().map(Some).map_err(|_| {
                self.err(format!(
                    "attribute {name}=\"{s}\" is not a non-negative integer"
                ))
            }),
        }
    }

    /// An optional boolean attribute (`true`/`false`/`1`/`0`).
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, ModelError> {
        match self.attr(name) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(s) => Err(self.err(format!("attribute {name}=\"{s}\" is not true or false"))),
        }
    }

    /// An enumerated attribute: `allowed` lists every value the standard defines; `default` is used when absent.
    pub fn choice(
        &self,
        name: &str,
        allowed: &[&'static str],
        default: &'a str,
    ) -> Result<&'a str, ModelError> {
        match self.attr(name) {
            None => Ok(default),
            Some(s) if allowed.contains(&s) => Ok(s),
            Some(s) => Err(self.err(format!(
                "attribute {name}=\"{s}\" is not one of {}",
                allowed.join(", ")
            ))),
        }
    }

    /// Child elements, skipping `Extension`s.
    pub fn children(&self) -> impl Iterator<Item = El<'a, 'input>> + 'a {
        let xml = self.xml;
        self.node
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() != "Extension")
            .map(move |node| El { node, xml })
    }

    /// Child elements named `tag`.
    pub fn children_named(&self, tag: &'a str) -> impl Iterator<Item = El<'a, 'input>> + 'a {
        self.children().filter(move |c| c.tag() == tag)
    }

    /// Every element below this one, in document order.
    pub fn descendants(&self) -> impl Iterator<Item = El<'a, 'input>> + 'a {
        let xml = self.xml;
        self.node
            .descendants()
            .filter(|n| n.is_element())
            .map(move |node| El { node, xml })
    }

    /// The first child named `tag`.
    pub fn child(&self, tag: &str) -> Option<El<'a, 'input>> {
        self.children().find(|c| c.tag() == tag)
    }

    /// The first child named `tag`, which must be there.
    pub fn req_child(&self, tag: &str) -> Result<El<'a, 'input>, ModelError> {
        self.child(tag)
            .ok_or_else(|| self.err(format!("a <{tag}> child is required")))
    }

    /// The element's text content (first text node), trimmed.
    pub fn text(&self) -> &'a str {
        self.node.text().map(str::trim).unwrap_or("")
    }
}

/// Refuses a document whose elements nest deeper than [`MAX_DEPTH`], scanning the text without parsing it
/// (comments, CDATA and processing instructions are skipped; a DTD is refused here already).
fn check_depth(text: &str, source: &str) -> Result<(), ModelError> {
    let b = text.as_bytes();
    let (mut i, mut depth, mut line) = (0usize, 0usize, 1usize);
    let find = |from: usize, pat: &[u8]| -> Option<usize> {
        b[from..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| from + p)
    };
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'<' => {
                let rest = &b[i + 1..];
                let end = if rest.starts_with(b"!--") {
                    find(i, b"-->").map(|e| e + 3)
                } else if rest.starts_with(b"![CDATA[") {
                    find(i, b"]]>").map(|e| e + 3)
                } else if rest.starts_with(b"?") {
                    find(i, b"?>").map(|e| e + 2)
                } else if rest.starts_with(b"!") {
                    return Err(ModelError::parse(
                        FORMAT,
                        format!("{source} line {line}"),
                        "DTDs and entity declarations are refused: PMML never needs them",
                    ));
                } else if rest.starts_with(b"/") {
                    depth = depth.saturating_sub(1);
                    find(i, b">").map(|e| e + 1)
                } else {
                    // A start tag: find its end outside quoted attribute values.
                    let mut j = i + 1;
                    let mut quote = 0u8;
                    while j < b.len() && (quote != 0 || b[j] != b'>') {
                        if quote == 0 && (b[j] == b'"' || b[j] == b'\'') {
                            quote = b[j];
                        } else if b[j] == quote {
                            quote = 0;
                        }
                        j += 1;
                    }
                    if j < b.len() && b[j - 1] != b'/' {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(ModelError::parse(
                                FORMAT,
                                format!("{source} line {line}"),
                                format!("elements nest more than {MAX_DEPTH} levels deep"),
                            ));
                        }
                    }
                    Some(j + 1)
                };
                // Unterminated constructs are left for the parser to report.
                let end = end.unwrap_or(b.len()).min(b.len());
                line += b[i..end].iter().filter(|&&c| c == b'\n').count();
                i = end;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parses a PMML number (`xs:double`: also `INF`, `-INF`, `NaN`).
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    let t = s.trim();
    match t {
        "INF" | "Infinity" => Some(f64::INFINITY),
        "-INF" | "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => t.parse::<f64>().ok(),
    }
}

/// Splits the content of a PMML `Array`: whitespace-separated tokens, where a token may be a double-quoted
/// string with `\"` escapes.
pub(crate) fn array_tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else {
            return Ok(out);
        };
        let mut token = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("an Array string has no closing quote".into()),
                    Some('\\') => match chars.next() {
                        Some(e) => token.push(e),
                        None => return Err("an Array string ends in a backslash".into()),
                    },
                    Some('"') => break,
                    Some(c) => token.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                token.push(c);
                chars.next();
            }
        }
        out.push(token);
    }
}

/// Reads an `Array` (or `NUM-ARRAY`/`REAL-ARRAY`/`INT-ARRAY`) element's tokens, checking its `n` if given.
pub(crate) fn array(el: &El) -> Result<Vec<String>, ModelError> {
    let tokens = array_tokens(el.text()).map_err(|m| el.err(m))?;
    if let Some(n) = el.uint("n")? {
        if n != tokens.len() {
            return Err(el.err(format!(
                "n=\"{n}\" but the array holds {} values",
                tokens.len()
            )));
        }
    }
    Ok(tokens)
}

/// Reads a numeric `Array` element.
pub(crate) fn num_array(el: &El) -> Result<Vec<f64>, ModelError> {
    array(el)?
        .iter()
        .map(|t| parse_f64(t).ok_or_else(|| el.err(format!("array value \"{t}\" is not a number"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dtd_and_entity_expansion() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><PMML>&lol2;</PMML>"#;
        let e = Xml::parse(bomb, "bomb.pmml").err().unwrap().to_string();
        assert!(e.contains("bomb.pmml") && e.contains("DTD"), "{e}");
    }

    #[test]
    fn refuses_deep_nesting_naming_the_line() {
        let mut doc = String::from("<PMML>\n");
        for _ in 0..MAX_DEPTH + 5 {
            doc.push_str("<Node>");
        }
        for _ in 0..MAX_DEPTH + 5 {
            doc.push_str("</Node>");
        }
        doc.push_str("</PMML>");
        let e = Xml::parse(&doc, "deep.pmml").err().unwrap().to_string();
        assert!(e.contains("deep.pmml line 2") && e.contains("nest"), "{e}");
    }

    #[test]
    fn errors_name_element_and_line() {
        let xml = Xml::parse(
            "<PMML>\n\n  <DataField name=\"x\" n=\"abc\"/></PMML>",
            "m.pmml",
        )
        .unwrap();
        let field = xml.root().child("DataField").unwrap();
        let e = field.num("n").unwrap_err().to_string();
        assert_eq!(
            e,
            "m.pmml line 3 <DataField>: invalid PMML model: attribute n=\"abc\" is not a number"
        );
        assert!(field
            .req("optype")
            .unwrap_err()
            .to_string()
            .contains("'optype' is required"));
    }

    #[test]
    fn array_tokens_handle_quotes() {
        assert_eq!(
            array_tokens(r#" a "b c" "d\"e"  f "#).unwrap(),
            ["a", "b c", "d\"e", "f"]
        );
        assert!(array_tokens(r#""open"#).is_err());
    }
}

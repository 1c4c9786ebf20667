//! Reading LightGBM's text model format line by line: `key=value` lines, numeric arrays, and errors that name the
//! file and line.

use std::str::FromStr;

use crate::{LoadContext, ModelError};

pub(super) const FORMAT: &str = "lightgbm";

/// One line of the file (without its line ending) and its 1-based number.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line<'a> {
    pub text: &'a str,
    pub number: usize,
}

/// Splits the file into lines, accepting `\n` and `\r\n` endings.
pub(super) fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.split('\n').enumerate().map(|(i, l)| Line {
        text: l.strip_suffix('\r').unwrap_or(l),
        number: i + 1,
    })
}

/// Makes errors that name places in one file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Errors<'a> {
    pub ctx: &'a LoadContext,
}

impl Errors<'_> {
    pub fn at(&self, line: usize) -> String {
        format!("{} line {line}", self.ctx.source)
    }

    pub fn parse(&self, line: usize, message: impl Into<String>) -> ModelError {
        ModelError::parse(FORMAT, self.at(line), message)
    }

    pub fn unsupported(&self, line: usize, message: impl Into<String>) -> ModelError {
        ModelError::unsupported(FORMAT, self.at(line), message)
    }

    /// An error about the file as a whole (e.g. a key that is absent).
    pub fn whole(&self, message: impl Into<String>) -> ModelError {
        ModelError::parse(FORMAT, &self.ctx.source, message)
    }
}

/// A `key=value` field as it appears in the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub line: usize,
}

impl<'a> Field<'a> {
    /// Splits `key=value`; a line without `=` is a bare key with an empty value (e.g. `average_output`).
    pub fn split(line: Line<'a>) -> Self {
        let (key, value) = line.text.split_once('=').unwrap_or((line.text, ""));
        Field {
            key,
            value,
            line: line.number,
        }
    }

    /// Parses the value as one number.
    pub fn scalar<T: FromStr>(&self, err: Errors<'_>) -> Result<T, ModelError> {
        parse_token(self.value.trim(), self.key, 0, self.line, err)
    }

    /// Parses the value as space-separated numbers; `expected` checks the count.
    pub fn array<T: FromStr>(
        &self,
        expected: Option<usize>,
        err: Errors<'_>,
    ) -> Result<Vec<T>, ModelError> {
        // The capacity is bounded by the text, whatever count the file claims.
        let mut out = Vec::with_capacity(expected.unwrap_or(0).min(self.value.len() / 2 + 1));
        for (i, token) in self.value.split(' ').filter(|t| !t.is_empty()).enumerate() {
            out.push(parse_token(token, self.key, i, self.line, err)?);
        }
        if let Some(n) = expected {
            if out.len() != n {
                return Err(err.parse(
                    self.line,
                    format!("{} has {} values, expected {n}", self.key, out.len()),
                ));
            }
        }
        Ok(out)
    }
}

fn parse_token<T: FromStr>(
    token: &str,
    key: &str,
    index: usize,
    line: usize,
    err: Errors<'_>,
) -> Result<T, ModelError> {
    token.parse().map_err(|_| {
        let shown: String = token.chars().take(40).collect();
        err.parse(
            line,
            format!(
                "{key}[{index}]: cannot read {shown:?} as a {}",
                kind_name::<T>()
            ),
        )
    })
}

fn kind_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    if name.starts_with('f') {
        "number"
    } else if name.starts_with('u') {
        "non-negative integer"
    } else {
        "integer"
    }
}

//! Reading JSON lines with a bound on line length, so one enormous line cannot exhaust memory: an over-long line
//! is consumed and reported, not stored.

use std::io::{self, BufRead};

/// What one line read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line is in the buffer (without its `\n` or `\r\n`).
    Line,
    /// The line was longer than the limit; its length in bytes (it was skipped).
    TooLong(usize),
    /// End of input.
    Eof,
}

pub struct LineReader<R> {
    inner: R,
    max_len: usize,
    line_no: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        LineReader {
            inner,
            max_len,
            line_no: 0,
        }
    }

    /// 1-based number of the line last read.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Reads the next line into `buf` (cleared first).
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<LineRead> {
        buf.clear();
        let mut len = 0usize;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            len += part.len();
            if len <= self.max_len {
                buf.extend_from_slice(part);
            }
            let consumed = done.unwrap_or(chunk.len());
            self.inner.consume(consumed);
            if done.is_some() {
                break;
            }
        }
        if !any {
            return Ok(LineRead::Eof);
        }
        self.line_no += 1;
        if len > self.max_len {
            buf.clear();
            return Ok(LineRead::TooLong(len));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(LineRead::Line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_crlf_and_final_line_without_newline() {
        let data = b"a\r\nbb\n\nlast";
        let mut r = LineReader::new(io::BufReader::with_capacity(2, &data[..]), 100);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while r.next_line(&mut buf).unwrap() == LineRead::Line {
            got.push((r.line_no(), String::from_utf8(buf.clone()).unwrap()));
        }
        assert_eq!(
            got,
            [
                (1, "a".into()),
                (2, "bb".into()),
                (3, "".into()),
                (4, "last".into())
            ]
        );
    }

    #[test]
    fn over_long_lines_are_skipped_not_stored() {
        let data = b"0123456789\nok\n";
        let mut r = LineReader::new(io::BufReader::with_capacity(3, &data[..]), 5);
        let mut buf = Vec::new();
        assert_eq!(r.next_line(&mut buf).unwrap(), LineRead::TooLong(10));
        assert!(buf.is_empty());
        assert_eq!(r.next_line(&mut buf).unwrap(), LineRead::Line);
        assert_eq!((r.line_no(), &buf[..]), (2, &b"ok"[..]));
        assert_eq!(r.next_line(&mut buf).unwrap(), LineRead::Eof);
    }
}

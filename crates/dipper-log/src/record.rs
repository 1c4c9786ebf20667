//! Records as produced ([`Record`]) and as stored/read back ([`StoredRecord`]),
//! and their encoding inside segment frames:
//! `offset u64 | timestamp i64 | key | value | header count u32 | (name, value)*`.

use crate::codec::{self, DecodeResult, Reader};

/// A record to append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl Record {
    /// A record with a value only.
    pub fn value(value: impl Into<Vec<u8>>, timestamp: i64) -> Self {
        Record {
            value: Some(value.into()),
            timestamp,
            ..Record::default()
        }
    }
    /// A record with a key and a value.
    pub fn keyed(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, timestamp: i64) -> Self {
        Record {
            key: Some(key.into()),
            value: Some(value.into()),
            timestamp,
            ..Record::default()
        }
    }
}

/// A record read back from the log, with its offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl StoredRecord {
    /// The record without its offset.
    pub fn to_record(&self) -> Record {
        Record {
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
            timestamp: self.timestamp,
        }
    }
}

/// A record to append, borrowed: what [`crate::WriteBatch::append`] and
/// [`crate::Txn::append_ref`] copy straight into the segment encoding. Its
/// headers are passed alongside as `(name, value)` pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl Record {
    /// The record borrowed (without its headers; see [`Record::header_refs`]).
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            timestamp: self.timestamp,
        }
    }
    /// The headers borrowed, as [`crate::WriteBatch::append`] takes them.
    pub fn header_refs(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// Bytes of a frame before the record's timestamp: length, CRC, offset.
pub(crate) const FRAME_PREFIX: usize = codec::FRAME_HEADER + 8;

/// Appends the frame of `r` to `out` with its offset and CRC left zero (see
/// [`seal`]). Refuses, leaving `out` as it was, a record whose key, value and
/// headers (counting 8 bytes per header) exceed `max` bytes.
pub(crate) fn encode<'h>(
    out: &mut Vec<u8>,
    r: RecordRef<'_>,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    max: usize,
) -> Result<(), usize> {
    let mut size = r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len);
    if size > max {
        return Err(size);
    }
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_PREFIX]);
    codec::put_u64(out, r.timestamp as u64);
    codec::put_opt_bytes(out, r.key);
    codec::put_opt_bytes(out, r.value);
    let count_at = out.len();
    codec::put_u32(out, 0);
    let mut count = 0u32;
    for (k, v) in headers {
        size += k.len() + v.len() + 8;
        if size > max {
            out.truncate(start);
            return Err(size);
        }
        codec::put_bytes(out, k.as_bytes());
        codec::put_bytes(out, v);
        count += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Gives the frames in `frames` (as written by [`encode`]) the offsets
/// `base..` and their CRCs. Returns how many frames there were.
pub(crate) fn seal(frames: &mut [u8], base: u64) -> u64 {
    let mut pos = 0;
    let mut offset = base;
    while pos < frames.len() {
        let len = u32::from_le_bytes(frames[pos..pos + 4].try_into().unwrap()) as usize;
        let frame = &mut frames[pos..pos + 4 + len];
        frame[codec::FRAME_HEADER..FRAME_PREFIX].copy_from_slice(&offset.to_le_bytes());
        let crc = crc32fast::hash(&frame[codec::FRAME_HEADER..]);
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        pos += 4 + len;
        offset += 1;
    }
    offset - base
}

/// A committed record as [`crate::Log::read_with`] hands it out: borrowed from
/// the log's read buffer, already CRC- and structure-checked.
#[derive(Clone, Copy, Debug)]
pub struct RecordView<'a> {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The encoded headers, checked by [`parse`].
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The headers as `(name, value)` pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let mut r = Reader::new(self.headers);
        let n = r.u32().unwrap_or(0);
        (0..n).map_while(move |_| {
            let k = std::str::from_utf8(r.bytes().ok()?).ok()?;
            Some((k, r.bytes().ok()?))
        })
    }

    /// An owned copy.
    pub fn to_stored(&self) -> StoredRecord {
        StoredRecord {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        }
    }
}

/// Checks a record frame body's structure and returns it borrowed.
pub(crate) fn parse(body: &[u8]) -> DecodeResult<RecordView<'_>> {
    let mut r = Reader::new(body);
    let offset = r.u64()?;
    let timestamp = r.u64()? as i64;
    let key = r.opt_bytes()?;
    let value = r.opt_bytes()?;
    let headers = r.rest();
    for _ in 0..r.u32()? {
        std::str::from_utf8(r.bytes()?).map_err(|_| "string is not UTF-8")?;
        r.bytes()?;
    }
    r.finish()?;
    Ok(RecordView {
        offset,
        timestamp,
        key,
        value,
        headers,
    })
}

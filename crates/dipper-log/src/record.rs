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

/// Appends the framed encoding of `r` at `offset` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, scratch: &mut Vec<u8>, offset: u64, r: &Record) {
    scratch.clear();
    codec::put_u64(scratch, offset);
    codec::put_u64(scratch, r.timestamp as u64);
    codec::put_opt_bytes(scratch, r.key.as_deref());
    codec::put_opt_bytes(scratch, r.value.as_deref());
    codec::put_u32(scratch, r.headers.len() as u32);
    for (k, v) in &r.headers {
        codec::put_bytes(scratch, k.as_bytes());
        codec::put_bytes(scratch, v);
    }
    codec::put_frame(out, scratch);
}

/// Decodes a record frame body.
pub(crate) fn decode(body: &[u8]) -> DecodeResult<StoredRecord> {
    let mut r = Reader::new(body);
    let offset = r.u64()?;
    let timestamp = r.u64()? as i64;
    let key = r.opt_bytes()?.map(<[u8]>::to_vec);
    let value = r.opt_bytes()?.map(<[u8]>::to_vec);
    let n = r.u32()? as usize;
    let mut headers = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let k = r.string()?;
        let v = r.bytes()?.to_vec();
        headers.push((k, v));
    }
    r.finish()?;
    Ok(StoredRecord {
        offset,
        timestamp,
        key,
        value,
        headers,
    })
}

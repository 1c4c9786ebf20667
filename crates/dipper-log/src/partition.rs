//! One partition on disk: a directory of segment files named by the 20-digit
//! base offset of their first record, each a sequence of CRC-framed records.
//! Holds a sparse in-memory offset→byte index per segment (built on open),
//! reads by offset, and writes a transaction's batch past the committed end
//! (invisible until the journal entry naming the new end is durable).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::codec::{get_frame, Frame, FRAME_HEADER};
use crate::error::{corrupt, io_err, LogError};
use crate::journal::{sync_dir, End};
use crate::record::{self, Record, StoredRecord};

/// Largest frame accepted when reading (guards allocations on corrupt lengths).
const MAX_FRAME: u64 = 1 << 30;

#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub base: u64,
    pub path: PathBuf,
    /// Committed byte length.
    pub len: u64,
    /// Sparse index: (offset, byte position), first entry is the first record.
    pub index: Vec<(u64, u64)>,
}

pub(crate) struct Partition {
    dir: PathBuf,
    segments: Vec<Segment>,
    next_offset: u64,
}

pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// Sizes that shape files; copied from `Options`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub segment_bytes: u64,
    pub index_interval: u64,
}

/// Reads the frame at `pos` (which must be below `limit`) from `r`.
fn read_frame(
    r: &mut impl Read,
    path: &Path,
    pos: u64,
    limit: u64,
    buf: &mut Vec<u8>,
) -> Result<StoredRecord, LogError> {
    if limit - pos < FRAME_HEADER as u64 {
        return Err(corrupt(path, pos, "truncated record header"));
    }
    let mut head = [0u8; 4];
    r.read_exact(&mut head).map_err(io_err(path))?;
    let len = u32::from_le_bytes(head) as u64;
    if len < 4 || len > limit - pos - 4 || len > MAX_FRAME {
        return Err(corrupt(path, pos, format!("bad record length {len}")));
    }
    buf.clear();
    buf.extend_from_slice(&head);
    buf.resize(4 + len as usize, 0);
    r.read_exact(&mut buf[4..]).map_err(io_err(path))?;
    match get_frame(buf) {
        Frame::Ok { body, .. } => record::decode(body).map_err(|e| corrupt(path, pos, e)),
        Frame::Bad(e) => Err(corrupt(path, pos, e)),
    }
}

impl Partition {
    /// Opens a partition directory at committed end `end`: deletes segments
    /// past it, truncates the active segment to the committed byte length,
    /// then scans every segment (checking CRCs and dense offsets) to build
    /// the sparse index.
    pub(crate) fn recover(dir: &Path, end: End, layout: Layout) -> Result<Partition, LogError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(".seg") else {
                continue;
            };
            if stem.len() != 20 {
                continue;
            }
            let Ok(base) = stem.parse::<u64>() else {
                continue;
            };
            bases.push(base);
        }
        bases.sort_unstable();
        let mut changed = false;
        for &b in bases.iter().filter(|&&b| b > end.seg_base) {
            let p = dir.join(segment_name(b));
            std::fs::remove_file(&p).map_err(io_err(&p))?;
            changed = true;
        }
        bases.retain(|&b| b <= end.seg_base);
        let active = dir.join(segment_name(end.seg_base));
        if bases.last() != Some(&end.seg_base) {
            if end.seg_len != 0 {
                return Err(corrupt(&active, 0, "committed segment file is missing"));
            }
            File::create(&active).map_err(io_err(&active))?;
            bases.push(end.seg_base);
            changed = true;
        }
        let f = OpenOptions::new()
            .write(true)
            .open(&active)
            .map_err(io_err(&active))?;
        let flen = f.metadata().map_err(io_err(&active))?.len();
        if flen < end.seg_len {
            return Err(corrupt(
                &active,
                flen,
                format!(
                    "segment is shorter than its committed length {}",
                    end.seg_len
                ),
            ));
        }
        if flen > end.seg_len {
            f.set_len(end.seg_len).map_err(io_err(&active))?;
            f.sync_all().map_err(io_err(&active))?;
        }
        if changed {
            sync_dir(dir)?;
        }
        let mut segments = Vec::with_capacity(bases.len());
        let mut expected = bases.first().copied().unwrap_or(0);
        for (i, &base) in bases.iter().enumerate() {
            let path = dir.join(segment_name(base));
            if base != expected {
                return Err(corrupt(
                    &path,
                    0,
                    format!("segment base {base} does not follow previous end {expected}"),
                ));
            }
            let len = if i + 1 == bases.len() {
                end.seg_len
            } else {
                std::fs::metadata(&path).map_err(io_err(&path))?.len()
            };
            let mut seg = Segment {
                base,
                path,
                len,
                index: Vec::new(),
            };
            expected = scan(&mut seg, layout)?;
            segments.push(seg);
        }
        if expected != end.next_offset {
            return Err(corrupt(
                &active,
                end.seg_len,
                format!(
                    "segments end at offset {expected} but the journal says {}",
                    end.next_offset
                ),
            ));
        }
        Ok(Partition {
            dir: dir.to_path_buf(),
            segments,
            next_offset: end.next_offset,
        })
    }

    pub(crate) fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Reads up to `max` committed records starting at offset `from`.
    pub(crate) fn read(&self, from: u64, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::new();
        if from >= self.next_offset || max == 0 {
            return Ok(out);
        }
        let first = self.segments.partition_point(|s| s.base <= from).max(1) - 1;
        let mut buf = Vec::new();
        for seg in &self.segments[first..] {
            let i = seg.index.partition_point(|&(o, _)| o <= from).max(1) - 1;
            let mut pos = seg.index.get(i).map_or(0, |&(_, p)| p);
            let f = File::open(&seg.path).map_err(io_err(&seg.path))?;
            let mut r = BufReader::with_capacity(64 * 1024, f);
            r.seek(SeekFrom::Start(pos)).map_err(io_err(&seg.path))?;
            while pos < seg.len {
                let rec = read_frame(&mut r, &seg.path, pos, seg.len, &mut buf)?;
                pos += buf.len() as u64;
                if rec.offset >= self.next_offset {
                    return Ok(out);
                }
                if rec.offset >= from {
                    out.push(rec);
                    if out.len() >= max {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Writes `records` (offsets `next_offset..`) after the committed end,
    /// rolling segments as needed, and fsyncs. Returns the new committed end
    /// and the segments to install once the journal entry is durable.
    pub(crate) fn write(
        &self,
        records: &[Record],
        layout: Layout,
    ) -> Result<(End, Vec<Segment>), LogError> {
        let mut tail = vec![self
            .segments
            .last()
            .expect("a partition has a segment")
            .clone()];
        let mut offset = self.next_offset;
        let mut buf = Vec::new();
        let mut scratch = Vec::new();
        let mut created = false;
        let mut last_indexed = tail[0].index.last().map(|&(_, p)| p);
        let flush = |seg: &Segment, buf: &mut Vec<u8>, truncate: bool| -> Result<(), LogError> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(truncate)
                .open(&seg.path)
                .map_err(io_err(&seg.path))?;
            f.seek(SeekFrom::Start(seg.len - buf.len() as u64))
                .map_err(io_err(&seg.path))?;
            f.write_all(buf).map_err(io_err(&seg.path))?;
            f.sync_data().map_err(io_err(&seg.path))?;
            buf.clear();
            Ok(())
        };
        for r in records {
            let is_new = tail.len() > 1;
            let cur = tail.last_mut().unwrap();
            if cur.len >= layout.segment_bytes && cur.len > 0 {
                flush(cur, &mut buf, is_new)?;
                tail.push(Segment {
                    base: offset,
                    path: self.dir.join(segment_name(offset)),
                    len: 0,
                    index: Vec::new(),
                });
                created = true;
                last_indexed = None;
            }
            let cur = tail.last_mut().unwrap();
            if last_indexed.is_none_or(|p| cur.len - p >= layout.index_interval) {
                cur.index.push((offset, cur.len));
                last_indexed = Some(cur.len);
            }
            let before = buf.len();
            record::encode(&mut buf, &mut scratch, offset, r);
            cur.len += (buf.len() - before) as u64;
            offset += 1;
        }
        let is_new = tail.len() > 1;
        flush(tail.last().unwrap(), &mut buf, is_new)?;
        if created {
            sync_dir(&self.dir)?;
        }
        let last = tail.last().unwrap();
        let end = End {
            next_offset: offset,
            seg_base: last.base,
            seg_len: last.len,
        };
        Ok((end, tail))
    }

    /// Installs the result of [`Partition::write`] after the commit is durable.
    pub(crate) fn install(&mut self, end: End, tail: Vec<Segment>) {
        self.segments.pop();
        self.segments.extend(tail);
        self.next_offset = end.next_offset;
    }
}

/// Scans a segment up to its `len`, checking every frame, and fills its
/// sparse index. Returns the offset after its last record.
fn scan(seg: &mut Segment, layout: Layout) -> Result<u64, LogError> {
    let f = File::open(&seg.path).map_err(io_err(&seg.path))?;
    let mut r = BufReader::with_capacity(256 * 1024, f);
    let mut pos = 0u64;
    let mut expected = seg.base;
    let mut last_indexed: Option<u64> = None;
    let mut buf = Vec::new();
    seg.index.clear();
    while pos < seg.len {
        let rec = read_frame(&mut r, &seg.path, pos, seg.len, &mut buf)?;
        if rec.offset != expected {
            return Err(corrupt(
                &seg.path,
                pos,
                format!("record offset {} where {expected} was expected", rec.offset),
            ));
        }
        if last_indexed.is_none_or(|p| pos - p >= layout.index_interval) {
            seg.index.push((rec.offset, pos));
            last_indexed = Some(pos);
        }
        pos += buf.len() as u64;
        expected += 1;
    }
    Ok(expected)
}

//! One partition on disk: a directory of segment files named by the 20-digit
//! base offset of their first record, each a sequence of CRC-framed records.
//! Holds a sparse in-memory offset→byte index per segment (built on open),
//! reads by offset, and writes a transaction's batch past the committed end
//! (invisible until the journal entry naming the new end is durable).

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::codec::{get_frame, Frame, FRAME_HEADER};
use crate::error::{corrupt, io_err, LogError};
use crate::journal::{sync_dir, End};
use crate::record::{self, RecordView};

/// Largest frame accepted when reading (guards allocations on corrupt lengths).
const MAX_FRAME: u64 = 1 << 30;

/// Bytes read per `pread` when scanning or reading.
const CHUNK: u64 = 256 * 1024;

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
    /// The file last read from and its segment's base, kept open for the next read (a segment
    /// file keeps its identity once committed: it is only ever appended to).
    reader: Mutex<Option<(u64, Arc<File>)>>,
    /// The last segment written to and its base, kept open for the next commit.
    appender: Mutex<Option<(u64, File)>>,
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

thread_local! {
    /// The read buffer of the last [`Frames`] on this thread, kept for the next one so reads
    /// neither allocate nor zero a buffer each time.
    static READ_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Reads the CRC-checked frames of a byte range of a segment in large
/// positional reads into one reused buffer (no per-record read or copy).
struct Frames<'a> {
    file: &'a File,
    path: &'a Path,
    /// File position of `buf[start]`.
    pos: u64,
    limit: u64,
    buf: Vec<u8>,
    /// Bytes held at most (`buf` may be longer).
    window: usize,
    start: usize,
    end: usize,
}

impl<'a> Frames<'a> {
    /// Frames from byte `pos` up to `limit`; `hint` is how many bytes the
    /// caller expects to need (the first read's size).
    fn new(file: &'a File, path: &'a Path, pos: u64, limit: u64, hint: u64) -> Self {
        let window = hint.clamp(FRAME_HEADER as u64, CHUNK) as usize;
        Frames {
            file,
            path,
            pos,
            limit,
            buf: READ_BUF.take(),
            window,
            start: 0,
            end: 0,
        }
    }

    /// Makes at least `need` bytes from `pos` available in `buf[start..end]`.
    fn fill(&mut self, need: usize) -> Result<(), LogError> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        self.window = self.window.max(need);
        if self.buf.len() < self.window {
            self.buf.resize(self.window, 0);
        }
        let file_end = self.pos + self.end as u64;
        let room = (self.window - self.end) as u64;
        let n = room.min(self.limit - file_end) as usize;
        let dst = &mut self.buf[self.end..self.end + n];
        self.file
            .read_exact_at(dst, file_end)
            .map_err(io_err(self.path))?;
        self.end += n;
        Ok(())
    }

    /// The next frame's file position and body, or `None` at `limit`.
    fn next(&mut self) -> Result<Option<(u64, &[u8])>, LogError> {
        let pos = self.pos;
        if pos >= self.limit {
            return Ok(None);
        }
        if self.limit - pos < FRAME_HEADER as u64 {
            return Err(corrupt(self.path, pos, "truncated record header"));
        }
        if self.end - self.start < FRAME_HEADER {
            self.fill(FRAME_HEADER)?;
        }
        let head = &self.buf[self.start..self.start + 4];
        let len = u32::from_le_bytes(head.try_into().unwrap()) as u64;
        if len < 4 || len > self.limit - pos - 4 || len > MAX_FRAME {
            return Err(corrupt(self.path, pos, format!("bad record length {len}")));
        }
        let size = 4 + len as usize;
        if self.end - self.start < size {
            self.fill(size)?;
        }
        let frame = &self.buf[self.start..self.start + size];
        self.start += size;
        self.pos += size as u64;
        match get_frame(frame) {
            Frame::Ok { body, .. } => Ok(Some((pos, body))),
            Frame::Bad(e) => Err(corrupt(self.path, pos, e)),
        }
    }
}

impl Drop for Frames<'_> {
    fn drop(&mut self) {
        // One huge record does not pin its buffer to the thread.
        if self.buf.len() <= CHUNK as usize {
            READ_BUF.set(std::mem::take(&mut self.buf));
        }
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
            reader: Mutex::new(None),
            appender: Mutex::new(None),
        })
    }

    pub(crate) fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Passes up to `max` committed records from offset `from` on to `f`;
    /// returns how many.
    pub(crate) fn read_with(
        &self,
        from: u64,
        max: usize,
        mut f: impl FnMut(RecordView<'_>),
    ) -> Result<usize, LogError> {
        let mut n = 0;
        if from >= self.next_offset || max == 0 {
            return Ok(n);
        }
        let first = self.segments.partition_point(|s| s.base <= from).max(1) - 1;
        for seg in &self.segments[first..] {
            let i = seg.index.partition_point(|&(o, _)| o <= from).max(1) - 1;
            let pos = seg.index.get(i).map_or(0, |&(_, p)| p);
            // The first index entry at or past the last offset wanted bounds the bytes needed.
            let want = from.saturating_add((max - n) as u64);
            let j = seg.index.partition_point(|&(o, _)| o < want);
            let hint = seg
                .index
                .get(j)
                .map_or(seg.len, |&(_, p)| p)
                .saturating_sub(pos);
            let file = self.reader(seg)?;
            let mut frames = Frames::new(&file, &seg.path, pos, seg.len, hint);
            while let Some((at, body)) = frames.next()? {
                let offset = peek_offset(body).map_err(|e| corrupt(&seg.path, at, e))?;
                if offset >= self.next_offset {
                    return Ok(n);
                }
                if offset >= from {
                    f(record::parse(body).map_err(|e| corrupt(&seg.path, at, e))?);
                    n += 1;
                    if n >= max {
                        return Ok(n);
                    }
                }
            }
        }
        Ok(n)
    }

    /// A read handle on `seg`: the cached one when the last read was of the same segment.
    fn reader(&self, seg: &Segment) -> Result<Arc<File>, LogError> {
        let mut cached = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((base, file)) = &*cached {
            if *base == seg.base {
                return Ok(file.clone());
            }
        }
        let file = Arc::new(File::open(&seg.path).map_err(io_err(&seg.path))?);
        *cached = Some((seg.base, file.clone()));
        Ok(file)
    }

    /// Writes `frames` (sealed records with offsets `next_offset..`) after
    /// the committed end, rolling segments as needed, and fsyncs. Returns the
    /// new committed end and the segments to install once the journal entry
    /// is durable.
    pub(crate) fn write(
        &self,
        frames: &[u8],
        layout: Layout,
    ) -> Result<(End, Vec<Segment>), LogError> {
        let mut tail = vec![self
            .segments
            .last()
            .expect("a partition has a segment")
            .clone()];
        let mut offset = self.next_offset;
        let mut last_indexed = tail[0].index.last().map(|&(_, p)| p);
        // Per segment of `tail`: where its part of `frames` starts and ends.
        let mut ranges = vec![(0, 0)];
        let mut pos = 0;
        while pos < frames.len() {
            let size = 4 + u32::from_le_bytes(frames[pos..pos + 4].try_into().unwrap()) as usize;
            let cur = tail.last_mut().unwrap();
            if cur.len >= layout.segment_bytes && cur.len > 0 {
                tail.push(Segment {
                    base: offset,
                    path: self.dir.join(segment_name(offset)),
                    len: 0,
                    index: Vec::new(),
                });
                ranges.push((pos, pos));
                last_indexed = None;
            }
            let cur = tail.last_mut().unwrap();
            if last_indexed.is_none_or(|p| cur.len - p >= layout.index_interval) {
                cur.index.push((offset, cur.len));
                last_indexed = Some(cur.len);
            }
            cur.len += size as u64;
            pos += size;
            ranges.last_mut().unwrap().1 = pos;
            offset += 1;
        }
        let mut appender = self.appender.lock().unwrap_or_else(|e| e.into_inner());
        for (i, (seg, &(start, end))) in tail.iter().zip(&ranges).enumerate() {
            let bytes = &frames[start..end];
            if bytes.is_empty() && i == 0 {
                continue;
            }
            let reuse = i == 0 && matches!(&*appender, Some((base, _)) if *base == seg.base);
            if !reuse {
                // A new segment may exist from a commit that failed before its journal entry.
                let f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(i > 0)
                    .open(&seg.path)
                    .map_err(io_err(&seg.path))?;
                *appender = Some((seg.base, f));
            }
            let f = &appender.as_ref().expect("opened above").1;
            f.write_all_at(bytes, seg.len - bytes.len() as u64)
                .map_err(io_err(&seg.path))?;
            f.sync_data().map_err(io_err(&seg.path))?;
        }
        if tail.len() > 1 {
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

/// The offset a record frame body starts with.
fn peek_offset(body: &[u8]) -> Result<u64, &'static str> {
    match body.get(..8) {
        Some(b) => Ok(u64::from_le_bytes(b.try_into().unwrap())),
        None => Err("field extends past end of frame"),
    }
}

/// Scans a segment up to its `len`, checking every frame, and fills its
/// sparse index. Returns the offset after its last record.
fn scan(seg: &mut Segment, layout: Layout) -> Result<u64, LogError> {
    let f = File::open(&seg.path).map_err(io_err(&seg.path))?;
    let mut frames = Frames::new(&f, &seg.path, 0, seg.len, CHUNK);
    let mut expected = seg.base;
    let mut last_indexed: Option<u64> = None;
    let mut index = Vec::new();
    while let Some((pos, body)) = frames.next()? {
        let offset = record::parse(body)
            .map_err(|e| corrupt(&seg.path, pos, e))?
            .offset;
        if offset != expected {
            return Err(corrupt(
                &seg.path,
                pos,
                format!("record offset {offset} where {expected} was expected"),
            ));
        }
        if last_indexed.is_none_or(|p| pos - p >= layout.index_interval) {
            index.push((offset, pos));
            last_indexed = Some(pos);
        }
        expected += 1;
    }
    seg.index = index;
    Ok(expected)
}

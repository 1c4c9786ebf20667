//! The commit journal (`DIR/commits.journal`): the single source of truth for
//! what is visible. Each entry is one CRC frame holding topics created, the
//! new committed end of every partition a transaction touched, and the
//! consumer-group positions it set. Visible state is the fold of all valid
//! entries; a torn or damaged tail is truncated on open. Compaction rewrites
//! the journal as one snapshot entry (temp file, fsync, rename, fsync dir).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::codec::{self, get_frame, DecodeResult, Frame, Reader};
use crate::error::{corrupt, io_err, LogError};

const ENTRY_VERSION: u8 = 1;

/// Committed end of a partition: the next offset, and where the committed
/// bytes end (segment base offset and byte length of that segment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct End {
    pub next_offset: u64,
    pub seg_base: u64,
    pub seg_len: u64,
}

pub(crate) type PartKey = (String, u32);
pub(crate) type PosKey = (String, String, u32);

/// Everything the journal records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub topics: BTreeMap<String, u32>,
    pub ends: BTreeMap<PartKey, End>,
    pub positions: BTreeMap<PosKey, u64>,
}

/// One journal entry: a delta applied on top of the state before it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Entry {
    pub topics: Vec<(String, u32)>,
    pub ends: Vec<(PartKey, End)>,
    pub positions: Vec<(PosKey, u64)>,
}

impl State {
    pub(crate) fn apply(&mut self, e: &Entry) {
        for (t, n) in &e.topics {
            self.topics.insert(t.clone(), *n);
        }
        for (k, end) in &e.ends {
            self.ends.insert(k.clone(), *end);
        }
        for (k, off) in &e.positions {
            self.positions.insert(k.clone(), *off);
        }
    }
    fn snapshot(&self) -> Entry {
        Entry {
            topics: self.topics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            ends: self.ends.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            positions: self
                .positions
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }
}

impl Entry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.push(ENTRY_VERSION);
        codec::put_u32(&mut b, self.topics.len() as u32);
        for (t, n) in &self.topics {
            codec::put_bytes(&mut b, t.as_bytes());
            codec::put_u32(&mut b, *n);
        }
        codec::put_u32(&mut b, self.ends.len() as u32);
        for ((t, p), e) in &self.ends {
            codec::put_bytes(&mut b, t.as_bytes());
            codec::put_u32(&mut b, *p);
            codec::put_u64(&mut b, e.next_offset);
            codec::put_u64(&mut b, e.seg_base);
            codec::put_u64(&mut b, e.seg_len);
        }
        codec::put_u32(&mut b, self.positions.len() as u32);
        for ((g, t, p), off) in &self.positions {
            codec::put_bytes(&mut b, g.as_bytes());
            codec::put_bytes(&mut b, t.as_bytes());
            codec::put_u32(&mut b, *p);
            codec::put_u64(&mut b, *off);
        }
        let mut framed = Vec::with_capacity(b.len() + codec::FRAME_HEADER);
        codec::put_frame(&mut framed, &b);
        framed
    }

    fn decode(body: &[u8]) -> DecodeResult<Entry> {
        let mut r = Reader::new(body);
        if r.u8()? != ENTRY_VERSION {
            return Err("unknown journal entry version");
        }
        let mut e = Entry::default();
        for _ in 0..r.u32()? {
            let t = r.string()?;
            e.topics.push((t, r.u32()?));
        }
        for _ in 0..r.u32()? {
            let t = r.string()?;
            let p = r.u32()?;
            let end = End {
                next_offset: r.u64()?,
                seg_base: r.u64()?,
                seg_len: r.u64()?,
            };
            e.ends.push(((t, p), end));
        }
        for _ in 0..r.u32()? {
            let g = r.string()?;
            let t = r.string()?;
            let p = r.u32()?;
            e.positions.push(((g, t, p), r.u64()?));
        }
        r.finish()?;
        Ok(e)
    }
}

/// What recovery did to the journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalRecovery {
    /// Valid entries replayed.
    pub entries: u64,
    /// Bytes of torn or damaged tail removed (0 after a clean shutdown).
    pub truncated_bytes: u64,
    /// Why the tail was cut, if it was.
    pub truncation_reason: Option<String>,
}

pub(crate) struct Journal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    len: u64,
    /// Size of the snapshot the journal starts with (its first entry).
    base_len: u64,
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl Journal {
    pub(crate) const FILE: &'static str = "commits.journal";

    /// Opens (or creates) the journal, replays it and truncates a bad tail.
    pub(crate) fn open(dir: &Path) -> Result<(Journal, State, JournalRecovery), LogError> {
        let path = dir.join(Self::FILE);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        if !existed {
            sync_dir(dir)?;
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io_err(&path))?;
        let mut state = State::default();
        let mut rec = JournalRecovery::default();
        let mut pos = 0usize;
        let mut base_len = 0u64;
        while pos < data.len() {
            let reason = match get_frame(&data[pos..]) {
                Frame::Ok { body, size } => match Entry::decode(body) {
                    Ok(e) => {
                        state.apply(&e);
                        rec.entries += 1;
                        if pos == 0 {
                            base_len = size as u64;
                        }
                        pos += size;
                        continue;
                    }
                    Err(r) => r,
                },
                Frame::Bad(r) => r,
            };
            // A crash can only tear the entry being appended, i.e. the last
            // one. A valid entry after the bad one means damage in the
            // middle: refuse rather than silently drop committed entries.
            let valid_after = (pos + 1..data.len()).any(|p| {
                matches!(get_frame(&data[p..]), Frame::Ok { body, .. } if Entry::decode(body).is_ok())
            });
            if valid_after {
                return Err(corrupt(
                    &path,
                    pos as u64,
                    format!("{reason}, and valid entries follow (damage, not a torn write)"),
                ));
            }
            rec.truncated_bytes = (data.len() - pos) as u64;
            rec.truncation_reason = Some(format!("{reason} at byte {pos}"));
            file.set_len(pos as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            break;
        }
        file.seek(SeekFrom::Start(pos as u64))
            .map_err(io_err(&path))?;
        let journal = Journal {
            dir: dir.to_path_buf(),
            len: pos as u64,
            base_len,
            path,
            file,
        };
        Ok((journal, state, rec))
    }

    /// True once the journal holds more than `threshold` bytes and at least
    /// as many bytes of deltas as of its starting snapshot, so a large state
    /// is not rewritten on every commit.
    pub(crate) fn wants_compaction(&self, threshold: u64) -> bool {
        self.len > threshold && self.len - self.base_len >= self.base_len
    }

    /// Appends one entry and fsyncs; once this returns the entry is committed.
    pub(crate) fn append(&mut self, e: &Entry) -> Result<(), LogError> {
        let bytes = e.encode();
        // The file cursor always sits at `len` (we only ever append).
        self.file.write_all(&bytes).map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Replaces the journal with a single snapshot entry of `state`.
    pub(crate) fn compact(&mut self, state: &State) -> Result<(), LogError> {
        let tmp = self.dir.join("commits.journal.tmp");
        let bytes = state.snapshot().encode();
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&bytes).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        sync_dir(&self.dir)?;
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        file.flush().map_err(io_err(&self.path))?;
        self.file = file;
        self.len = bytes.len() as u64;
        self.base_len = self.len;
        Ok(())
    }
}

//! [`Registry`]: the registry's operations over a [`Store`], keeping the folded state current.

use std::time::Duration;

pub use crate::state::PublishRequest;
use crate::state::{self, RegistryState, StageChange, VersionEntry};
use crate::store::Store;
use crate::wire::{self, Stages, VersionMeta};
use crate::RegistryError;

/// Attempts of an operation that found another writer had appended first.
const ATTEMPTS: u32 = 5;

/// A verified artifact.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub meta: VersionMeta,
    pub bytes: Vec<u8>,
}

/// The registry over one store.
pub struct Registry<S: Store> {
    store: S,
    state: RegistryState,
    position: u64,
}

impl<S: Store> Registry<S> {
    /// Opens the registry and reads it whole.
    pub fn open(store: S) -> Result<Self, RegistryError> {
        let mut r = Registry {
            store,
            state: RegistryState::default(),
            position: 0,
        };
        r.refresh()?;
        Ok(r)
    }

    /// Names the store.
    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Reads what was appended since the last read; true if anything was.
    pub fn refresh(&mut self) -> Result<bool, RegistryError> {
        let (records, end) = self.store.read(self.position, None)?;
        for r in &records {
            self.state.apply(r);
        }
        let changed = end != self.position;
        self.position = end;
        Ok(changed)
    }

    /// The state as of the last read.
    pub fn state(&self) -> &RegistryState {
        &self.state
    }

    /// Publishes a new version (a candidate) and returns its metadata.
    pub fn publish(&mut self, req: &PublishRequest) -> Result<VersionMeta, RegistryError> {
        let publish_id = unique_id();
        let meta = self.write(|state| state::plan_publish(state, req, now_ms(), &publish_id))?;
        // On Kafka two publishers can still race for one number between the end check and the append:
        // the version record read back must be ours.
        let stored = self.state.version(&meta.name, meta.version)?;
        if stored.meta.publish_id != publish_id {
            return Err(RegistryError::Conflict(format!(
                "another publisher wrote version {} of {} at the same time; publish again",
                meta.version, meta.name
            )));
        }
        Ok(meta)
    }

    /// Changes a model's stages (promote, rollback, challenge, archive).
    pub fn change(&mut self, name: &str, change: StageChange) -> Result<Stages, RegistryError> {
        self.write(|state| {
            let (s, r) = state::plan_stage_change(state, name, now_ms(), change)?;
            Ok((s, vec![r]))
        })
    }

    /// Deletes a version that is not the champion.
    pub fn delete(&mut self, name: &str, version: u32) -> Result<Stages, RegistryError> {
        self.write(|state| state::plan_delete(state, name, version, now_ms()))
    }

    /// Plans against the current state and appends, again after re-reading if another writer came first.
    fn write<T>(
        &mut self,
        mut plan: impl FnMut(&RegistryState) -> Result<(T, Vec<wire::RawRecord>), RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut attempt = 1;
        loop {
            self.refresh()?;
            let (out, records) = plan(&self.state)?;
            match self.store.append(self.position, records) {
                Ok(_) => {
                    self.refresh()?;
                    return Ok(out);
                }
                Err(RegistryError::Store {
                    retriable: true, ..
                }) if attempt < ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads a version's artifact back and checks its length and SHA-256.
    pub fn fetch(&mut self, name: &str, version: u32) -> Result<Artifact, RegistryError> {
        let entry = self.state.version(name, version)?.clone();
        fetch_entry(&mut self.store, &entry)
    }
}

fn fetch_entry<S: Store>(store: &mut S, entry: &VersionEntry) -> Result<Artifact, RegistryError> {
    let meta = &entry.meta;
    let what = format!("model {} version {}", meta.name, meta.version);
    let missing: Vec<String> = (0..meta.chunks)
        .filter(|i| !entry.chunks.contains_key(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(RegistryError::Corrupt(format!(
            "{what}: artifact chunks {} of {} are missing from {}",
            missing.join(", "),
            meta.chunks,
            store.describe()
        )));
    }
    let (Some(&from), Some(&last)) = (entry.chunks.values().min(), entry.chunks.values().max())
    else {
        return Err(RegistryError::Corrupt(format!(
            "{what}: no artifact chunks"
        )));
    };
    let (records, _) = store.read(from, Some(last + 1))?;
    let mut bytes = Vec::with_capacity(meta.bytes as usize);
    for i in 0..meta.chunks {
        let offset = entry.chunks[&i];
        let r = records.iter().find(|r| r.offset == offset).ok_or_else(|| {
            RegistryError::Corrupt(format!(
                "{what}: chunk {i} (offset {offset}) is gone from {}",
                store.describe()
            ))
        })?;
        bytes.extend_from_slice(r.value.as_deref().unwrap_or_default());
    }
    let sha = wire::sha256_hex(&bytes);
    if bytes.len() as u64 != meta.bytes || sha != meta.sha256 {
        return Err(RegistryError::Corrupt(format!(
            "{what}: the artifact read back is {} bytes with SHA-256 {sha}, but was published as {} bytes \
             with SHA-256 {}",
            bytes.len(),
            meta.bytes,
            meta.sha256
        )));
    }
    Ok(Artifact {
        meta: meta.clone(),
        bytes,
    })
}

fn now_ms() -> i64 {
    crate::store::now_ms()
}

/// A random id: hashes of the time, the process and a per-process counter.
fn unique_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms());
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

//! The registry's state, folded from its records in log order, and the records each operation writes
//! (planned here as pure functions of the state, so they are tested without a store).

use std::collections::BTreeMap;

use crate::wire::{self, json_record, record, Key, RawRecord, Stage, Stages, VersionMeta};
use crate::RegistryError;

/// One model: its versions and stages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelState {
    pub stages: Stages,
    /// Live versions by number.
    pub versions: BTreeMap<u32, VersionEntry>,
}

/// A live version and where its artifact's chunks are.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionEntry {
    pub meta: VersionMeta,
    /// Offset of the version record.
    pub offset: u64,
    /// Offsets of the chunks seen, by index (the latest record per chunk key).
    pub chunks: BTreeMap<u32, u64>,
}

impl VersionEntry {
    /// Whether every chunk the metadata announces has been seen.
    pub fn complete(&self) -> bool {
        (0..self.meta.chunks).all(|i| self.chunks.contains_key(&i))
    }
}

/// A record the fold could not use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub offset: u64,
    pub reason: String,
}

/// Everything the registry topic says, up to some position.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistryState {
    pub models: BTreeMap<String, ModelState>,
    /// Chunks whose version record has not been seen (yet, or ever: a publish cut short).
    pending_chunks: BTreeMap<(String, u32), BTreeMap<u32, u64>>,
    /// Records that are not registry records or do not parse (the newest 100).
    pub skipped: Vec<Skipped>,
}

const MAX_SKIPPED: usize = 100;

impl RegistryState {
    /// Folds one record, in log order. Never fails: a record it cannot use is noted in [`Self::skipped`].
    pub fn apply(&mut self, r: &RawRecord) {
        if let Err(reason) = self.try_apply(r) {
            if self.skipped.len() == MAX_SKIPPED {
                self.skipped.remove(0);
            }
            self.skipped.push(Skipped {
                offset: r.offset,
                reason,
            });
        }
    }

    fn try_apply(&mut self, r: &RawRecord) -> Result<(), String> {
        let raw_key = r.key.as_deref().ok_or("no key")?;
        let key = Key::parse(raw_key).ok_or_else(|| {
            format!(
                "key {:?} is not a registry key",
                String::from_utf8_lossy(raw_key)
            )
        })?;
        match key {
            Key::Stages { name } => match &r.value {
                None => {
                    self.models.remove(&name);
                }
                Some(v) => {
                    let stages: Stages =
                        serde_json::from_slice(v).map_err(|e| format!("stages of {name}: {e}"))?;
                    if stages.name != name {
                        return Err(format!(
                            "stages record under key {name} names model {}",
                            stages.name
                        ));
                    }
                    self.models.entry(name).or_default().stages = stages;
                }
            },
            Key::Version { name, version } => match &r.value {
                None => {
                    if let Some(m) = self.models.get_mut(&name) {
                        m.versions.remove(&version);
                    }
                    self.pending_chunks.remove(&(name, version));
                }
                Some(v) => {
                    let meta: VersionMeta = serde_json::from_slice(v)
                        .map_err(|e| format!("version {name}/{version}: {e}"))?;
                    if meta.name != name || meta.version != version {
                        return Err(format!(
                            "version record under key {name}/{version} names {}/{}",
                            meta.name, meta.version
                        ));
                    }
                    let chunks = self
                        .pending_chunks
                        .remove(&(name.clone(), version))
                        .unwrap_or_default();
                    let model = self.models.entry(name.clone()).or_default();
                    if model.stages.name.is_empty() {
                        model.stages.name = name;
                    }
                    model.stages.max_version = model.stages.max_version.max(version);
                    model.versions.insert(
                        version,
                        VersionEntry {
                            meta,
                            offset: r.offset,
                            chunks,
                        },
                    );
                }
            },
            Key::Chunk {
                name,
                version,
                index,
            } => {
                let live = self
                    .models
                    .get_mut(&name)
                    .and_then(|m| m.versions.get_mut(&version));
                let chunks = match live {
                    Some(entry) => &mut entry.chunks,
                    None => self.pending_chunks.entry((name, version)).or_default(),
                };
                match r.value {
                    Some(_) => chunks.insert(index, r.offset),
                    None => chunks.remove(&index),
                };
            }
        }
        Ok(())
    }

    /// The model called `name`.
    pub fn model(&self, name: &str) -> Result<&ModelState, RegistryError> {
        self.models
            .get(name)
            .filter(|m| !m.versions.is_empty() || m.stages.max_version > 0)
            .ok_or_else(|| {
                RegistryError::NotFound(format!("no model named {name} in the registry"))
            })
    }

    /// Version `version` of `name`.
    pub fn version(&self, name: &str, version: u32) -> Result<&VersionEntry, RegistryError> {
        let model = self.model(name)?;
        model.versions.get(&version).ok_or_else(|| {
            let deleted = model.stages.deleted.contains(&version);
            RegistryError::NotFound(format!(
                "model {name} has no version {version}{}; versions: {}",
                if deleted { " (it was deleted)" } else { "" },
                list(model.versions.keys())
            ))
        })
    }

    /// The champion of `name`, if it has one.
    pub fn champion(&self, name: &str) -> Option<&VersionEntry> {
        let model = self.models.get(name)?;
        model.versions.get(&model.stages.champion?)
    }
}

fn list<'a>(versions: impl Iterator<Item = &'a u32>) -> String {
    let v: Vec<String> = versions.map(u32::to_string).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// What to publish.
#[derive(Clone, Debug)]
pub struct PublishRequest {
    pub name: String,
    pub artifact: Vec<u8>,
    /// dipper's name for the format (`lightgbm`, `xgboost`, `onnx`, `native`), or empty.
    pub format: String,
    pub features: Vec<String>,
    /// Provenance: file, command, data ranges, metrics (a JSON object).
    pub source: serde_json::Value,
    pub chunk_bytes: usize,
}

/// The records publishing `p` (at `now_ms`, by the publish `publish_id`) writes, and its version (the next
/// number for the model).
pub fn plan_publish(
    state: &RegistryState,
    p: &PublishRequest,
    now_ms: i64,
    publish_id: &str,
) -> Result<(VersionMeta, Vec<RawRecord>), RegistryError> {
    wire::validate_name(&p.name)?;
    if p.artifact.is_empty() {
        return Err(RegistryError::Invalid(format!(
            "model {}: the artifact is empty",
            p.name
        )));
    }
    if p.chunk_bytes == 0 {
        return Err(RegistryError::Invalid("chunk size must be positive".into()));
    }
    let mut stages = state
        .models
        .get(&p.name)
        .map(|m| m.stages.clone())
        .unwrap_or_default();
    stages.name = p.name.clone();
    let version = stages.max_version.checked_add(1).ok_or_else(|| {
        RegistryError::Invalid(format!("model {}: no version numbers left", p.name))
    })?;
    let chunks: Vec<&[u8]> = p.artifact.chunks(p.chunk_bytes).collect();
    let meta = VersionMeta {
        name: p.name.clone(),
        version,
        format: p.format.clone(),
        sha256: wire::sha256_hex(&p.artifact),
        bytes: p.artifact.len() as u64,
        chunks: chunks.len() as u32,
        created_ms: now_ms,
        publish_id: publish_id.to_string(),
        features: p.features.clone(),
        source: p.source.clone(),
    };
    let mut out: Vec<RawRecord> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let key = Key::Chunk {
                name: p.name.clone(),
                version,
                index: i as u32,
            };
            record(&key, Some(c.to_vec()))
        })
        .collect();
    out.push(json_record(
        &Key::Version {
            name: p.name.clone(),
            version,
        },
        &meta,
    ));
    stages.max_version = version;
    stages.updated_ms = now_ms;
    stages.change = format!("publish {version}");
    out.push(stages_record(&stages));
    Ok((meta, out))
}

fn stages_record(s: &Stages) -> RawRecord {
    json_record(
        &Key::Stages {
            name: s.name.clone(),
        },
        s,
    )
}

/// A change of stages: the model's new stages and the record that says so.
pub fn plan_stage_change(
    state: &RegistryState,
    name: &str,
    now_ms: i64,
    change: StageChange,
) -> Result<(Stages, RawRecord), RegistryError> {
    let model = state.model(name)?;
    let mut s = model.stages.clone();
    s.name = name.to_string();
    match change {
        StageChange::Promote(v) => {
            state.version(name, v)?;
            if s.champion == Some(v) {
                return Err(RegistryError::Conflict(format!(
                    "version {v} of {name} is already the champion"
                )));
            }
            if let Some(old) = s.champion.replace(v) {
                s.history.push(old);
                s.archived.insert(old);
            }
            s.archived.remove(&v);
            s.challengers.remove(&v);
            s.change = format!("promote {v}");
        }
        StageChange::Rollback => {
            let current = s.champion.ok_or_else(|| {
                RegistryError::Conflict(format!("{name} has no champion to roll back"))
            })?;
            // The newest earlier champion that still exists.
            let back = loop {
                match s.history.pop() {
                    Some(v) if model.versions.contains_key(&v) && v != current => break v,
                    Some(_) => continue,
                    None => {
                        return Err(RegistryError::Conflict(format!(
                            "{name} has no earlier champion to roll back to (champion is version {current})"
                        )))
                    }
                }
            };
            s.champion = Some(back);
            s.archived.remove(&back);
            s.challengers.remove(&back);
            s.archived.insert(current);
            s.change = format!("rollback {current} -> {back}");
        }
        StageChange::Challenge(v, on) => {
            state.version(name, v)?;
            if on {
                if s.champion == Some(v) {
                    return Err(RegistryError::Conflict(format!(
                        "version {v} of {name} is the champion; a challenger must be another version"
                    )));
                }
                s.archived.remove(&v);
                s.challengers.insert(v);
                s.change = format!("challenge {v}");
            } else {
                if !s.challengers.remove(&v) {
                    return Err(RegistryError::Conflict(format!(
                        "version {v} of {name} is not a challenger"
                    )));
                }
                s.change = format!("unchallenge {v}");
            }
        }
        StageChange::Archive(v) => {
            state.version(name, v)?;
            if s.champion == Some(v) {
                return Err(RegistryError::Conflict(format!(
                    "version {v} of {name} is the champion: promote another version or roll back first"
                )));
            }
            s.challengers.remove(&v);
            s.archived.insert(v);
            s.change = format!("archive {v}");
        }
    }
    s.updated_ms = now_ms;
    let r = stages_record(&s);
    Ok((s, r))
}

/// Stage changes (see [`plan_stage_change`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageChange {
    /// Make a version the champion; the old champion is archived and remembered for rollback.
    Promote(u32),
    /// Return to the previous champion that still exists.
    Rollback,
    /// Add (`true`) or remove a challenger.
    Challenge(u32, bool),
    /// Retire a version that is not the champion.
    Archive(u32),
}

/// The records deleting version `v` of `name` writes: tombstones for its chunks and metadata, and the new
/// stages. The champion cannot be deleted.
pub fn plan_delete(
    state: &RegistryState,
    name: &str,
    v: u32,
    now_ms: i64,
) -> Result<(Stages, Vec<RawRecord>), RegistryError> {
    let entry = state.version(name, v)?;
    let mut s = state.model(name)?.stages.clone();
    if s.champion == Some(v) {
        return Err(RegistryError::Conflict(format!(
            "version {v} of {name} is the champion: promote another version or roll back before deleting it"
        )));
    }
    let mut out: Vec<RawRecord> = entry
        .chunks
        .keys()
        .map(|&index| {
            record(
                &Key::Chunk {
                    name: name.to_string(),
                    version: v,
                    index,
                },
                None,
            )
        })
        .collect();
    out.push(record(
        &Key::Version {
            name: name.to_string(),
            version: v,
        },
        None,
    ));
    s.name = name.to_string();
    s.challengers.remove(&v);
    s.archived.remove(&v);
    s.history.retain(|&h| h != v);
    s.deleted.insert(v);
    s.updated_ms = now_ms;
    s.change = format!("delete {v}");
    out.push(stages_record(&s));
    Ok((s, out))
}

/// The stage of every live version of a model, newest first.
pub fn version_stages(model: &ModelState) -> Vec<(u32, Stage)> {
    model
        .versions
        .keys()
        .rev()
        .map(|&v| (v, model.stages.stage_of(v)))
        .collect()
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

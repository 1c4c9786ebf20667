//! The registry's records on the log, one topic with one partition (total order), compacted on Kafka.
//!
//! Keys (UTF-8, prefixed with the format version `v1/`):
//!
//! | key                          | value                                   | `dipper.registry` header |
//! |------------------------------|-----------------------------------------|--------------------------|
//! | `v1/<name>`                  | [`Stages`] as JSON: the model's stages  | `stages`                 |
//! | `v1/<name>/<version>`        | [`VersionMeta`] as JSON                 | `version`                |
//! | `v1/<name>/<version>/<i>`    | chunk `i` of the artifact, raw bytes    | `chunk`                  |
//!
//! Every key is unique per thing it describes, so compaction keeps every live version's chunks and metadata
//! and only the newest [`Stages`] record per model. Deleting a version writes tombstones (no value) for its
//! keys. A publish writes the chunks, then the version record, then the new stages: a publish cut short
//! leaves only chunks without a version record, which readers ignore.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// The registry topic's default name, on Kafka and on the embedded log.
pub const DEFAULT_TOPIC: &str = "_dipper_models";
/// Default artifact chunk size: well under Kafka's default 1 MB message limit.
pub const DEFAULT_CHUNK_BYTES: usize = 512 * 1024;
/// Header naming the kind of a registry record (for people reading the topic with kcat).
pub const KIND_HEADER: &str = "dipper.registry";
const PREFIX: &str = "v1/";

/// A record as stored on the registry topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawRecord {
    /// Position in the topic (ignored when appending).
    pub offset: u64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Metadata of one published model version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub name: String,
    pub version: u32,
    /// The artifact's format as dipper names it (`lightgbm`, `xgboost`, `onnx`, `native`), or empty if the
    /// publisher did not say; the loader detects it from the content then.
    pub format: String,
    /// Hex SHA-256 of the whole artifact.
    pub sha256: String,
    pub bytes: u64,
    pub chunks: u32,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Random id of the publish that wrote this version, to detect two publishers racing for one number.
    pub publish_id: String,
    /// Input feature names, when known.
    #[serde(default)]
    pub features: Vec<String>,
    /// Where the version came from: file, command, training data ranges, metrics (free-form JSON object).
    #[serde(default)]
    pub source: serde_json::Value,
}

/// A model's stages. The newest record per model is the truth; it is rewritten whole on every change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stages {
    pub name: String,
    /// The version pipelines following this model score with.
    pub champion: Option<u32>,
    /// Versions pipelines score in shadow (predictions to a side topic only).
    #[serde(default)]
    pub challengers: BTreeSet<u32>,
    /// Former champions and retired versions.
    #[serde(default)]
    pub archived: BTreeSet<u32>,
    /// Previous champions, oldest first: where `rollback` returns to.
    #[serde(default)]
    pub history: Vec<u32>,
    /// Deleted versions (their numbers are never reused).
    #[serde(default)]
    pub deleted: BTreeSet<u32>,
    /// The highest version number ever published.
    pub max_version: u32,
    /// Milliseconds since the Unix epoch of the last change.
    pub updated_ms: i64,
    /// What the last change was, e.g. `promote 3`.
    #[serde(default)]
    pub change: String,
}

/// The stage of one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Candidate,
    Champion,
    Challenger,
    Archived,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Candidate => "candidate",
            Stage::Champion => "champion",
            Stage::Challenger => "challenger",
            Stage::Archived => "archived",
        })
    }
}

impl Stages {
    /// The stage of `version` (which must be a live version of this model).
    pub fn stage_of(&self, version: u32) -> Stage {
        if self.champion == Some(version) {
            Stage::Champion
        } else if self.challengers.contains(&version) {
            Stage::Challenger
        } else if self.archived.contains(&version) {
            Stage::Archived
        } else {
            Stage::Candidate
        }
    }
}

/// What a registry key names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    Stages {
        name: String,
    },
    Version {
        name: String,
        version: u32,
    },
    Chunk {
        name: String,
        version: u32,
        index: u32,
    },
}

impl Key {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Key::Stages { name } => format!("{PREFIX}{name}"),
            Key::Version { name, version } => format!("{PREFIX}{name}/{version}"),
            Key::Chunk {
                name,
                version,
                index,
            } => format!("{PREFIX}{name}/{version}/{index}"),
        }
        .into_bytes()
    }

    /// Parses a key; `None` for a key that is not a registry key of this format version.
    pub fn parse(raw: &[u8]) -> Option<Key> {
        let text = std::str::from_utf8(raw).ok()?.strip_prefix(PREFIX)?;
        let mut parts = text.split('/');
        let name = parts.next()?.to_string();
        validate_name(&name).ok()?;
        let number = |s: Option<&str>| -> Option<Option<u32>> {
            match s {
                None => Some(None),
                Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    s.parse().ok().map(Some)
                }
                Some(_) => None,
            }
        };
        let version = number(parts.next())?;
        let index = number(parts.next())?;
        if parts.next().is_some() {
            return None;
        }
        Some(match (version, index) {
            (None, _) => Key::Stages { name },
            (Some(version), None) => Key::Version { name, version },
            (Some(version), Some(index)) => Key::Chunk {
                name,
                version,
                index,
            },
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Key::Stages { .. } => "stages",
            Key::Version { .. } => "version",
            Key::Chunk { .. } => "chunk",
        }
    }
}

/// Model names: 1 to 100 characters of `[A-Za-z0-9._-]`, not starting with `.` (they appear in keys, file
/// names and metric labels).
pub fn validate_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "invalid model name {name:?}: use 1 to 100 characters of [A-Za-z0-9._-], not starting with '.'"
        )))
    }
}

/// A record with `key` and `value` (`None`: a tombstone).
pub fn record(key: &Key, value: Option<Vec<u8>>) -> RawRecord {
    RawRecord {
        offset: 0,
        key: Some(key.encode()),
        value,
        headers: vec![(KIND_HEADER.to_string(), key.kind().as_bytes().to_vec())],
    }
}

/// A record holding `value` serialised as JSON.
pub fn json_record<T: Serialize>(key: &Key, value: &T) -> RawRecord {
    // Serialising these plain structs cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    record(key, Some(bytes))
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_strangers_are_not_keys() {
        for key in [
            Key::Stages {
                name: "fraud".into(),
            },
            Key::Version {
                name: "fraud-gbm.v2".into(),
                version: 17,
            },
            Key::Chunk {
                name: "a_b".into(),
                version: 1,
                index: 0,
            },
        ] {
            assert_eq!(Key::parse(&key.encode()), Some(key));
        }
        for raw in [
            &b"fraud"[..],
            b"v1/",
            b"v1/.x",
            b"v1/a/",
            b"v1/a/x",
            b"v1/a/1/2/3",
            b"v1/a/-1",
            b"v1/a/99999999999",
            b"v2/a",
            b"\xff\xfe",
        ] {
            assert_eq!(Key::parse(raw), None, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("fraud_gbm-2.1").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(101)] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.contains("invalid model name"), "{e}");
        }
    }

    #[test]
    fn stage_of_a_version() {
        let s = Stages {
            name: "m".into(),
            champion: Some(3),
            challengers: [4].into(),
            archived: [1].into(),
            ..Stages::default()
        };
        assert_eq!(s.stage_of(3), Stage::Champion);
        assert_eq!(s.stage_of(4), Stage::Challenger);
        assert_eq!(s.stage_of(1), Stage::Archived);
        assert_eq!(s.stage_of(2), Stage::Candidate);
    }

    #[test]
    fn sha256_of_nothing() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

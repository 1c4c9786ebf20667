//! Models for dipper: the [`Model`] trait (named features in, prediction, class probabilities and identity out,
//! batch and single row), the compiled tree-ensemble form every tree format compiles into, and one module per
//! model format. [`load`] reads a file, detects its format from its content and returns a shareable model.

pub mod ensemble;
mod error;
pub mod lightgbm;
pub mod model;
pub mod native;
pub mod onnx;
pub mod pmml;
pub mod pmml_export;
pub mod transform;
pub mod tree_model;
pub mod xgboost;

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use error::ModelError;
pub use model::{
    ClassLabel, Format, Model, ModelId, ModelInfo, OutputValue, PredictionRef, Predictions, Task,
};
pub use tree_model::TreeModel;

/// Model files larger than this are refused rather than read into memory.
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Reads a model file. `format` forces the format; `None` detects it from the content.
pub fn load(path: &Path, format: Option<Format>) -> Result<Arc<dyn Model>, ModelError> {
    let shown = path.display().to_string();
    let io = |source| ModelError::Io {
        path: shown.clone(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_MODEL_BYTES {
        return Err(ModelError::parse(
            "model",
            &shown,
            format!("file is {len} bytes, larger than the {MAX_MODEL_BYTES} limit"),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    load_bytes(&bytes, &shown, &name, format)
}

/// Loads a model from memory; `source` names it in errors, `name` becomes its identity's name.
pub fn load_bytes(
    bytes: &[u8],
    source: &str,
    name: &str,
    format: Option<Format>,
) -> Result<Arc<dyn Model>, ModelError> {
    let format = match format {
        Some(f) => f,
        None => detect_format(bytes, source)?,
    };
    let id = ModelId {
        name: name.to_string(),
        format,
        digest: hex_sha256(bytes),
    };
    let ctx = LoadContext {
        source: source.to_string(),
        id,
    };
    Ok(match format {
        Format::Lightgbm => Arc::new(lightgbm::load(bytes, &ctx)?),
        Format::Xgboost => Arc::new(xgboost::load(bytes, &ctx)?),
        Format::Onnx => Arc::new(onnx::load(bytes, &ctx)?),
        Format::Native => native::load(bytes, &ctx)?,
        Format::Pmml => Arc::new(pmml::load(bytes, &ctx)?),
    })
}

/// What a loader needs besides the bytes: where they came from (for error messages) and the model's identity.
#[derive(Debug, Clone)]
pub struct LoadContext {
    /// The file path or other description used to name places in errors.
    pub source: String,
    pub id: ModelId,
}

/// Tells the format from the first bytes of a model file.
pub fn detect_format(bytes: &[u8], source: &str) -> Result<Format, ModelError> {
    let unknown = |reason: &str| ModelError::UnknownFormat {
        path: source.to_string(),
        reason: reason.to_string(),
    };
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if bytes.is_empty() {
        return Err(unknown("the file is empty"));
    }
    if trimmed.starts_with("tree\n")
        || trimmed.starts_with("tree\r\n")
        || trimmed.starts_with("version=v")
    {
        return Ok(Format::Lightgbm);
    }
    if native::sniff(trimmed) {
        return Ok(Format::Native);
    }
    // JSON, or XGBoost's UBJSON / legacy binary: the XGBoost loader explains how to convert the latter two.
    if trimmed.starts_with('{') || bytes.starts_with(b"binf") {
        return Ok(Format::Xgboost);
    }
    if trimmed.starts_with('<') {
        if text.contains("<PMML") {
            return Ok(Format::Pmml);
        }
        return Err(unknown("this is XML but not PMML (no <PMML> element)"));
    }
    // ONNX is a protobuf ModelProto: field 1 (ir_version, varint) comes first in every exporter's output.
    if bytes[0] == 0x08 {
        return Ok(Format::Onnx);
    }
    Err(unknown("not LightGBM text, XGBoost JSON or ONNX"))
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_content() {
        assert_eq!(
            detect_format(b"tree\nversion=v4\n", "m").unwrap(),
            Format::Lightgbm
        );
        assert_eq!(
            detect_format(b"  {\"learner\": {}}", "m").unwrap(),
            Format::Xgboost
        );
        assert_eq!(
            detect_format(&[0x08, 0x07, 0x12], "m").unwrap(),
            Format::Onnx
        );
        assert_eq!(detect_format(b"binf\x00", "m").unwrap(), Format::Xgboost);
        assert_eq!(detect_format(b"{L\x00\x00", "m").unwrap(), Format::Xgboost);
        assert_eq!(
            detect_format(b"<?xml version=\"1.0\"?>\n<PMML version=\"4.4\"/>", "m").unwrap(),
            Format::Pmml
        );
        for bad in [&b""[..], b"<?xml version=\"1.0\"?><svg/>", b"hello"] {
            let e = detect_format(bad, "m.bin").unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("cannot tell the model format of m.bin"),
                "{e}"
            );
        }
    }
}

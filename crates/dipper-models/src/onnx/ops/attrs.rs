//! Reading a node's attributes with errors that name the attribute, for dipper's own operators.

use tract_onnx::data_resolver::MmapDataResolver;
use tract_onnx::pb::{AttributeProto, NodeProto};
use tract_onnx::tract_hir::internal::*;

use super::invalid;

/// Typed access to the attributes of one node.
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Self {
        Attrs { node }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn ints(&self, name: &str) -> &'a [i64] {
        self.get(name).map(|a| &a.ints[..]).unwrap_or(&[])
    }

    pub fn floats(&self, name: &str) -> &'a [f32] {
        self.get(name).map(|a| &a.floats[..]).unwrap_or(&[])
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map(|a| a.i).unwrap_or(default)
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map(|a| a.f).unwrap_or(default)
    }

    pub fn string(&self, name: &str, default: &str) -> TractResult<String> {
        match self.get(name) {
            None => Ok(default.to_string()),
            Some(a) => String::from_utf8(a.s.clone())
                .map_err(|_| invalid(format!("attribute {name} is not UTF-8"))),
        }
    }

    pub fn strings(&self, name: &str) -> TractResult<Vec<String>> {
        match self.get(name) {
            None => Ok(vec![]),
            Some(a) => a
                .strings
                .iter()
                .map(|s| {
                    String::from_utf8(s.clone())
                        .map_err(|_| invalid(format!("attribute {name} holds a non-UTF-8 string")))
                })
                .collect(),
        }
    }

    /// A float list given either as `name` (float32) or as `name_as_tensor` (float or double tensor); never both.
    pub fn reals(&self, name: &str) -> TractResult<Vec<f64>> {
        let tensor_name = format!("{name}_as_tensor");
        match (self.get(name), self.get(&tensor_name)) {
            (Some(_), Some(_)) => Err(invalid(format!("both {name} and {tensor_name} are set"))),
            (Some(a), None) => Ok(a.floats.iter().map(|&v| v as f64).collect()),
            (None, Some(a)) => {
                let t = a
                    .t
                    .as_ref()
                    .ok_or_else(|| invalid(format!("attribute {tensor_name} holds no tensor")))?;
                let t = tract_onnx::tensor::load_tensor(&MmapDataResolver, t, None)
                    .map_err(|e| invalid(format!("attribute {tensor_name}: {e}")))?;
                if !matches!(t.datum_type(), DatumType::F32 | DatumType::F64) {
                    return Err(invalid(format!(
                        "attribute {tensor_name} is {:?}, expected float or double",
                        t.datum_type()
                    )));
                }
                let t = t.cast_to::<f64>()?;
                Ok(t.try_as_plain_ram()?.as_slice::<f64>()?.to_vec())
            }
            (None, None) => Ok(vec![]),
        }
    }
}

/// Checks that parallel attribute lists have the same length.
pub(crate) fn same_len(what: &[(&str, usize)]) -> TractResult<()> {
    if let Some((first, n)) = what.first() {
        for (name, len) in &what[1..] {
            if len != n {
                return Err(invalid(format!(
                    "{name} has {len} entries but {first} has {n}"
                )));
            }
        }
    }
    Ok(())
}

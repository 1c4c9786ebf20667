//! Placeholder for the native mlp model body, replaced by its implementation.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Model, ModelInfo};
use crate::{LoadContext, ModelError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpBody {}

pub(crate) fn build(
    _body: &MlpBody,
    _info: ModelInfo,
    ctx: &LoadContext,
) -> Result<Arc<dyn Model>, ModelError> {
    Err(ModelError::unsupported(
        "native",
        &ctx.source,
        "mlp models are not implemented yet",
    ))
}

//! Loader placeholder, replaced by the real loader.
use crate::{LoadContext, ModelError, TreeModel};
pub fn load(_bytes: &[u8], ctx: &LoadContext) -> Result<TreeModel, ModelError> {
    Err(ModelError::unsupported(
        "xgboost",
        &ctx.source,
        "not implemented yet",
    ))
}

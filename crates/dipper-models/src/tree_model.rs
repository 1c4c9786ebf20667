//! A model made of a compiled [`TreeEnsemble`] and an [`OutputTransform`]: what LightGBM and XGBoost files (and
//! later every tree format) load into.

use crate::ensemble::TreeEnsemble;
use crate::model::{row_count, Model, ModelInfo, Predictions};
use crate::transform::OutputTransform;
use crate::ModelError;

/// Raw scores are computed in chunks of this many rows so scratch memory stays small on any batch size.
const CHUNK_ROWS: usize = 256;

#[derive(Debug, Clone)]
pub struct TreeModel {
    info: ModelInfo,
    ensemble: TreeEnsemble,
    transform: OutputTransform,
}

impl TreeModel {
    /// Joins the parts; the ensemble must read the schema's features and produce what the transform expects.
    pub fn new(
        info: ModelInfo,
        ensemble: TreeEnsemble,
        transform: OutputTransform,
    ) -> Result<Self, ModelError> {
        if ensemble.n_features() != info.features.len() {
            return Err(ModelError::FeatureCount {
                expected: ensemble.n_features(),
                got: info.features.len(),
            });
        }
        let want = transform.n_outputs(info.n_classes());
        if ensemble.n_outputs() != want || transform.is_classification() != (info.n_classes() > 0) {
            return Err(ModelError::Eval(format!(
                "internal: ensemble has {} outputs, transform {transform:?} with {} classes needs {want}",
                ensemble.n_outputs(),
                info.n_classes()
            )));
        }
        Ok(TreeModel {
            info,
            ensemble,
            transform,
        })
    }

    pub fn ensemble(&self) -> &TreeEnsemble {
        &self.ensemble
    }

    pub fn transform(&self) -> OutputTransform {
        self.transform
    }
}

impl Model for TreeModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        let nf = self.ensemble.n_features();
        let n_rows = row_count(rows, nf)?;
        let width = self.ensemble.n_outputs();
        if n_rows <= CHUNK_ROWS {
            let mut raw = [0.0f64; 64];
            if n_rows * width <= raw.len() {
                let raw = &mut raw[..n_rows * width];
                self.ensemble.predict_raw_batch(rows, raw);
                self.transform.apply(raw, self.info.n_classes(), out);
                return Ok(());
            }
        }
        let mut raw = vec![0.0; n_rows * width];
        for (r, o) in rows
            .chunks(CHUNK_ROWS * nf.max(1))
            .zip(raw.chunks_mut(CHUNK_ROWS * width))
        {
            self.ensemble.predict_raw_batch(r, o);
        }
        self.transform.apply(&raw, self.info.n_classes(), out);
        Ok(())
    }
}

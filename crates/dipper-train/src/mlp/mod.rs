//! Dense feed-forward neural networks (multi-layer perceptrons), trained as scikit-learn's `MLPClassifier` /
//! `MLPRegressor` with `solver="adam"` and `early_stopping=True` are:
//!
//! - inputs: numeric features standardised with the training data's mean and standard deviation (a constant
//!   feature gets std 1); categorical features one-hot encoded over their known categories;
//! - hidden layers (`hidden`, default `[64, 32]`) with ReLU or tanh activation; weights and biases start
//!   Glorot-uniform (`±sqrt(6 / (fan_in + fan_out))`, scikit-learn's choice; He initialisation trained worse
//!   on the fixtures) from a ChaCha8 generator seeded with `seed`;
//! - output: one sigmoid unit (binary, log loss), a softmax over the classes (multiclass, log loss) or one
//!   linear unit (regression, squared error on the target standardised internally; the model file undoes the
//!   standardisation);
//! - Adam on shuffled mini-batches of `batch_size` rows (at most the rows available), L2 penalty
//!   `alpha / (2 n_batch) · |W|²` on the weights;
//! - early stopping: the loss on `valid` when given, else on a held-out `validation_fraction` of the training
//!   rows (stratified by class for classifiers), is checked after every epoch; training stops after
//!   `n_iter_no_change` epochs without an improvement of more than `tol`, or after `max_epochs`, and the
//!   weights of the best epoch are kept. With `early_stopping: false` all rows are trained on and the training
//!   loss is watched instead (the last weights are kept), as scikit-learn does.
//!
//! Missing values (NaN) are not accepted: training fails with an error naming the feature (impute first).
//! Training is single-threaded and deterministic for a seed.

mod net;

use dipper_models::native::mlp::{MlpActivation, MlpBody, MlpInput, MlpLayer, MlpOutput};
use dipper_models::native::ModelBody;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::{Algorithm, Dataset, Progress, Target, TrainError};
pub use net::Activation;
use net::{Adam, Head, Net, Work};

/// Widest hidden layer accepted (a guard against typos that would exhaust memory).
const MAX_HIDDEN: usize = 1 << 16;
/// Most categories a categorical feature may have (each becomes a network input).
const MAX_CATEGORIES: usize = 1 << 16;
/// Most weights and biases a network may have.
const MAX_PARAMS: usize = 1 << 27;

/// A configured MLP trainer.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Units per hidden layer; empty gives a linear / logistic model.
    pub hidden: Vec<usize>,
    /// `relu` or `tanh`.
    pub activation: Activation,
    pub learning_rate: f64,
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub batch_size: usize,
    /// L2 penalty.
    pub alpha: f64,
    pub max_epochs: usize,
    pub early_stopping: bool,
    pub validation_fraction: f64,
    pub n_iter_no_change: usize,
    pub tol: f64,
    pub seed: u64,
}

impl Default for Mlp {
    fn default() -> Self {
        Mlp {
            hidden: vec![64, 32],
            activation: Activation::Relu,
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            batch_size: 200,
            alpha: 1e-4,
            max_epochs: 200,
            early_stopping: true,
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-4,
            seed: 0,
        }
    }
}

fn number(name: &str, v: &Value, ok: impl Fn(f64) -> bool, range: &str) -> Result<f64, TrainError> {
    match v.as_f64() {
        Some(x) if x.is_finite() && ok(x) => Ok(x),
        Some(x) => Err(TrainError::param(
            name,
            format!("{x} is out of range ({range})"),
        )),
        None => Err(TrainError::param(
            name,
            format!("expected a number, got {v}"),
        )),
    }
}

fn count(name: &str, v: &Value, min: u64, max: u64) -> Result<usize, TrainError> {
    match v.as_u64() {
        Some(x) if (min..=max).contains(&x) => {
            usize::try_from(x).map_err(|_| TrainError::param(name, format!("{x} is too large")))
        }
        Some(x) => Err(TrainError::param(
            name,
            format!("{x} is out of range ({min}..={max})"),
        )),
        None => Err(TrainError::param(
            name,
            format!("expected a whole number, got {v}"),
        )),
    }
}

impl Mlp {
    /// Reads hyperparameters from a JSON object; unknown keys and bad values are errors naming the key.
    pub fn from_params(params: &Value) -> Result<Self, TrainError> {
        let obj = crate::params::map(params)?;
        let mut m = Mlp::default();
        for (key, v) in obj {
            let k = key.as_str();
            match k {
                "hidden" => {
                    let Some(list) = v.as_array() else {
                        return Err(TrainError::param(
                            k,
                            format!("expected a list of layer sizes such as [64, 32], got {v}"),
                        ));
                    };
                    m.hidden = list
                        .iter()
                        .map(|u| count(k, u, 1, MAX_HIDDEN as u64))
                        .collect::<Result<_, _>>()?;
                }
                "activation" => {
                    m.activation = match v.as_str() {
                        Some("relu") => Activation::Relu,
                        Some("tanh") => Activation::Tanh,
                        _ => {
                            return Err(TrainError::param(
                                k,
                                format!("expected \"relu\" or \"tanh\", got {v}"),
                            ))
                        }
                    }
                }
                "learning_rate" => m.learning_rate = number(k, v, |x| x > 0.0, "> 0")?,
                "beta_1" => {
                    m.beta_1 = number(k, v, |x| (0.0..1.0).contains(&x), "0 <= beta_1 < 1")?
                }
                "beta_2" => {
                    m.beta_2 = number(k, v, |x| (0.0..1.0).contains(&x), "0 <= beta_2 < 1")?
                }
                "epsilon" => m.epsilon = number(k, v, |x| x > 0.0, "> 0")?,
                "batch_size" => m.batch_size = count(k, v, 1, u32::MAX as u64)?,
                "alpha" => m.alpha = number(k, v, |x| x >= 0.0, ">= 0")?,
                "max_epochs" => m.max_epochs = count(k, v, 1, u32::MAX as u64)?,
                "early_stopping" => {
                    m.early_stopping = v.as_bool().ok_or_else(|| {
                        TrainError::param(k, format!("expected true or false, got {v}"))
                    })?
                }
                "validation_fraction" => {
                    m.validation_fraction =
                        number(k, v, |x| x > 0.0 && x < 1.0, "0 < fraction < 1")?
                }
                "n_iter_no_change" => m.n_iter_no_change = count(k, v, 1, u32::MAX as u64)?,
                "tol" => m.tol = number(k, v, |x| x >= 0.0, ">= 0")?,
                "seed" => {
                    m.seed = v.as_u64().ok_or_else(|| {
                        TrainError::param(
                            k,
                            format!("expected a non-negative whole number, got {v}"),
                        )
                    })?
                }
                _ => return Err(TrainError::param(k, "unknown parameter")),
            }
        }
        Ok(m)
    }
}

/// How the training data's features become network inputs (fitted on the training rows).
#[derive(Debug)]
struct Encoder {
    inputs: Vec<MlpInput>,
    width: usize,
}

fn missing(ds: &Dataset, j: usize, i: usize, what: &str) -> TrainError {
    TrainError::data(
        format!("{what} row {}, feature '{}'", i + 1, ds.schema.get(j).name),
        "missing value (NaN): the mlp algorithm does not accept missing values; impute or drop them first",
    )
}

impl Encoder {
    fn fit(train: &Dataset) -> Result<Self, TrainError> {
        let mut inputs = Vec::with_capacity(train.n_features());
        for (j, col) in train.columns.iter().enumerate() {
            if let Some(i) = col.iter().position(|v| v.is_nan()) {
                return Err(missing(train, j, i, "training data"));
            }
            let categorical = matches!(
                train.schema.get(j).kind,
                dipper_core::FeatureKind::Categorical { .. }
            );
            if categorical {
                // Checked before counting the categories, which trusts the codes.
                if let Some(i) = col
                    .iter()
                    .position(|v| *v < 0.0 || v.fract() != 0.0 || *v >= MAX_CATEGORIES as f64)
                {
                    return Err(TrainError::data(
                        format!(
                            "training data row {}, feature '{}'",
                            i + 1,
                            train.schema.get(j).name
                        ),
                        format!(
                            "{} is not a category code (a whole number from 0 to {})",
                            col[i],
                            MAX_CATEGORIES - 1
                        ),
                    ));
                }
            }
            inputs.push(match train.n_categories(j) {
                Some(k) => {
                    if k > MAX_CATEGORIES {
                        return Err(TrainError::Unfit(format!(
                            "feature '{}' has {k} categories, more than the {MAX_CATEGORIES} the mlp one-hot encodes",
                            train.schema.get(j).name
                        )));
                    }
                    MlpInput::OneHot { n_categories: k }
                }
                None => {
                    let n = col.len().max(1) as f64;
                    let mean = col.iter().sum::<f64>() / n;
                    let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                    let std = var.sqrt();
                    if !mean.is_finite() || !std.is_finite() {
                        return Err(TrainError::data(
                            format!("training data, feature '{}'", train.schema.get(j).name),
                            "values are infinite or too large to standardise",
                        ));
                    }
                    MlpInput::Standardize {
                        mean,
                        std: if std > 1e-12 * mean.abs().max(1.0) {
                            std
                        } else {
                            1.0
                        },
                    }
                }
            });
        }
        let width = inputs.iter().map(MlpInput::width).sum();
        Ok(Encoder { inputs, width })
    }

    /// Encodes all rows of `ds`, row-major (`n_rows * width`).
    fn encode(&self, ds: &Dataset, what: &str) -> Result<Vec<f64>, TrainError> {
        let n = ds.n_rows();
        let size = n.checked_mul(self.width).ok_or_else(|| {
            TrainError::Unfit(format!(
                "{what}: {n} rows of {} inputs is too large",
                self.width
            ))
        })?;
        let mut x = vec![0.0; size];
        let mut at = 0;
        for (j, (col, input)) in ds.columns.iter().zip(&self.inputs).enumerate() {
            if col.len() != n {
                return Err(TrainError::Unfit(format!(
                    "{what}: feature '{}' has {} values for {n} rows",
                    ds.schema.get(j).name,
                    col.len()
                )));
            }
            for (i, v) in col.iter().enumerate() {
                if v.is_nan() {
                    return Err(missing(ds, j, i, what));
                }
                let row = &mut x[i * self.width..(i + 1) * self.width];
                match input {
                    MlpInput::Standardize { mean, std } => row[at] = (v - mean) / std,
                    MlpInput::OneHot { n_categories } => {
                        // Codes unseen in training encode as all zeros, as the scorer does.
                        if *v >= 0.0 && v.fract() == 0.0 && *v < *n_categories as f64 {
                            row[at + *v as usize] = 1.0;
                        }
                    }
                }
            }
            at += input.width();
        }
        Ok(x)
    }
}

/// Encoded rows and their targets (class index, or standardised value).
struct Part {
    x: Vec<f64>,
    y: Vec<f64>,
    n: usize,
}

impl Part {
    fn subset(&self, rows: &[usize], width: usize) -> Part {
        let mut x = Vec::with_capacity(rows.len() * width);
        for &i in rows {
            x.extend_from_slice(&self.x[i * width..(i + 1) * width]);
        }
        Part {
            x,
            y: rows.iter().map(|&i| self.y[i]).collect(),
            n: rows.len(),
        }
    }
}

impl Mlp {
    fn targets(
        &self,
        ds: &Dataset,
        shift: f64,
        scale: f64,
        what: &str,
    ) -> Result<Vec<f64>, TrainError> {
        let k = ds.n_classes();
        ds.y.iter()
            .enumerate()
            .map(|(i, &y)| {
                let ok = if k > 0 {
                    y >= 0.0 && y.fract() == 0.0 && y < k as f64
                } else {
                    y.is_finite()
                };
                if ok {
                    Ok(if k > 0 { y } else { (y - shift) / scale })
                } else {
                    Err(TrainError::data(
                        format!("{what} row {}, label '{}'", i + 1, ds.label),
                        format!("{y} is not a valid target"),
                    ))
                }
            })
            .collect()
    }

    /// Splits row indices into (fit, holdout): `validation_fraction` of each class (or of all rows), at least
    /// one row left to fit on.
    fn holdout(&self, ds: &Dataset, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
        let n = ds.n_rows();
        let groups: Vec<Vec<usize>> = match ds.n_classes() {
            0 => vec![(0..n).collect()],
            k => {
                let mut g = vec![Vec::new(); k];
                for i in 0..n {
                    if let Some(v) = g.get_mut(ds.class(i)) {
                        v.push(i);
                    }
                }
                g
            }
        };
        let (mut fit, mut held) = (Vec::new(), Vec::new());
        for mut g in groups {
            g.shuffle(rng);
            let take = ((g.len() as f64 * self.validation_fraction).round() as usize).min(g.len());
            held.extend_from_slice(&g[..take]);
            fit.extend_from_slice(&g[take..]);
        }
        if fit.is_empty() {
            fit = std::mem::take(&mut held);
        }
        fit.sort_unstable();
        held.sort_unstable();
        (fit, held)
    }
}

impl Algorithm for Mlp {
    fn name(&self) -> &'static str {
        "mlp"
    }

    fn params(&self) -> Value {
        json!({
            "hidden": self.hidden,
            "activation": match self.activation { Activation::Relu => "relu", Activation::Tanh => "tanh" },
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "batch_size": self.batch_size,
            "alpha": self.alpha,
            "max_epochs": self.max_epochs,
            "early_stopping": self.early_stopping,
            "validation_fraction": self.validation_fraction,
            "n_iter_no_change": self.n_iter_no_change,
            "tol": self.tol,
            "seed": self.seed,
        })
    }

    fn fit(
        &self,
        train: &Dataset,
        valid: Option<&Dataset>,
        progress: &dyn Progress,
    ) -> Result<ModelBody, TrainError> {
        let n = train.n_rows();
        if n == 0 {
            return Err(TrainError::Unfit("the training data has no rows".into()));
        }
        let k = train.n_classes();
        if matches!(train.target, Target::Classification { .. }) && k < 2 {
            return Err(TrainError::Unfit(format!(
                "a classifier needs at least 2 classes, the training data has {k}"
            )));
        }
        let (head, n_out) = match k {
            0 => (Head::Identity, 1),
            2 => (Head::Sigmoid, 1),
            k => (Head::Softmax, k),
        };
        let encoder = Encoder::fit(train)?;
        let width = encoder.width;
        // Regression targets are standardised; the body's output scale and offset undo it.
        let (y_mean, y_std) = if k == 0 {
            let mean = train.y.iter().sum::<f64>() / n as f64;
            let std =
                (train.y.iter().map(|y| (y - mean) * (y - mean)).sum::<f64>() / n as f64).sqrt();
            if !mean.is_finite() || !std.is_finite() {
                let i = train.y.iter().position(|y| !y.is_finite()).unwrap_or(0);
                return Err(TrainError::data(
                    format!("training data row {}, label '{}'", i + 1, train.label),
                    format!("{} is not a valid target", train.y[i]),
                ));
            }
            (mean, if std > 0.0 { std } else { 1.0 })
        } else {
            (0.0, 1.0)
        };
        let all = Part {
            x: encoder.encode(train, "training data")?,
            y: self.targets(train, y_mean, y_std, "training data")?,
            n,
        };

        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let (fit_part, check) = match (self.early_stopping, valid) {
            (false, _) => (all, None),
            (true, Some(v)) => {
                if v.n_features() != train.n_features() || v.n_classes() != k {
                    return Err(TrainError::Unfit(format!(
                        "the validation data has {} features and {} classes, the training data {} and {k}",
                        v.n_features(),
                        v.n_classes(),
                        train.n_features()
                    )));
                }
                let part = Part {
                    x: encoder.encode(v, "validation data")?,
                    y: self.targets(v, y_mean, y_std, "validation data")?,
                    n: v.n_rows(),
                };
                (all, (part.n > 0).then_some(part))
            }
            (true, None) => {
                let (fit, held) = self.holdout(train, &mut rng);
                if held.is_empty() {
                    (all, None)
                } else {
                    (all.subset(&fit, width), Some(all.subset(&held, width)))
                }
            }
        };

        let mut dims = vec![width];
        dims.extend_from_slice(&self.hidden);
        dims.push(n_out);
        let n_params = dims.windows(2).try_fold(0usize, |acc, w| {
            w[0].checked_mul(w[1])
                .and_then(|p| p.checked_add(w[1]))
                .and_then(|p| p.checked_add(acc))
        });
        if n_params.is_none_or(|p| p > MAX_PARAMS) {
            return Err(TrainError::param(
                "hidden",
                format!(
                    "layers {dims:?} (inputs, hidden, outputs) need more than {MAX_PARAMS} weights"
                ),
            ));
        }
        let mut net = Net::new(dims, self.activation, head, &mut rng);
        let mut adam = Adam::new(
            net.params.len(),
            self.learning_rate,
            self.beta_1,
            self.beta_2,
            self.epsilon,
        );
        let mut grad = vec![0.0; net.params.len()];
        let mut work = Work::default();
        let batch = self.batch_size.min(fit_part.n).max(1);
        let mut order: Vec<usize> = (0..fit_part.n).collect();
        let (mut xb, mut yb) = (Vec::with_capacity(batch * width), Vec::with_capacity(batch));
        let mut best = f64::INFINITY;
        let mut best_params = net.params.clone();
        let mut stale = 0;
        let what = if check.is_some() { "valid" } else { "train" };
        for epoch in 1..=self.max_epochs {
            order.shuffle(&mut rng);
            let mut total = 0.0;
            for rows in order.chunks(batch) {
                xb.clear();
                yb.clear();
                for &i in rows {
                    xb.extend_from_slice(&fit_part.x[i * width..(i + 1) * width]);
                    yb.push(fit_part.y[i]);
                }
                let loss = net.gradient(&xb, &yb, rows.len(), self.alpha, &mut work, &mut grad);
                total += loss * rows.len() as f64;
                adam.step(&mut net.params, &grad);
            }
            let loss = match &check {
                Some(c) => net.loss(&c.x, &c.y, c.n, &mut work),
                None => total / fit_part.n as f64,
            };
            if !loss.is_finite() || net.params.iter().any(|p| !p.is_finite()) {
                return Err(TrainError::Unfit(format!(
                    "training diverged at epoch {epoch} ({what} loss {loss}); lower learning_rate"
                )));
            }
            if loss > best - self.tol {
                stale += 1;
            } else {
                stale = 0;
            }
            if loss < best {
                best = loss;
                if check.is_some() {
                    best_params.copy_from_slice(&net.params);
                }
            }
            progress.update(
                epoch as u64,
                self.max_epochs as u64,
                &format!("{what} loss {loss:.4}"),
            );
            if stale >= self.n_iter_no_change {
                break;
            }
        }
        if check.is_some() {
            net.params = best_params;
        }
        Ok(ModelBody::Mlp(body(&net, encoder, head, y_mean, y_std)))
    }
}

fn body(net: &Net, encoder: Encoder, head: Head, y_mean: f64, y_std: f64) -> MlpBody {
    let layers = (0..net.n_layers())
        .map(|l| {
            let (w, b) = net.layer(l);
            let n_out = net.dims[l + 1];
            MlpLayer {
                weights: w.chunks_exact(n_out.max(1)).map(<[f64]>::to_vec).collect(),
                biases: b.to_vec(),
                activation: if l + 1 == net.n_layers() {
                    MlpActivation::Identity
                } else {
                    match net.activation {
                        Activation::Relu => MlpActivation::Relu,
                        Activation::Tanh => MlpActivation::Tanh,
                    }
                },
            }
        })
        .collect();
    let (output, output_scale, output_offset) = match head {
        Head::Identity => (MlpOutput::Identity, y_std, y_mean),
        Head::Sigmoid => (MlpOutput::Sigmoid, 1.0, 0.0),
        Head::Softmax => (MlpOutput::Softmax, 1.0, 0.0),
    };
    MlpBody {
        inputs: encoder.inputs,
        layers,
        output,
        output_scale,
        output_offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_defaults_and_round_trip() {
        let m = Mlp::from_params(&json!({"seed": 3})).unwrap();
        assert_eq!(
            m,
            Mlp {
                seed: 3,
                ..Mlp::default()
            }
        );
        let again = Mlp::from_params(&m.params()).unwrap();
        assert_eq!(again, m);
        let m = Mlp::from_params(&json!({"hidden": [8], "activation": "tanh", "batch_size": 32}))
            .unwrap();
        assert_eq!(
            (m.hidden, m.activation, m.batch_size),
            (vec![8], Activation::Tanh, 32)
        );
    }

    #[test]
    fn bad_params_name_the_parameter() {
        for (params, name) in [
            (json!({"hiden": [3]}), "hiden"),
            (json!({"hidden": 3}), "hidden"),
            (json!({"hidden": [0]}), "hidden"),
            (json!({"activation": "sigmoid"}), "activation"),
            (json!({"learning_rate": 0}), "learning_rate"),
            (json!({"beta_1": 1.0}), "beta_1"),
            (json!({"batch_size": 0}), "batch_size"),
            (json!({"batch_size": 1.5}), "batch_size"),
            (json!({"alpha": -1}), "alpha"),
            (json!({"max_epochs": "many"}), "max_epochs"),
            (json!({"validation_fraction": 1.0}), "validation_fraction"),
            (json!({"early_stopping": 1}), "early_stopping"),
            (json!({"seed": -1}), "seed"),
            (json!([1]), "params"),
        ] {
            match Mlp::from_params(&params) {
                Err(TrainError::Param { name: got, .. }) => assert_eq!(got, name, "{params}"),
                other => panic!("{params}: {other:?}"),
            }
        }
    }
}

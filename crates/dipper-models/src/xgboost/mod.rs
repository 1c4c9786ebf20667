//! Loader for XGBoost models saved as JSON (`model.save_model("model.json")`, XGBoost 1.0 to 3.x): gbtree and
//! DART boosters, every built-in objective with a prediction transform dipper implements, numerical and
//! categorical splits, missing values, multiclass, random forests (`num_parallel_tree`) and vector-leaf trees
//! (`multi_strategy="multi_output_tree"`), compiled into a [`TreeEnsemble`](crate::ensemble::TreeEnsemble).
//!
//! Scoring matches XGBoost's CPU predictor:
//! - features are `f32` and compared with `f32` split conditions as `fvalue < condition`
//!   (`src/predictor/predict_fn.h`), so the ensemble rounds inputs to `f32`;
//! - `learner_model_param.base_score` is stored in output space and turned into a margin with the objective's
//!   `ProbToMargin` (`src/learner.cc`, `src/objective/*`); since 3.1 it may be a vector, one per output;
//! - tree `i` adds to output `tree_info[i]`; DART trees are scaled by `weight_drop[i]` (`src/gbm/gbtree.cc`);
//! - like the scikit-learn wrapper's `predict` (`python-package/xgboost/sklearn.py`, `_get_iteration_range`),
//!   a model trained with early stopping (attribute `best_iteration`) is scored with its first
//!   `best_iteration + 1` rounds; `Booster.predict` would use every round.
//!
//! Not loaded, with a clear error: gblinear, the legacy binary format and UBJSON (save as JSON instead),
//! multi-target regression (`num_target > 1`), unknown objectives.

mod objective;
mod schema;
mod tree;

#[cfg(test)]
mod tests;

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};

use crate::ensemble::EnsembleBuilder;
use crate::model::{ClassLabel, ModelInfo, Task};
use crate::{LoadContext, ModelError, TreeModel};

use objective::{Classes, ObjectiveKind};
use schema::{GbTreeModel, GradientBooster, Learner, ModelFile};
use tree::Leaves;

const FORMAT: &str = "xgboost";
const BOOSTER: &str = "learner.gradient_booster";
const SAVE_AS_JSON: &str =
    "load it with XGBoost and save it as JSON (booster.save_model(\"model.json\"))";

/// Loads an XGBoost JSON model.
pub fn load(bytes: &[u8], ctx: &LoadContext) -> Result<TreeModel, ModelError> {
    check_not_binary(bytes, ctx)?;
    let file: ModelFile = serde_json::from_slice(bytes).map_err(|e| json_error(&e, ctx))?;
    let at = |path: &str| format!("{} at {path}", ctx.source);
    let learner = &file.learner;

    let obj_name = learner.objective.name.as_str();
    let kind = objective::objective(obj_name).ok_or_else(|| {
        ModelError::unsupported(
            FORMAT,
            at("learner.objective.name"),
            format!("objective '{obj_name}' is not supported"),
        )
    })?;

    let param = &learner.learner_model_param;
    let n_features: usize = parse_count(
        &param.num_feature,
        "learner.learner_model_param.num_feature",
        ctx,
    )?;
    let num_class = match &param.num_class {
        Some(s) => parse_count(s, "learner.learner_model_param.num_class", ctx)?,
        None => 0,
    };
    let num_target = match &param.num_target {
        Some(s) => parse_count(s, "learner.learner_model_param.num_target", ctx)?,
        None => 1,
    };
    if num_target > 1 {
        return Err(ModelError::unsupported(
            FORMAT,
            at("learner.learner_model_param.num_target"),
            format!("multi-target models ({num_target} targets) are not supported"),
        ));
    }
    let n_classes = match kind.classes {
        Classes::Regression => 0,
        Classes::Binary => 2,
        Classes::Multi => {
            if num_class < 2 {
                return Err(ModelError::parse(
                    FORMAT,
                    at("learner.learner_model_param.num_class"),
                    format!("objective {obj_name} needs num_class >= 2, the file says {num_class}"),
                ));
            }
            num_class
        }
    };
    if kind.classes != Classes::Multi && num_class > 1 {
        return Err(ModelError::parse(
            FORMAT,
            at("learner.learner_model_param.num_class"),
            format!("num_class is {num_class} but objective {obj_name} is not multiclass"),
        ));
    }
    let n_outputs = kind.transform.n_outputs(n_classes);
    let base = base_margin(&param.base_score, kind, n_outputs, ctx)?;

    let features = feature_schema(learner, n_features, ctx)?;
    let (booster, weight_drop, booster_path) = tree_booster(&learner.gradient_booster, ctx)?;

    let mut builder = EnsembleBuilder::new(n_features, n_outputs);
    builder.base_score(base).round_inputs_to_f32(true);
    add_trees(
        &mut builder,
        learner,
        booster,
        weight_drop,
        &booster_path,
        n_outputs,
        ctx,
    )?;
    let ensemble = builder
        .build()
        .map_err(|e| ModelError::parse(FORMAT, at(BOOSTER), e.to_string()))?;

    let info = ModelInfo {
        id: ctx.id.clone(),
        task: if n_classes > 0 {
            Task::Classification
        } else {
            Task::Regression
        },
        features,
        named_features: !learner.feature_names.is_empty(),
        classes: (0..n_classes as i64).map(ClassLabel::Int).collect(),
        accepts_missing: true,
    };
    TreeModel::new(info, ensemble, kind.transform)
}

/// Refuses the legacy binary format and UBJSON with a hint, before JSON parsing reports a syntax error.
fn check_not_binary(bytes: &[u8], ctx: &LoadContext) -> Result<(), ModelError> {
    let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(ModelError::parse(FORMAT, &ctx.source, "the file is empty"));
    };
    let text = &text[start..];
    if text[0] == b'{' {
        // In JSON an object's first token is a string or '}'; UBJSON has a length marker there.
        if matches!(
            text.get(1),
            Some(b'L' | b'l' | b'i' | b'I' | b'U' | b'#' | b'$')
        ) {
            return Err(ModelError::unsupported(
                FORMAT,
                &ctx.source,
                format!("this is an XGBoost UBJSON model (.ubj); {SAVE_AS_JSON}"),
            ));
        }
        return Ok(());
    }
    let what = if text.starts_with(b"binf") || text.iter().take(64).any(|&b| b == 0) {
        "this is XGBoost's legacy binary model format"
    } else {
        "this is not an XGBoost JSON model (it does not start with '{')"
    };
    Err(ModelError::unsupported(
        FORMAT,
        &ctx.source,
        format!("{what}; {SAVE_AS_JSON}"),
    ))
}

fn json_error(e: &serde_json::Error, ctx: &LoadContext) -> ModelError {
    let text = e.to_string();
    let message = match text.rsplit_once(" at line ") {
        Some((m, _)) => m.to_string(),
        None => text,
    };
    ModelError::parse(
        FORMAT,
        format!("{} line {} column {}", ctx.source, e.line(), e.column()),
        message,
    )
}

fn parse_count(s: &str, path: &str, ctx: &LoadContext) -> Result<usize, ModelError> {
    s.trim().parse::<usize>().map_err(|_| {
        ModelError::parse(
            FORMAT,
            format!("{} at {path}", ctx.source),
            format!("'{s}' is not a count"),
        )
    })
}

/// The base score as margins, one per output (`f32` arithmetic, as XGBoost).
fn base_margin(
    s: &str,
    kind: ObjectiveKind,
    n_outputs: usize,
    ctx: &LoadContext,
) -> Result<Vec<f64>, ModelError> {
    let loc = format!("{} at learner.learner_model_param.base_score", ctx.source);
    let values = schema::parse_base_score(s).ok_or_else(|| {
        ModelError::parse(
            FORMAT,
            &loc,
            format!("'{s}' is not a number or a list of numbers"),
        )
    })?;
    // Before 3.1 the base score was one number for every output.
    let values = match values.len() {
        1 => vec![values[0]; n_outputs],
        n if n == n_outputs => values,
        n => {
            return Err(ModelError::parse(
                FORMAT,
                &loc,
                format!("has {n} values, the model has {n_outputs} outputs"),
            ))
        }
    };
    values
        .into_iter()
        .map(|v| {
            let m = kind.link.to_margin(v);
            if m.is_finite() {
                Ok(m as f64)
            } else {
                Err(ModelError::parse(
                    FORMAT,
                    &loc,
                    format!("base score {v} is invalid for the objective (margin {m})"),
                ))
            }
        })
        .collect()
}

fn feature_schema(
    learner: &Learner,
    n_features: usize,
    ctx: &LoadContext,
) -> Result<FeatureSchema, ModelError> {
    let at = |path: &str| format!("{} at {path}", ctx.source);
    let names = &learner.feature_names;
    let types = &learner.feature_types;
    if !names.is_empty() && names.len() != n_features {
        return Err(ModelError::parse(
            FORMAT,
            at("learner.feature_names"),
            format!(
                "has {} names, the model reads {n_features} features",
                names.len()
            ),
        ));
    }
    if !types.is_empty() && types.len() != n_features {
        return Err(ModelError::parse(
            FORMAT,
            at("learner.feature_types"),
            format!(
                "has {} types, the model reads {n_features} features",
                types.len()
            ),
        ));
    }
    let mut specs = Vec::with_capacity(n_features);
    for i in 0..n_features {
        let name = names.get(i).cloned().unwrap_or_else(|| format!("f{i}"));
        let kind = match types.get(i).map(String::as_str) {
            None | Some("q" | "float" | "int" | "i") => FeatureKind::Numeric,
            Some("c") => FeatureKind::Categorical { categories: vec![] },
            Some(other) => {
                return Err(ModelError::unsupported(
                    FORMAT,
                    at(&format!("learner.feature_types[{i}]")),
                    format!("feature type '{other}' is not supported"),
                ))
            }
        };
        specs.push(FeatureSpec { name, kind });
    }
    FeatureSchema::new(specs)
        .map_err(|e| ModelError::parse(FORMAT, at("learner.feature_names"), e.to_string()))
}

/// The tree model of a gbtree or DART booster, DART's tree weights, and the JSON path of the tree model.
fn tree_booster<'a>(
    booster: &'a GradientBooster,
    ctx: &LoadContext,
) -> Result<(&'a GbTreeModel, Option<&'a [f32]>, String), ModelError> {
    let at = |path: &str| format!("{} at {path}", ctx.source);
    match booster.name.as_str() {
        "gbtree" => {
            let model = booster.model.as_ref().ok_or_else(|| {
                ModelError::parse(FORMAT, at(BOOSTER), "gbtree booster has no model")
            })?;
            Ok((model, None, format!("{BOOSTER}.model")))
        }
        "dart" => {
            let inner = booster.gbtree.as_deref().filter(|g| g.name == "gbtree");
            let model = inner.and_then(|g| g.model.as_ref()).ok_or_else(|| {
                ModelError::parse(FORMAT, at(BOOSTER), "dart booster has no gbtree model")
            })?;
            let weights = booster.weight_drop.as_deref().ok_or_else(|| {
                ModelError::parse(FORMAT, at(BOOSTER), "dart booster has no weight_drop")
            })?;
            Ok((model, Some(weights), format!("{BOOSTER}.gbtree.model")))
        }
        "gblinear" => Err(ModelError::unsupported(
            FORMAT,
            at(&format!("{BOOSTER}.name")),
            "gblinear (linear booster) models are not supported; only tree boosters (gbtree, dart) are",
        )),
        other => Err(ModelError::unsupported(
            FORMAT,
            at(&format!("{BOOSTER}.name")),
            format!("booster '{other}' is not supported"),
        )),
    }
}

fn add_trees(
    builder: &mut EnsembleBuilder,
    learner: &Learner,
    model: &GbTreeModel,
    weight_drop: Option<&[f32]>,
    path: &str,
    n_outputs: usize,
    ctx: &LoadContext,
) -> Result<(), ModelError> {
    let at = |p: &str| format!("{} at {path}.{p}", ctx.source);
    let n_trees = model.trees.len();
    if model.tree_info.len() != n_trees {
        return Err(ModelError::parse(
            FORMAT,
            at("tree_info"),
            format!("has {} entries for {n_trees} trees", model.tree_info.len()),
        ));
    }
    if let Some(w) = weight_drop {
        if w.len() != n_trees {
            return Err(ModelError::parse(
                FORMAT,
                format!("{} at {BOOSTER}.weight_drop", ctx.source),
                format!("has {} weights for {n_trees} trees", w.len()),
            ));
        }
    }
    let used = trees_used(learner, model, n_outputs, path, ctx)?;
    for (i, t) in model.trees.iter().enumerate().take(used) {
        let tree_at = |field: &str| at(&format!("trees[{i}].{field}"));
        let width = match &t.tree_param.size_leaf_vector {
            Some(s) => parse_count(
                s,
                &format!("{path}.trees[{i}].tree_param.size_leaf_vector"),
                ctx,
            )?,
            None => 1,
        };
        let leaves = if width > 1 {
            if width != n_outputs {
                return Err(ModelError::parse(
                    FORMAT,
                    tree_at("tree_param.size_leaf_vector"),
                    format!("leaves have {width} values, the model has {n_outputs} outputs"),
                ));
            }
            Leaves::Vector { width }
        } else {
            let weight = weight_drop.map_or(1.0, |w| w[i]);
            if !weight.is_finite() {
                return Err(ModelError::parse(
                    FORMAT,
                    format!("{} at {BOOSTER}.weight_drop[{i}]", ctx.source),
                    format!("weight {weight} is not finite"),
                ));
            }
            Leaves::Scalar { weight }
        };
        let nodes = tree::translate(t, leaves)
            .map_err(|e| ModelError::parse(FORMAT, tree_at(&e.field), e.message))?;
        let group = usize::try_from(model.tree_info[i])
            .ok()
            .filter(|&g| g < n_outputs || width > 1)
            .ok_or_else(|| {
                ModelError::parse(
                    FORMAT,
                    at(&format!("tree_info[{i}]")),
                    format!(
                        "output group {} is out of range ({n_outputs} outputs)",
                        model.tree_info[i]
                    ),
                )
            })?;
        // Vector-leaf trees write every output; the builder wants an output in range.
        let group = if width > 1 { 0 } else { group };
        builder
            .add_tree(&nodes, 0, group)
            .map_err(|e| ModelError::parse(FORMAT, at(&format!("trees[{i}]")), e.to_string()))?;
    }
    Ok(())
}

/// How many trees the scikit-learn wrapper's `predict` uses: all, or the first `best_iteration + 1` rounds.
fn trees_used(
    learner: &Learner,
    model: &GbTreeModel,
    n_outputs: usize,
    path: &str,
    ctx: &LoadContext,
) -> Result<usize, ModelError> {
    let n_trees = model.trees.len();
    let Some(best) = learner.attributes.get("best_iteration") else {
        return Ok(n_trees);
    };
    let loc = format!("{} at learner.attributes.best_iteration", ctx.source);
    let best = match best {
        serde_json::Value::String(s) => s.trim().parse::<usize>().ok(),
        v => v.as_u64().and_then(|v| usize::try_from(v).ok()),
    }
    .ok_or_else(|| ModelError::parse(FORMAT, &loc, format!("{best} is not an iteration number")))?;
    let rounds = best.saturating_add(1);
    let indptr = &model.iteration_indptr;
    if !indptr.is_empty() {
        let Some(&end) = indptr.get(rounds) else {
            // best_iteration at or past the last round: every tree.
            return Ok(n_trees);
        };
        return usize::try_from(end)
            .ok()
            .filter(|&e| e <= n_trees)
            .ok_or_else(|| {
                ModelError::parse(
                    FORMAT,
                    format!("{} at {path}.iteration_indptr[{rounds}]", ctx.source),
                    format!("{end} is not a tree index (there are {n_trees} trees)"),
                )
            });
    }
    let parallel = match &model.gbtree_model_param.num_parallel_tree {
        Some(s) => parse_count(
            s,
            &format!("{path}.gbtree_model_param.num_parallel_tree"),
            ctx,
        )?
        .max(1),
        None => 1,
    };
    let vector_leaves = model
        .trees
        .first()
        .and_then(|t| t.tree_param.size_leaf_vector.as_deref())
        .is_some_and(|s| s.trim() != "1" && s.trim() != "0");
    let per_round = parallel * if vector_leaves { 1 } else { n_outputs };
    Ok(rounds.saturating_mul(per_round).min(n_trees))
}

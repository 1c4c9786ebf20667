//! Loader for LightGBM's text model format (`Booster.save_model`, `lightgbm` CLI `output_model`), versions
//! v2 to v4, into a [`TreeModel`].
//!
//! The file is a header of `key=value` lines, one `Tree=N` block per tree, `end of trees`, then feature
//! importances, a `parameters:` section and, from the Python package, a `pandas_categorical:` JSON line that
//! lists the category strings of each pandas categorical column. Semantics follow LightGBM 4.x:
//! `src/boosting/gbdt_model_text.cpp` (header), `src/io/tree.cpp` and `include/LightGBM/tree.h` (trees, see
//! [`tree`]), `src/boosting/gbdt_prediction.cpp` (tree `i` adds to output `i % num_tree_per_iteration`;
//! `average_output` divides by the number of iterations) and `src/objective/*` (`ConvertOutput`, see
//! [`objective`]).
//!
//! Every malformed input is an error naming the file and line; nothing here panics.

mod objective;
mod text;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};

use crate::ensemble::EnsembleBuilder;
use crate::model::{ModelInfo, Task};
use crate::{LoadContext, ModelError, TreeModel};

use text::{lines, Errors, Field, Line};
use tree::TreeFields;

/// More classes than this are refused before anything is sized by them.
const MAX_CLASSES: usize = 1 << 16;

/// Loads a LightGBM text model.
pub fn load(bytes: &[u8], ctx: &LoadContext) -> Result<TreeModel, ModelError> {
    let err = Errors { ctx };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        err.parse(line, "the file is not UTF-8 text")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = lines(text).peekable();

    // Header: everything before the first `Tree=` line.
    let mut header: HashMap<&str, Field<'_>> = HashMap::new();
    let mut last_line = 0;
    while let Some(line) = lines.peek().copied() {
        if line.text.starts_with("Tree=") || line.text == "end of trees" {
            break;
        }
        lines.next();
        last_line = line.number;
        if line.text.trim().is_empty() {
            continue;
        }
        let field = Field::split(line);
        if header.insert(field.key, field).is_some() {
            return Err(err.parse(
                line.number,
                format!("{} appears twice in the header", field.key),
            ));
        }
    }
    let header = Header::read(&header, err)?;

    // Trees, up to `end of trees`.
    let n_features = header.feature_names.len();
    let outputs = header
        .objective
        .transform
        .n_outputs(header.objective.classes.len());
    let mut builder = EnsembleBuilder::new(n_features, outputs);
    let mut used_as_categorical = vec![false; n_features];
    let mut n_trees = 0usize;
    let mut ended = false;
    while let Some(line) = lines.next() {
        last_line = line.number;
        if line.text == "end of trees" {
            ended = true;
            break;
        }
        if line.text.trim().is_empty() {
            continue;
        }
        let Some(index) = line.text.strip_prefix("Tree=") else {
            return Err(err.parse(
                line.number,
                format!(
                    "expected Tree={n_trees} or 'end of trees', found {:?}",
                    clip(line.text)
                ),
            ));
        };
        if index.trim().parse::<usize>().ok() != Some(n_trees) {
            return Err(err.parse(
                line.number,
                format!("expected Tree={n_trees}, found {:?}", clip(line.text)),
            ));
        }
        let mut fields = TreeFields::default();
        let mut closed = false;
        for l in lines.by_ref() {
            last_line = l.number;
            if l.text.is_empty() {
                closed = true;
                break;
            }
            fields.add(Field::split(l), err)?;
        }
        if !closed {
            return Err(err.parse(
                last_line,
                format!("the file ends inside tree {n_trees} (truncated?)"),
            ));
        }
        let tree = fields.parse(line.number, n_features, err)?;
        for f in &tree.categorical_features {
            used_as_categorical[*f] = true;
        }
        let output = n_trees % header.trees_per_iteration;
        builder
            .add_tree(&tree.nodes, tree.root, output)
            .map_err(|e| err.parse(line.number, e.to_string()))?;
        n_trees += 1;
    }
    if !ended {
        return Err(err.parse(
            last_line,
            "the file ends before 'end of trees' (truncated?)",
        ));
    }
    if let Some((expected, line)) = header.tree_sizes {
        if expected != n_trees {
            return Err(err.parse(
                line,
                format!("tree_sizes lists {expected} trees but the file has {n_trees}"),
            ));
        }
    }
    if n_trees.checked_rem(header.trees_per_iteration) != Some(0) {
        return Err(err.whole(format!(
            "{n_trees} trees is not a whole number of iterations of {} trees",
            header.trees_per_iteration
        )));
    }
    if let Some(line) = header.average_output {
        let iterations = n_trees / header.trees_per_iteration;
        if iterations == 0 {
            return Err(err.parse(line, "average_output with no trees"));
        }
        builder.average_over(iterations as f64);
    }

    let trailer = Trailer::read(lines, err)?;
    let ensemble = builder.build().map_err(|e| err.whole(e.to_string()))?;
    let features = header.schema(&used_as_categorical, &trailer, err)?;
    let objective = header.objective;
    let info = ModelInfo {
        id: ctx.id.clone(),
        task: if objective.classes.is_empty() {
            Task::Regression
        } else {
            Task::Classification
        },
        features,
        named_features: true,
        classes: objective.classes,
        accepts_missing: true,
    };
    TreeModel::new(info, ensemble, objective.transform)
}

/// The first 60 characters of a line, for messages.
fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// What the header says.
struct Header<'a> {
    feature_names: Vec<&'a str>,
    feature_names_line: usize,
    /// `feature_infos` entries: `[min:max]`, `none`, or `c1:c2:...` for a categorical feature.
    feature_infos: Option<Vec<&'a str>>,
    trees_per_iteration: usize,
    objective: objective::Objective,
    /// Line of the `average_output` key, when present.
    average_output: Option<usize>,
    /// Number of trees `tree_sizes` lists, and its line.
    tree_sizes: Option<(usize, usize)>,
}

impl<'a> Header<'a> {
    fn read(fields: &HashMap<&str, Field<'a>>, err: Errors<'_>) -> Result<Self, ModelError> {
        let need = |key: &str| {
            fields.get(key).copied().ok_or_else(|| {
                err.whole(format!(
                    "the header has no {key} (is this a LightGBM model file?)"
                ))
            })
        };
        let version = need("version")?;
        if !matches!(version.value.trim(), "v2" | "v3" | "v4") {
            return Err(err.unsupported(
                version.line,
                format!("model format version {:?}", clip(version.value)),
            ));
        }
        let num_class_field = need("num_class")?;
        let num_class: usize = num_class_field.scalar(err)?;
        if num_class == 0 {
            return Err(err.parse(num_class_field.line, "num_class must be at least 1"));
        }
        if num_class > MAX_CLASSES {
            return Err(err.unsupported(
                num_class_field.line,
                format!("num_class={num_class} (more than {MAX_CLASSES} classes)"),
            ));
        }
        let trees_per_iteration = match fields.get("num_tree_per_iteration") {
            Some(f) => {
                let n: usize = f.scalar(err)?;
                if n == 0 {
                    return Err(err.parse(f.line, "num_tree_per_iteration must be at least 1"));
                }
                n
            }
            None => num_class,
        };
        let max_idx = need("max_feature_idx")?;
        let n_features = max_idx
            .scalar::<i64>(err)?
            .checked_add(1)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| err.parse(max_idx.line, "max_feature_idx must be -1 or more"))?;
        let names = need("feature_names")?;
        let feature_names: Vec<&str> = if n_features == 0 {
            Vec::new()
        } else {
            names.value.split(' ').collect()
        };
        if feature_names.len() != n_features {
            return Err(err.parse(
                names.line,
                format!(
                    "feature_names has {} names, max_feature_idx says {n_features}",
                    feature_names.len()
                ),
            ));
        }
        let feature_infos = match fields.get("feature_infos") {
            Some(f) => {
                let infos: Vec<&str> = if n_features == 0 {
                    Vec::new()
                } else {
                    f.value.split(' ').collect()
                };
                if infos.len() != n_features {
                    return Err(err.parse(
                        f.line,
                        format!(
                            "feature_infos has {} entries, expected {n_features}",
                            infos.len()
                        ),
                    ));
                }
                Some(infos)
            }
            None => None,
        };
        let objective =
            objective::Objective::read(fields.get("objective").copied(), num_class, err)?;
        let outputs = objective.transform.n_outputs(objective.classes.len());
        if outputs != trees_per_iteration {
            let line = fields
                .get("num_tree_per_iteration")
                .unwrap_or(&num_class_field)
                .line;
            return Err(err.parse(
                line,
                format!("{trees_per_iteration} trees per iteration, but the objective has {outputs} outputs"),
            ));
        }
        let tree_sizes = match fields.get("tree_sizes") {
            Some(f) => Some((f.array::<u64>(None, err)?.len(), f.line)),
            None => None,
        };
        Ok(Header {
            feature_names,
            feature_names_line: names.line,
            feature_infos,
            trees_per_iteration,
            objective,
            average_output: fields.get("average_output").map(|f| f.line),
            tree_sizes,
        })
    }

    /// The feature schema: categorical features are those `feature_infos`, the `categorical_feature` parameter or
    /// a split marks so; pandas category strings are attached when they can be matched to them unambiguously.
    fn schema(
        &self,
        used_as_categorical: &[bool],
        trailer: &Trailer,
        err: Errors<'_>,
    ) -> Result<FeatureSchema, ModelError> {
        let n = self.feature_names.len();
        let mut categorical = used_as_categorical.to_vec();
        if let Some(infos) = &self.feature_infos {
            for (c, info) in categorical.iter_mut().zip(infos) {
                *c |= !info.starts_with('[') && *info != "none";
            }
        }
        for &i in &trailer.categorical_feature {
            if i < n {
                categorical[i] = true;
            }
        }
        let cat_columns: Vec<usize> = (0..n).filter(|&i| categorical[i]).collect();
        let mut categories: Vec<Vec<String>> = vec![Vec::new(); n];
        if let Some(lists) = &trailer.pandas_categorical {
            // The lists belong to the pandas categorical columns in order. When they cannot be matched to the
            // categorical features one to one (e.g. an ordered pandas categorical, which LightGBM treats as a
            // number), no strings are attached: the decoder then refuses strings rather than guessing codes.
            if lists.len() == cat_columns.len() && self.codes_fit(&cat_columns, lists) {
                for (&col, list) in cat_columns.iter().zip(lists) {
                    categories[col] = list.clone();
                }
            }
        }
        let specs = self
            .feature_names
            .iter()
            .zip(categories)
            .enumerate()
            .map(|(i, (name, categories))| FeatureSpec {
                name: name.to_string(),
                kind: if categorical[i] {
                    FeatureKind::Categorical { categories }
                } else {
                    FeatureKind::Numeric
                },
            })
            .collect();
        FeatureSchema::new(specs).map_err(|e| err.parse(self.feature_names_line, e.to_string()))
    }

    /// Every category code `feature_infos` records for these columns has a string in the matching list.
    fn codes_fit(&self, columns: &[usize], lists: &[Vec<String>]) -> bool {
        let Some(infos) = &self.feature_infos else {
            return true;
        };
        columns.iter().zip(lists).all(|(&col, list)| {
            let info = infos[col];
            info.starts_with('[')
                || info == "none"
                || info.split(':').all(|c| {
                    c.parse::<i64>()
                        .is_ok_and(|c| c < 0 || (c as usize) < list.len())
                })
        })
    }
}

/// What follows the trees: parameters the loader uses and the pandas categories.
#[derive(Debug, Default)]
struct Trailer {
    /// Column indices of the `categorical_feature` parameter.
    categorical_feature: Vec<usize>,
    /// Category strings per pandas categorical column.
    pandas_categorical: Option<Vec<Vec<String>>>,
}

impl Trailer {
    fn read<'a>(
        lines: impl Iterator<Item = Line<'a>>,
        err: Errors<'_>,
    ) -> Result<Self, ModelError> {
        let mut out = Trailer::default();
        let mut in_parameters = None;
        for line in lines {
            let text = line.text;
            if text == "parameters:" {
                in_parameters = Some(line.number);
            } else if text == "end of parameters" {
                in_parameters = None;
            } else if in_parameters.is_some() {
                if let Some(list) = text
                    .strip_prefix("[categorical_feature: ")
                    .and_then(|t| t.strip_suffix(']'))
                {
                    // Indices, or `name:...` lists from the CLI, which the header's feature_infos cover anyway.
                    out.categorical_feature = list
                        .split(',')
                        .filter_map(|t| t.trim().parse().ok())
                        .collect();
                }
            } else if let Some(json) = text.strip_prefix("pandas_categorical:") {
                out.pandas_categorical = pandas_categorical(json, line.number, err)?;
            }
        }
        if let Some(line) = in_parameters {
            return Err(err.parse(
                line,
                "the parameters section has no 'end of parameters' (truncated?)",
            ));
        }
        Ok(out)
    }
}

/// Reads the `pandas_categorical:` JSON: `null`, or one list of category values per pandas categorical column.
fn pandas_categorical(
    json: &str,
    line: usize,
    err: Errors<'_>,
) -> Result<Option<Vec<Vec<String>>>, ModelError> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| err.parse(line, format!("pandas_categorical is not valid JSON: {e}")))?;
    let lists = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Array(lists) => lists,
        _ => return Err(err.parse(line, "pandas_categorical must be null or a list of lists")),
    };
    let mut out = Vec::with_capacity(lists.len());
    for list in lists {
        let serde_json::Value::Array(items) = list else {
            return Err(err.parse(line, "pandas_categorical must be null or a list of lists"));
        };
        let mut strings = Vec::with_capacity(items.len());
        for item in items {
            match item {
                serde_json::Value::String(s) => strings.push(s),
                other => {
                    // A number category would be read as a code by the row decoder, not looked up: refuse.
                    return Err(err.unsupported(
                        line,
                        format!("pandas categories that are not strings (found {other})"),
                    ));
                }
            }
        }
        out.push(strings);
    }
    Ok(Some(out))
}

//! One `Tree=N` block of a LightGBM text model, read into [`BuildNode`]s.
//!
//! The semantics follow LightGBM 4.x (`include/LightGBM/tree.h`, `src/io/tree.cpp`): internal nodes are numbered
//! `0..num_leaves-1`, a child index `c < 0` is leaf `!c`, and the left child is taken when the test holds.
//! `decision_type` bit 0 marks a categorical split, bit 1 "default left", bits 2-3 the missing type
//! (0 None, 1 Zero, 2 NaN). Numerical splits test `x <= threshold`; with missing type None a NaN is read as 0,
//! with Zero both NaN and zero take the default side, with NaN only NaN does. A categorical split's threshold is
//! an index into `cat_boundaries`, which delimits its bitset words in `cat_threshold`; the value truncated to an
//! integer goes left when its bit is set, and NaN or a negative value always goes right. `leaf_value` already
//! includes the shrinkage.

use crate::ensemble::{Branch, BuildNode, Missing, SplitTest};
use crate::ModelError;

use super::text::{Errors, Field};

const CATEGORICAL: u8 = 1;
const DEFAULT_LEFT: u8 = 2;
/// Bitset words accepted per categorical split: category codes up to 2^24, the ensemble's limit.
const MAX_CAT_WORDS: usize = (1 << 24) / 32;

/// A tree read from the file: its nodes and the index of the root among them.
#[derive(Debug)]
pub(super) struct ParsedTree {
    pub nodes: Vec<BuildNode>,
    pub root: usize,
    /// Features that a categorical split of this tree tests.
    pub categorical_features: Vec<usize>,
}

/// The fields of one tree block, by key.
#[derive(Debug, Default)]
pub(super) struct TreeFields<'a> {
    num_leaves: Option<Field<'a>>,
    num_cat: Option<Field<'a>>,
    split_feature: Option<Field<'a>>,
    threshold: Option<Field<'a>>,
    decision_type: Option<Field<'a>>,
    left_child: Option<Field<'a>>,
    right_child: Option<Field<'a>>,
    leaf_value: Option<Field<'a>>,
    cat_boundaries: Option<Field<'a>>,
    cat_threshold: Option<Field<'a>>,
    is_linear: Option<Field<'a>>,
}

impl<'a> TreeFields<'a> {
    /// Records one `key=value` line; keys the predictor does not need (gains, counts, weights) are ignored.
    pub fn add(&mut self, field: Field<'a>, err: Errors<'_>) -> Result<(), ModelError> {
        let slot = match field.key {
            "num_leaves" => &mut self.num_leaves,
            "num_cat" => &mut self.num_cat,
            "split_feature" => &mut self.split_feature,
            "threshold" => &mut self.threshold,
            "decision_type" => &mut self.decision_type,
            "left_child" => &mut self.left_child,
            "right_child" => &mut self.right_child,
            "leaf_value" => &mut self.leaf_value,
            "cat_boundaries" => &mut self.cat_boundaries,
            "cat_threshold" => &mut self.cat_threshold,
            "is_linear" => &mut self.is_linear,
            _ => return Ok(()),
        };
        if slot.is_some() {
            return Err(err.parse(
                field.line,
                format!("{} appears twice in one tree", field.key),
            ));
        }
        *slot = Some(field);
        Ok(())
    }

    /// Builds the tree; `header_line` is the `Tree=N` line, `n_features` bounds `split_feature`.
    pub fn parse(
        &self,
        header_line: usize,
        n_features: usize,
        err: Errors<'_>,
    ) -> Result<ParsedTree, ModelError> {
        let need = |f: &Option<Field<'a>>, key: &str| {
            f.ok_or_else(|| err.parse(header_line, format!("tree has no {key} field")))
        };
        let num_leaves_field = need(&self.num_leaves, "num_leaves")?;
        let num_leaves: usize = num_leaves_field.scalar(err)?;
        if num_leaves == 0 {
            return Err(err.parse(num_leaves_field.line, "num_leaves must be at least 1"));
        }
        let num_cat: usize = need(&self.num_cat, "num_cat")?.scalar(err)?;
        if let Some(f) = self.is_linear {
            if f.scalar::<i64>(err)? != 0 {
                return Err(err.unsupported(f.line, "linear trees (linear_tree=true)"));
            }
        }
        let leaf_values: Vec<f64> =
            need(&self.leaf_value, "leaf_value")?.array(Some(num_leaves), err)?;
        if num_leaves == 1 {
            return Ok(ParsedTree {
                nodes: vec![BuildNode::Leaf(leaf_values[0])],
                root: 0,
                categorical_features: Vec::new(),
            });
        }
        let n = num_leaves - 1;
        let features_field = need(&self.split_feature, "split_feature")?;
        let features: Vec<i64> = features_field.array(Some(n), err)?;
        let threshold_field = need(&self.threshold, "threshold")?;
        let thresholds: Vec<f64> = threshold_field.array(Some(n), err)?;
        let decision_field = self.decision_type;
        let decisions: Vec<i64> = match decision_field {
            Some(f) => f.array(Some(n), err)?,
            None => vec![0; n],
        };
        let left_field = need(&self.left_child, "left_child")?;
        let right_field = need(&self.right_child, "right_child")?;
        let left: Vec<i64> = left_field.array(Some(n), err)?;
        let right: Vec<i64> = right_field.array(Some(n), err)?;
        let cats = if num_cat > 0 {
            Some(self.categories(num_cat, err, header_line)?)
        } else {
            None
        };

        // Internal nodes keep their indices; leaf `l` becomes node `n + l`.
        let child = |c: i64, field: &Field<'_>, i: usize| -> Result<usize, ModelError> {
            let index = if c >= 0 {
                usize::try_from(c).ok().filter(|&c| c < n)
            } else {
                usize::try_from(!c)
                    .ok()
                    .filter(|&l| l < num_leaves)
                    .map(|l| n + l)
            };
            index.ok_or_else(|| {
                err.parse(
                    field.line,
                    format!(
                        "{}[{i}] = {c} is out of range ({n} internal nodes, {num_leaves} leaves)",
                        field.key
                    ),
                )
            })
        };
        let mut nodes = Vec::with_capacity(n + num_leaves);
        let mut categorical_features = Vec::new();
        for i in 0..n {
            let feature = usize::try_from(features[i])
                .ok()
                .filter(|&f| f < n_features)
                .ok_or_else(|| {
                    err.parse(
                        features_field.line,
                        format!(
                            "split_feature[{i}] = {} is out of range ({n_features} features)",
                            features[i]
                        ),
                    )
                })?;
            let decision = u8::try_from(decisions[i])
                .ok()
                .filter(|&d| d < 16)
                .ok_or_else(|| {
                    err.parse(
                        decision_field.map_or(header_line, |f| f.line),
                        format!(
                            "decision_type[{i}] = {} is not a LightGBM decision type",
                            decisions[i]
                        ),
                    )
                })?;
            let threshold = thresholds[i];
            let (test, missing) = if decision & CATEGORICAL != 0 {
                categorical_features.push(feature);
                let sets = cats.as_ref().ok_or_else(|| {
                    err.parse(
                        decision_field.map_or(header_line, |f| f.line),
                        format!("node {i} is a categorical split but num_cat is 0"),
                    )
                })?;
                let set = category_index(threshold, sets.len())
                    .map(|k| sets[k].clone())
                    .ok_or_else(|| {
                        err.parse(
                            threshold_field.line,
                            format!(
                                "threshold[{i}] = {threshold} is not a categorical split index (num_cat is {num_cat})"
                            ),
                        )
                    })?;
                // NaN and negative values go right (the "no" side); the ensemble sends negatives there too.
                (SplitTest::InSetTruncating(set), Missing::NanTo(Branch::No))
            } else {
                if threshold.is_nan() {
                    return Err(err.parse(threshold_field.line, format!("threshold[{i}] is NaN")));
                }
                let default = if decision & DEFAULT_LEFT != 0 {
                    Branch::Yes
                } else {
                    Branch::No
                };
                let missing = match (decision >> 2) & 3 {
                    0 => Missing::NanAsZero,
                    1 => Missing::NanOrZeroTo(default),
                    2 => Missing::NanTo(default),
                    _ => {
                        return Err(err.parse(
                            decision_field.map_or(header_line, |f| f.line),
                            format!(
                                "decision_type[{i}] = {decision} has an unknown missing type 3"
                            ),
                        ))
                    }
                };
                (SplitTest::Le(threshold), missing)
            };
            nodes.push(BuildNode::Split {
                feature,
                test,
                missing,
                yes: child(left[i], &left_field, i)?,
                no: child(right[i], &right_field, i)?,
            });
        }
        nodes.extend(leaf_values.into_iter().map(BuildNode::Leaf));
        Ok(ParsedTree {
            nodes,
            root: 0,
            categorical_features,
        })
    }

    /// Reads `cat_boundaries`/`cat_threshold` into one category set per categorical split index.
    fn categories(
        &self,
        num_cat: usize,
        err: Errors<'_>,
        header_line: usize,
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        let need = |f: &Option<Field<'a>>, key: &str| {
            f.ok_or_else(|| {
                err.parse(
                    header_line,
                    format!("tree has num_cat={num_cat} but no {key} field"),
                )
            })
        };
        let bounds_field = need(&self.cat_boundaries, "cat_boundaries")?;
        let n_bounds = num_cat
            .checked_add(1)
            .ok_or_else(|| err.parse(bounds_field.line, "num_cat is too large"))?;
        let bounds: Vec<usize> = bounds_field.array(Some(n_bounds), err)?;
        let words_field = need(&self.cat_threshold, "cat_threshold")?;
        let words: Vec<u32> = words_field.array(None, err)?;
        if bounds[0] != 0
            || bounds.windows(2).any(|w| w[0] > w[1])
            || bounds[num_cat] != words.len()
        {
            return Err(err.parse(
                bounds_field.line,
                format!(
                    "cat_boundaries must rise from 0 to the {} words of cat_threshold",
                    words.len()
                ),
            ));
        }
        let mut sets = Vec::with_capacity(num_cat);
        for (k, w) in bounds.windows(2).enumerate() {
            let bits = &words[w[0]..w[1]];
            if bits.len() > MAX_CAT_WORDS {
                return Err(err.unsupported(
                    words_field.line,
                    format!("categorical split {k} has category codes above 2^24"),
                ));
            }
            let mut set = Vec::new();
            for (j, &word) in bits.iter().enumerate() {
                let mut rest = word;
                while rest != 0 {
                    let bit = rest.trailing_zeros();
                    set.push(j as u32 * 32 + bit);
                    rest &= rest - 1;
                }
            }
            sets.push(set);
        }
        Ok(sets)
    }
}

/// The categorical split index a threshold holds, as LightGBM reads it (`static_cast<int>(threshold)`).
fn category_index(threshold: f64, num_cat: usize) -> Option<usize> {
    if threshold >= 0.0 && threshold < num_cat as f64 {
        Some(threshold as usize)
    } else {
        None
    }
}

//! MiningModel: segments (each a predicate and a model) combined by modelChain, selectFirst, sum, average,
//! weightedAverage, median, max, majorityVote or weightedMajorityVote. Sums and averages of trees also compile into
//! the tree-ensemble form ([`super::compile`]).

use std::sync::Arc;

use super::compile::FastEnsemble;
use super::expr::derived_fields;
use super::fields::{Env, Scope};
use super::model::{Function, Header, ModelNode};
use super::output::{Outcome, OutcomeKind};
use super::predicate::{child_predicate, Predicate, Truth};
use super::value::Value;
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    ModelChain,
    SelectFirst,
    Sum,
    WeightedSum,
    Average,
    WeightedAverage,
    Median,
    WeightedMedian,
    Max,
    MajorityVote,
    WeightedMajorityVote,
}

/// `missingPredictionTreatment`: what a segment without a prediction does to the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissingSegment {
    ReturnMissing,
    Skip,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub predicate: Predicate,
    pub model: ModelNode,
    pub weight: f64,
    pub id: Option<Arc<str>>,
}

#[derive(Debug)]
pub(crate) struct MiningModel {
    function: Function,
    method: Method,
    missing: MissingSegment,
    /// With skipped segments: the largest share of segment weight that may be missing.
    missing_threshold: f64,
    segments: Vec<Segment>,
    categories: Vec<Value>,
    fast: Option<FastEnsemble>,
}

impl MiningModel {
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<Self, ModelError> {
        let seg_el = el.req_child("Segmentation")?;
        let method = match seg_el.req("multipleModelMethod")? {
            "modelChain" => Method::ModelChain,
            "selectFirst" => Method::SelectFirst,
            "sum" => Method::Sum,
            "weightedSum" => Method::WeightedSum,
            "average" => Method::Average,
            "weightedAverage" => Method::WeightedAverage,
            "median" => Method::Median,
            "weightedMedian" => Method::WeightedMedian,
            "max" => Method::Max,
            "majorityVote" => Method::MajorityVote,
            "weightedMajorityVote" => Method::WeightedMajorityVote,
            other => {
                return Err(seg_el.unsupported(format!("multipleModelMethod=\"{other}\"")));
            }
        };
        let classification = header.function == Function::Classification;
        let fits = match method {
            Method::ModelChain
            | Method::SelectFirst
            | Method::Average
            | Method::WeightedAverage
            | Method::Max => true,
            Method::Sum | Method::WeightedSum | Method::Median | Method::WeightedMedian => {
                !classification
            }
            Method::MajorityVote | Method::WeightedMajorityVote => classification,
        };
        if !fits {
            return Err(seg_el.unsupported(format!(
                "multipleModelMethod=\"{}\" for a {} model",
                seg_el.attr("multipleModelMethod").unwrap_or_default(),
                if classification {
                    "classification"
                } else {
                    "regression"
                }
            )));
        }
        let missing = match seg_el.choice(
            "missingPredictionTreatment",
            &["returnMissing", "skipSegment", "continue"],
            "returnMissing",
        )? {
            "returnMissing" => MissingSegment::ReturnMissing,
            _ => MissingSegment::Skip,
        };
        let mut scope = scope.clone();
        if let Some(lt) = seg_el.child("LocalTransformations") {
            derived_fields(&lt, c, &mut scope)?;
        }
        let mut segments = Vec::new();
        for s in seg_el.children_named("Segment") {
            let predicate = child_predicate(&s, c, &scope)?;
            let model_el = s
                .children()
                .find(|m| super::model::is_model(m.tag()))
                .ok_or_else(|| s.err("a Segment needs a model"))?;
            let model = ModelNode::compile(&model_el, c, &scope, header.target.as_ref(), false)?;
            if method == Method::ModelChain {
                // Later segments read the outputs of earlier ones.
                for f in &model.outputs {
                    scope.bind(f.name.clone(), f.slot);
                }
            }
            let weight = s.num_or("weight", 1.0)?;
            if !weight.is_finite() {
                return Err(s.err("weight must be a finite number"));
            }
            segments.push(Segment {
                predicate,
                model,
                weight,
                id: s.attr("id").map(Arc::from),
            });
        }
        if segments.is_empty() {
            return Err(seg_el.err("a Segmentation needs at least one Segment"));
        }
        let categories = header.categories_or(segments.iter().flat_map(|s| s.model.categories()));
        let fast = if missing == MissingSegment::ReturnMissing {
            FastEnsemble::try_compile(method, &segments, header.function, &categories)
        } else {
            None
        };
        Ok(MiningModel {
            function: header.function,
            method,
            missing,
            missing_threshold: seg_el.num_or("missingThreshold", 1.0)?,
            segments,
            categories,
            fast,
        })
    }

    pub fn categories(&self) -> Vec<Value> {
        self.categories.clone()
    }

    /// How many sums/averages of trees, here and in segments, compiled into the ensemble form.
    #[cfg(test)]
    pub fn compiled_count(&self) -> usize {
        usize::from(self.fast.is_some())
            + self
                .segments
                .iter()
                .map(|s| match &s.model.kind {
                    super::model::Kind::Mining(m) => m.compiled_count(),
                    _ => 0,
                })
                .sum::<usize>()
    }

    pub fn score(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        if let Some(fast) = self.fast.as_ref().filter(|_| !env.interpret_only()) {
            if let Some(o) = fast.score(env)? {
                return Ok(o);
            }
        }
        self.interpret(env)
    }

    /// Scores without the compiled ensemble (rows with a missing input, and models it cannot express).
    pub fn interpret(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        match self.method {
            Method::ModelChain => {
                let mut last = None;
                for s in &self.segments {
                    if s.predicate.eval(env)? == Truth::True {
                        last = Some(s.model.score(env)?);
                    }
                }
                return Ok(last.unwrap_or_else(Outcome::missing));
            }
            Method::SelectFirst => {
                for s in &self.segments {
                    if s.predicate.eval(env)? == Truth::True {
                        let mut o = s.model.score(env)?;
                        if o.entity.is_none() {
                            o.entity = s.id.clone();
                        }
                        return Ok(o);
                    }
                }
                return Ok(Outcome::missing());
            }
            _ => {}
        }
        let mut results: Vec<(Outcome, f64)> = Vec::with_capacity(self.segments.len());
        let (mut total, mut missing) = (0.0, 0.0);
        for s in &self.segments {
            if s.predicate.eval(env)? != Truth::True {
                continue;
            }
            let o = s.model.score(env)?;
            total += s.weight;
            if o.is_missing() {
                match self.missing {
                    MissingSegment::ReturnMissing => return Ok(Outcome::missing()),
                    MissingSegment::Skip => {
                        missing += s.weight;
                        continue;
                    }
                }
            }
            results.push((o, s.weight));
        }
        if results.is_empty() || (total > 0.0 && missing / total > self.missing_threshold) {
            return Ok(Outcome::missing());
        }
        Ok(match self.function {
            Function::Regression => Outcome::value(self.combine_values(&results)),
            Function::Classification => self.combine_classes(&results),
        })
    }

    fn combine_values(&self, results: &[(Outcome, f64)]) -> f64 {
        let vals: Vec<(f64, f64)> = results
            .iter()
            .map(|(o, w)| match o.kind {
                OutcomeKind::Value(x) => (x, *w),
                _ => (f64::NAN, *w),
            })
            .collect();
        let n = vals.len() as f64;
        match self.method {
            Method::Sum => vals.iter().map(|v| v.0).sum(),
            Method::WeightedSum => vals.iter().map(|v| v.0 * v.1).sum(),
            Method::Average => vals.iter().map(|v| v.0).sum::<f64>() / n,
            Method::WeightedAverage => {
                vals.iter().map(|v| v.0 * v.1).sum::<f64>() / vals.iter().map(|v| v.1).sum::<f64>()
            }
            Method::Max => vals.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max),
            Method::Median => {
                let mut v: Vec<f64> = vals.iter().map(|v| v.0).collect();
                v.sort_by(f64::total_cmp);
                let m = v.len() / 2;
                if v.len() % 2 == 1 {
                    v[m]
                } else {
                    (v[m - 1] + v[m]) / 2.0
                }
            }
            Method::WeightedMedian => {
                let mut v = vals.clone();
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                let half = v.iter().map(|x| x.1).sum::<f64>() / 2.0;
                let mut acc = 0.0;
                let mut out = v[v.len() - 1].0;
                for (x, w) in v {
                    acc += w;
                    if acc >= half {
                        out = x;
                        break;
                    }
                }
                out
            }
            _ => f64::NAN,
        }
    }

    fn combine_classes(&self, results: &[(Outcome, f64)]) -> Outcome {
        let cats = &self.categories;
        let mut acc = vec![0.0; cats.len()];
        let index = |v: &Value| cats.iter().position(|c| c.equals(v));
        match self.method {
            Method::MajorityVote | Method::WeightedMajorityVote => {
                let weighted = self.method == Method::WeightedMajorityVote;
                let mut total = 0.0;
                for (o, w) in results {
                    let w = if weighted { *w } else { 1.0 };
                    if let Some(i) = index(&o.predicted()) {
                        acc[i] += w;
                    }
                    total += w;
                }
                acc.iter_mut().for_each(|a| *a /= total);
            }
            Method::Average | Method::WeightedAverage => {
                let weighted = self.method == Method::WeightedAverage;
                let mut total = 0.0;
                for (o, w) in results {
                    let w = if weighted { *w } else { 1.0 };
                    for (i, c) in cats.iter().enumerate() {
                        acc[i] += w * o.probability(c).unwrap_or(0.0);
                    }
                    total += w;
                }
                acc.iter_mut().for_each(|a| *a /= total);
            }
            Method::Max => {
                // The category with the highest probability in any segment wins; its probabilities are the
                // average over the segments that give it that probability (as the standard and JPMML say).
                let mut best = (f64::NEG_INFINITY, 0usize);
                for (o, _) in results {
                    for (i, c) in cats.iter().enumerate() {
                        let p = o.probability(c).unwrap_or(0.0);
                        if p > best.0 {
                            best = (p, i);
                        }
                    }
                }
                let winners: Vec<&Outcome> = results
                    .iter()
                    .map(|r| &r.0)
                    .filter(|o| o.probability(&cats[best.1]) == Some(best.0))
                    .collect();
                for o in &winners {
                    for (i, c) in cats.iter().enumerate() {
                        acc[i] += o.probability(c).unwrap_or(0.0) / winners.len() as f64;
                    }
                }
            }
            _ => return Outcome::missing(),
        }
        Outcome::class(cats.iter().cloned().zip(acc).collect())
    }
}

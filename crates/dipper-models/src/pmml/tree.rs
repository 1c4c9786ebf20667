//! TreeModel: n-ary trees whose children are tried in order (the first whose predicate is TRUE is taken), with
//! the model's missingValueStrategy (nullPrediction, lastPrediction, defaultChild, none) deciding what an UNKNOWN
//! predicate does and noTrueChildStrategy what happens when no child matches.
//!
//! A tree is also the unit [`super::compile`] turns into the shared tree-ensemble form, for rows with every
//! input present; this interpreter scores the others, and any tree that form cannot express.

use std::sync::Arc;

use super::fields::{Env, Scope};
use super::model::{Function, Header};
use super::output::{Outcome, OutcomeKind};
use super::predicate::{child_predicate, Predicate, Truth};
use super::value::Value;
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissingStrategy {
    None,
    NullPrediction,
    LastPrediction,
    DefaultChild,
}

#[derive(Debug, Clone)]
pub(crate) struct TreeNode {
    pub id: Option<Arc<str>>,
    pub predicate: Predicate,
    /// Regression: the value. Classification: the label.
    pub score: Option<Value>,
    /// Classification: probability per category.
    pub probs: Vec<(Value, f64)>,
    pub children: Vec<u32>,
    pub default_child: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct TreeModel {
    pub function: Function,
    pub nodes: Vec<TreeNode>,
    pub missing: MissingStrategy,
    /// `noTrueChildStrategy="returnLastPrediction"`.
    pub return_last: bool,
}

impl TreeModel {
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<Self, ModelError> {
        let missing = match el.choice(
            "missingValueStrategy",
            &[
                "lastPrediction",
                "nullPrediction",
                "defaultChild",
                "weightedConfidence",
                "aggregateNodes",
                "none",
            ],
            "none",
        )? {
            "lastPrediction" => MissingStrategy::LastPrediction,
            "nullPrediction" => MissingStrategy::NullPrediction,
            "defaultChild" => MissingStrategy::DefaultChild,
            "none" => MissingStrategy::None,
            other => {
                return Err(el.unsupported(format!("missingValueStrategy=\"{other}\"")));
            }
        };
        let return_last = el.choice(
            "noTrueChildStrategy",
            &["returnNullPrediction", "returnLastPrediction"],
            "returnNullPrediction",
        )? == "returnLastPrediction";
        let mut model = TreeModel {
            function: header.function,
            nodes: Vec::new(),
            missing,
            return_last,
        };
        let root = el.req_child("Node")?;
        model.add_node(&root, c, scope, header)?;
        Ok(model)
    }

    fn add_node(
        &mut self,
        el: &El,
        c: &Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<u32, ModelError> {
        if el.child("EmbeddedModel").is_some() || el.child("Regression").is_some() {
            return Err(el.unsupported("models embedded in tree nodes"));
        }
        let predicate = child_predicate(el, c, scope)?;
        let score = match (el.attr("score"), header.function) {
            (None, _) => None,
            (Some(s), Function::Regression) => {
                Some(Value::Num(super::xml::parse_f64(s).ok_or_else(|| {
                    el.err(format!("score=\"{s}\" is not a number"))
                })?))
            }
            (Some(s), Function::Classification) => Some(header.label(el, "score", s)?),
        };
        let mut probs = Vec::new();
        if header.function == Function::Classification {
            let dists: Vec<El> = el.children_named("ScoreDistribution").collect();
            let mut counts = Vec::with_capacity(dists.len());
            let mut explicit = true;
            for d in &dists {
                let label = header.label(d, "value", d.req("value")?)?;
                let p = d.num("probability")?;
                explicit &= p.is_some();
                counts.push((label, d.req_num("recordCount")?, p));
            }
            let total: f64 = counts.iter().map(|c| c.1).sum();
            for (label, count, p) in counts {
                let p = if explicit {
                    p.unwrap_or(0.0)
                } else if total > 0.0 {
                    count / total
                } else {
                    0.0
                };
                probs.push((label, p));
            }
        }
        let index = self.nodes.len();
        if index >= u32::MAX as usize {
            return Err(el.err("too many nodes"));
        }
        self.nodes.push(TreeNode {
            id: el.attr("id").map(Arc::from),
            predicate,
            score,
            probs,
            children: Vec::new(),
            default_child: None,
        });
        let mut children = Vec::new();
        let mut default_child = None;
        let default_id = el.attr("defaultChild");
        for child in el.children_named("Node") {
            let ci = self.add_node(&child, c, scope, header)?;
            if default_id.is_some() && child.attr("id") == default_id {
                default_child = Some(ci);
            }
            children.push(ci);
        }
        if self.missing == MissingStrategy::DefaultChild
            && default_id.is_some()
            && default_child.is_none()
        {
            return Err(el.err(format!(
                "defaultChild=\"{}\" names none of the node's children",
                default_id.unwrap_or_default()
            )));
        }
        self.nodes[index].children = children;
        self.nodes[index].default_child = default_child;
        Ok(index as u32)
    }

    /// The categories the tree's distributions and scores name, in first-seen order.
    pub fn categories(&self) -> Vec<Value> {
        super::value::distinct(
            self.nodes
                .iter()
                .flat_map(|n| n.probs.iter().map(|p| p.0.clone()).chain(n.score.clone())),
        )
    }

    /// A node's own prediction.
    pub fn node_outcome(&self, i: usize) -> Outcome {
        let n = &self.nodes[i];
        let mut o = match (self.function, &n.score) {
            (Function::Regression, Some(Value::Num(x))) => Outcome::value(*x),
            (Function::Regression, _) => Outcome::missing(),
            (Function::Classification, score) => {
                if n.probs.is_empty() {
                    match score {
                        Some(label) => Outcome {
                            kind: OutcomeKind::Class {
                                label: label.clone(),
                                probs: vec![(label.clone(), 1.0)],
                            },
                            entity: None,
                            reasons: Vec::new(),
                        },
                        None => Outcome::missing(),
                    }
                } else {
                    let mut o = Outcome::class(n.probs.clone());
                    if let (Some(label), OutcomeKind::Class { label: l, .. }) = (score, &mut o.kind)
                    {
                        *l = label.clone();
                    }
                    o
                }
            }
        };
        o.entity = n.id.clone();
        o
    }

    pub fn score(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        match self.nodes[0].predicate.eval(env)? {
            Truth::True => {}
            _ => return Ok(Outcome::missing()),
        }
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.children.is_empty() {
                return Ok(self.node_outcome(i));
            }
            let mut next = None;
            for &ch in &node.children {
                match self.nodes[ch as usize].predicate.eval(env)? {
                    Truth::True => {
                        next = Some(ch as usize);
                        break;
                    }
                    Truth::False => {}
                    Truth::Unknown => match self.missing {
                        MissingStrategy::None => {}
                        MissingStrategy::NullPrediction => return Ok(Outcome::missing()),
                        MissingStrategy::LastPrediction => return Ok(self.node_outcome(i)),
                        MissingStrategy::DefaultChild => match node.default_child {
                            Some(d) => {
                                next = Some(d as usize);
                                break;
                            }
                            None => return Ok(Outcome::missing()),
                        },
                    },
                }
            }
            match next {
                Some(n) => i = n,
                None if self.return_last => return Ok(self.node_outcome(i)),
                None => return Ok(Outcome::missing()),
            }
        }
    }
}

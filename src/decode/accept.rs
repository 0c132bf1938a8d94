//! Acceptance: which drafted tokens the target keeps, and the token it adds.
//!
//! A draft is a token tree (a chain is a tree with one child per node). At
//! each position the target picks its own token, exactly as plain decoding
//! would there (greedy at temperature 0, else its branch's noise picks from
//! its distribution: see `noise`), and the drafted child equal to it is
//! followed; at the first position without one, the target's token is the
//! next. So the output never depends on the draft: a drafted token is
//! accepted with the target's probability of it under point-mass drafts, as
//! in speculative sampling, and the samples are plain decoding's own.

use super::sampling::{log_prob, Sampler};
use crate::model::Token;

/// A drafted token tree. Node 0.. are drafted tokens; position `None` is the
/// root (the context before the first drafted token).
#[derive(Clone, Debug, Default)]
pub struct DraftTree {
    pub tokens: Vec<Token>,
    pub parents: Vec<Option<usize>>,
}

impl DraftTree {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn push(&mut self, parent: Option<usize>, token: Token) -> usize {
        self.tokens.push(token);
        self.parents.push(parent);
        self.tokens.len() - 1
    }

    pub fn children(&self, parent: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(move |&i| self.parents[i] == parent)
    }

    /// Keeps the first `len` tokens of a chain (a tree whose every node has
    /// at most one child, pushed in order).
    pub fn truncate_chain(&mut self, len: usize) {
        self.tokens.truncate(len);
        self.parents.truncate(len);
    }

    /// Leaves in node order; each leaf is one path through the tree.
    pub fn leaves(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| !self.parents.contains(&Some(i)))
            .collect()
    }

    /// Whether `node` lies on the path from the root to `leaf`.
    pub fn on_path(&self, node: usize, leaf: usize) -> bool {
        let mut cur = Some(leaf);
        while let Some(c) = cur {
            if c == node {
                return true;
            }
            cur = self.parents[c];
        }
        false
    }
}

/// The outcome of verifying one tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Accepted nodes, root to deepest.
    pub accepted: Vec<usize>,
    /// The target's own next token after the accepted ones (correction or bonus).
    pub next: Token,
    /// The target's log-probability of each accepted token, then of `next`.
    pub logprobs: Vec<f32>,
}

/// Verifies `tree` given the target's logits at the root and at every node
/// (`logits(None)`, `logits(Some(i))`); the root is generated position `t`.
pub fn verify<'a>(
    tree: &DraftTree,
    logits: impl Fn(Option<usize>) -> &'a [f32],
    sampler: &Sampler,
    t: usize,
) -> Verdict {
    let mut accepted = Vec::new();
    let mut logprobs = Vec::new();
    let mut at = None;
    loop {
        let row = logits(at);
        let token = sampler.choose(row, t + accepted.len());
        logprobs.push(log_prob(row, token));
        match tree.children(at).find(|&c| tree.tokens[c] == token) {
            Some(child) => {
                accepted.push(child);
                at = Some(child);
            }
            None => {
                return Verdict {
                    accepted,
                    next: token,
                    logprobs,
                }
            }
        }
    }
}

//! Acceptance rules: which drafted tokens the target keeps, and the token it adds.
//!
//! A draft is a token tree (a chain is a tree with one child per node). At each
//! node the target's distribution decides among the drafted children in order:
//! greedy at temperature 0, speculative sampling otherwise, where siblings are
//! tried without replacement against the residual distribution.

use super::sampling::{argmax, normalize, sample, Sampling};
use crate::model::Token;
use rand::Rng;

/// How the draft proposed the children of one tree position.
#[derive(Clone, Debug)]
pub enum Proposal {
    /// The children are the draft's top tokens, chosen deterministically.
    Greedy,
    /// The children were sampled from `q` without replacement.
    Sampled(Vec<f32>),
}

/// A drafted token tree. Node 0.. are drafted tokens; position `None` is the
/// root (the context before the first drafted token).
#[derive(Clone, Debug, Default)]
pub struct DraftTree {
    pub tokens: Vec<Token>,
    pub parents: Vec<Option<usize>>,
    /// For the root and every node with children: how its children were proposed.
    pub root_proposal: Option<Proposal>,
    pub proposals: Vec<Option<Proposal>>,
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
        self.proposals.push(None);
        self.tokens.len() - 1
    }

    pub fn children(&self, parent: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(move |&i| self.parents[i] == parent)
    }

    pub fn proposal(&self, at: Option<usize>) -> Option<&Proposal> {
        match at {
            None => self.root_proposal.as_ref(),
            Some(i) => self.proposals[i].as_ref(),
        }
    }

    pub fn set_proposal(&mut self, at: Option<usize>, proposal: Proposal) {
        match at {
            None => self.root_proposal = Some(proposal),
            Some(i) => self.proposals[i] = Some(proposal),
        }
    }

    /// Keeps the first `len` tokens of a chain (a tree whose every node has
    /// at most one child, pushed in order); the last kept one has no children.
    pub fn truncate_chain(&mut self, len: usize) {
        if len >= self.len() {
            return;
        }
        self.tokens.truncate(len);
        self.parents.truncate(len);
        self.proposals.truncate(len);
        match len.checked_sub(1) {
            Some(last) => self.proposals[last] = None,
            None => self.root_proposal = None,
        }
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
}

/// Verifies `tree` given the target's logits at the root and at every node
/// (`logits(None)`, `logits(Some(i))`).
pub fn verify<'a>(
    tree: &DraftTree,
    logits: impl Fn(Option<usize>) -> &'a [f32],
    sampling: &Sampling,
    rng: &mut impl Rng,
) -> Verdict {
    let mut accepted = Vec::new();
    let mut at = None;
    loop {
        let row = logits(at);
        let children: Vec<usize> = tree.children(at).collect();
        let step = if sampling.is_greedy() {
            let best = argmax(row);
            match children.iter().find(|&&c| tree.tokens[c] == best) {
                Some(&c) => Ok(c),
                None => Err(best),
            }
        } else {
            let p = sampling.distribution(row);
            accept_sampled(tree, &children, tree.proposal(at), p, rng)
        };
        match step {
            Ok(child) => {
                accepted.push(child);
                at = Some(child);
            }
            Err(next) => return Verdict { accepted, next },
        }
    }
}

/// Speculative sampling over the children of one position. Returns the accepted
/// child, or the token drawn from the residual when all are rejected.
fn accept_sampled(
    tree: &DraftTree,
    children: &[usize],
    proposal: Option<&Proposal>,
    mut residual: Vec<f32>,
    rng: &mut impl Rng,
) -> Result<usize, Token> {
    // The proposal distribution of the current candidate; siblings already tried
    // are removed from it (sampling without replacement).
    let mut q: Option<Vec<f32>> = match proposal {
        Some(Proposal::Sampled(q)) => Some(q.clone()),
        _ => None,
    };
    for &child in children {
        let x = tree.tokens[child] as usize;
        match q.as_mut() {
            Some(q) => {
                let ratio = if q[x] > 0.0 { residual[x] / q[x] } else { 0.0 };
                if rng.gen::<f32>() < ratio.min(1.0) {
                    return Ok(child);
                }
                let before: Vec<f32> = residual.clone();
                for (r, &qi) in residual.iter_mut().zip(q.iter()) {
                    *r = (*r - qi).max(0.0);
                }
                if residual.iter().sum::<f32>() <= 0.0 {
                    // Only float rounding can empty it (p == q): fall back to p.
                    residual = before;
                }
                normalize(&mut residual);
                q[x] = 0.0;
                normalize(q);
            }
            None => {
                // A deterministic candidate: its proposal is a point mass on x.
                if rng.gen::<f32>() < residual[x] {
                    return Ok(child);
                }
                residual[x] = 0.0;
                normalize(&mut residual);
            }
        }
    }
    Err(sample(&residual, rng))
}

//! Drafting: a token tree per branch, by n-gram lookup or with the draft
//! model level by level (each level one batched draft forward over all
//! branches that draft with it), then cut to what pays for its rows.

use super::accept::DraftTree;
use super::branch::Branch;
use super::config::{Drafter, TreeShape, MAX_ADAPTIVE_DRAFT};
use super::cost::{self, CostModel, NgramClass};
use super::error::Result;
use super::faults;
use super::ngram;
use super::owned::OwnedSeqs;
use crate::model::{BatchToken, Model, SeqId, Token};
use std::time::Instant;

/// A branch's draft between drafting and verification.
pub(crate) struct Draft {
    /// Index of the branch in the batch.
    pub branch: usize,
    pub tree: DraftTree,
    /// Drafted tokens left in the branch's own draft sequence (path 0).
    pub kept_in_draft: Vec<Token>,
    /// Drafted by the draft model (else by n-gram lookup).
    pub by_model: bool,
    /// Length of the context suffix an n-gram draft matched (0: none).
    pub ngram_key: usize,
    /// The first token cost-aware drafting cut from it, if any.
    pub first_cut: Option<Token>,
}

impl Draft {
    /// Drafted tokens on its longest path.
    pub fn depth(&self) -> usize {
        tree_depth(&self.tree)
    }
}

/// What drafting reads.
pub(crate) struct Drafting<'a> {
    /// The draft model, where the drafter uses one.
    pub draft: Option<&'a mut dyn Model>,
    pub shape: &'a TreeShape,
    pub drafter: Drafter,
    pub adaptive_gamma: bool,
    /// Cost-aware drafting cuts each draft to what pays, so n-gram chains
    /// (free to look up) are looked up as long as a draft may grow.
    pub cost_aware: bool,
    /// Generated tokens of the finished branches of each request in the batch.
    pub finished: &'a [(u64, &'a [Token])],
    /// Past requests, for n-gram drafts (empty unless kept).
    pub history: &'a ngram::History,
}

/// The drafts of one drafting step, in the order of the branches asked for.
pub(crate) struct Drafted {
    pub drafts: Vec<Draft>,
    /// Draft-model forwards run.
    pub forwards: usize,
}

/// Per draft: the nodes to extend at the next level, each with its draft
/// sequence (`None`: the root, fed the branch's uncached tokens).
type Frontier = Vec<Vec<(Option<usize>, SeqId)>>;

impl Drafting<'_> {
    /// Drafts a tree for each of `ids`: an n-gram chain where the drafter
    /// looks them up and one is found, else with the draft model.
    pub fn run(&mut self, branches: &mut [Branch], ids: &[usize]) -> Result<Drafted> {
        let depths: Vec<usize> = ids.iter().map(|&i| self.depth_for(&branches[i])).collect();
        let mut drafts: Vec<Draft> = ids
            .iter()
            .zip(&depths)
            .map(|(&i, &depth)| self.start(branches, i, depth))
            .collect();
        let mut frontier: Frontier = drafts
            .iter()
            .zip(&depths)
            .map(|(d, &depth)| match branches[d.branch].draft() {
                Some(kv) if depth > 0 && d.by_model => vec![(None, kv.seq)],
                _ => vec![],
            })
            .collect();
        // Forks for a tree's other children live until the drafts are made.
        let mut forks = self.draft.as_deref_mut().map(OwnedSeqs::new);
        let mut forwards = 0;
        let max_depth = depths.iter().copied().max().unwrap_or(0);
        for level in 0..max_depth {
            let batch = level_batch(branches, &mut drafts, &frontier);
            if batch.is_empty() {
                break;
            }
            let forks = forks.as_mut().expect("drafter uses the model");
            let f0 = Instant::now();
            faults::forward(forks.model(), &batch, faults::DRAFT_FORWARD)?;
            let seconds = f0.elapsed().as_secs_f64();
            forwards += 1;
            let width = self.shape.0.get(level).copied().unwrap_or(1);
            let grow = Growth {
                level,
                width,
                seconds,
                depths: &depths,
            };
            grow.extend(forks, branches, &mut drafts, &mut frontier)?;
        }
        Ok(Drafted { drafts, forwards })
    }

    /// How many tokens branch `b` drafts: its adapted length or the shape's
    /// depth, leaving room for the target's own token.
    fn depth_for(&self, b: &Branch) -> usize {
        let depth = if self.adaptive_gamma {
            b.draft_len()
        } else {
            self.shape.depth()
        };
        depth.min(b.room().saturating_sub(1))
    }

    /// A draft holding branch `i`'s n-gram chain, if the drafter looks one up.
    fn start(&self, branches: &[Branch], i: usize, depth: usize) -> Draft {
        let len = if self.cost_aware {
            MAX_ADAPTIVE_DRAFT.min(branches[i].room().saturating_sub(1))
        } else {
            depth
        };
        let found = if self.drafter.uses_ngrams() {
            ngram_draft(branches, self.finished, self.history, i, len)
        } else {
            ngram::Found::default()
        };
        let mut tree = DraftTree::default();
        let mut at = None;
        for &token in &found.tokens {
            at = Some(tree.push(at, token));
        }
        Draft {
            branch: i,
            tree,
            kept_in_draft: Vec::new(),
            by_model: found.tokens.is_empty() && self.drafter.uses_model(),
            ngram_key: found.key,
            first_cut: None,
        }
    }
}

/// The draft forward of one level: a root feeds the branch's uncached tokens,
/// a node its token.
fn level_batch(branches: &[Branch], drafts: &mut [Draft], frontier: &Frontier) -> Vec<BatchToken> {
    let mut batch = Vec::new();
    for (d, nodes) in drafts.iter_mut().zip(frontier) {
        let b = &branches[d.branch];
        for &(at, seq) in nodes {
            let own = b.draft().expect("a node to extend has a draft sequence");
            let Some(node) = at else {
                let tokens = b.tokens();
                for pos in own.cached..tokens.len() {
                    batch.push(BatchToken {
                        token: tokens[pos],
                        pos,
                        seqs: vec![seq],
                        logits: pos + 1 == tokens.len(),
                    });
                }
                continue;
            };
            let token = d.tree.tokens[node];
            if seq == own.seq {
                d.kept_in_draft.push(token);
            }
            batch.push(BatchToken {
                token,
                pos: b.tokens().len() + depth_of(&d.tree, node),
                seqs: vec![seq],
                logits: true,
            });
        }
    }
    batch
}

/// One level's forward, read back into the drafts.
struct Growth<'a> {
    level: usize,
    width: usize,
    seconds: f64,
    depths: &'a [usize],
}

impl Growth<'_> {
    /// Adds each frontier node's candidates to its tree (rows in batch
    /// order) and makes the next frontier: the first child continues its
    /// parent's sequence, the others fork it.
    fn extend(
        &self,
        forks: &mut OwnedSeqs,
        branches: &mut [Branch],
        drafts: &mut [Draft],
        frontier: &mut Frontier,
    ) -> Result<()> {
        let mut row = 0;
        for (k, d) in drafts.iter_mut().enumerate() {
            if frontier[k].is_empty() {
                continue;
            }
            let b = &mut branches[d.branch];
            b.record_draft_forward(self.seconds);
            b.set_draft_cached(b.tokens().len());
            let mut next = Vec::new();
            // The nodes of this level predict this generated position.
            let t = b.generated_tokens().len() + self.level;
            for &(at, seq) in &frontier[k] {
                let children =
                    b.draft_sampler()
                        .candidates(forks.model().logits(row), t, self.width);
                row += 1;
                for (c, token) in children.into_iter().enumerate() {
                    let node = d.tree.push(at, token);
                    if self.level + 1 < self.depths[k] {
                        let child_seq = if c == 0 { seq } else { forks.fork(seq)? };
                        next.push((Some(node), child_seq));
                    }
                }
            }
            frontier[k] = next;
        }
        Ok(())
    }
}

/// Cost-aware drafting: cuts each draft to the tokens worth their rows of
/// the verify forward (see `cost::budget`); keeps them all until the
/// forward's cost per row is known.
pub(crate) fn trim_to_budget(
    cost: &CostModel,
    target: &dyn Model,
    branches: &[Branch],
    drafts: &mut [Draft],
) {
    let Some(line) = cost.forwards.fit() else {
        return;
    };
    if drafts.iter().all(|d| d.tree.is_empty()) {
        return;
    }
    let base_rows = drafts
        .iter()
        .map(|d| branches[d.branch].pending_rows())
        .sum();
    let rates: Vec<f64> = drafts
        .iter()
        .map(|d| {
            let b = &branches[d.branch];
            cost.draft_rate(b.acceptance(), ngram_class(b, d))
        })
        .collect();
    let lens: Vec<usize> = drafts.iter().map(|d| d.tree.len()).collect();
    let seconds = |rows| line.seconds(target.computed_rows(rows));
    let keep = cost::budget(&rates, &lens, base_rows, seconds);
    for (d, k) in drafts.iter_mut().zip(keep) {
        d.first_cut = d.tree.tokens.get(k).copied();
        d.tree.truncate_chain(k);
    }
}

/// The class of an n-gram draft's acceptance (`None`: drafted by the model).
pub(crate) fn ngram_class(b: &Branch, d: &Draft) -> Option<NgramClass> {
    (!d.by_model).then(|| NgramClass {
        key: d.ngram_key,
        greedy: b.target_sampler().sampling.is_greedy(),
    })
}

/// The n-gram draft of branch `i`: looked up in its own prompt and text,
/// then in the other branches of its request (their text, and the prompts of
/// other prompts), then in its request's finished branches, and in past
/// requests' where they match a longer suffix of its context than those
/// could. (The output does not depend on the draft, so any source will do.)
fn ngram_draft(
    branches: &[Branch],
    finished: &[(u64, &[Token])],
    history: &ngram::History,
    i: usize,
    len: usize,
) -> ngram::Found {
    let b = &branches[i];
    let me = b.origin();
    let mut others: Vec<&[Token]> = Vec::new();
    let mut prompts_seen = vec![me.prompt_index];
    for o in branches.iter().filter(|o| {
        let theirs = o.origin();
        theirs.request == me.request && theirs.choice != me.choice
    }) {
        others.push(o.generated_tokens());
        if !prompts_seen.contains(&o.origin().prompt_index) {
            prompts_seen.push(o.origin().prompt_index);
            others.push(o.prompt());
        }
    }
    others.extend(
        finished
            .iter()
            .filter(|(request, _)| *request == me.request)
            .map(|(_, tokens)| *tokens),
    );
    let local = ngram::lookup(b.tokens(), &others, len);
    let min_key = if local.tokens.is_empty() {
        0
    } else {
        ngram::MAX_N + 1
    };
    let past = history.lookup(b.tokens(), min_key, len);
    if past.tokens.is_empty() {
        local
    } else {
        past
    }
}

/// Depth of `node` below the root (0 for the root's children).
pub(crate) fn depth_of(tree: &DraftTree, node: usize) -> usize {
    let mut depth = 0;
    let mut cur = tree.parents[node];
    while let Some(p) = cur {
        depth += 1;
        cur = tree.parents[p];
    }
    depth
}

fn tree_depth(tree: &DraftTree) -> usize {
    (0..tree.len())
        .map(|n| depth_of(tree, n) + 1)
        .max()
        .unwrap_or(0)
}

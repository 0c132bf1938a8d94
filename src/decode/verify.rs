//! Verification: the queued drafts of a group in one target forward, each
//! draft's leaf paths in their own sequences, and the target's verdict.

use super::accept::{self, Verdict};
use super::branch::Branch;
use super::draft::{depth_of, Draft};
use super::error::Result;
use super::faults;
use super::owned::OwnedSeqs;
use crate::model::{BatchToken, Model, SeqId};
use std::time::Instant;

/// A verify forward's results, per draft in order.
pub(crate) struct Forwarded {
    /// The target sequence of each leaf path (the first is the branch's own).
    pub paths: Vec<Vec<SeqId>>,
    /// Logits row of each draft's root.
    pub roots: Vec<usize>,
    pub seconds: f64,
    /// Tokens fed to the forward.
    pub rows: usize,
}

/// Runs the target over every draft's pending tokens and drafted nodes.
pub(crate) fn forward(
    target: &mut dyn Model,
    branches: &[Branch],
    drafts: &[Draft],
) -> Result<Forwarded> {
    let mut batch = Vec::new();
    let mut paths = Vec::new();
    let mut roots = Vec::new();
    let mut rows = 0;
    // The leaf paths' forks are released unless the forward succeeds.
    let mut forks = OwnedSeqs::new(target);
    for d in drafts {
        let b = &branches[d.branch];
        let leaves = d.tree.leaves();
        let own = b.target().seq;
        let mut seqs = vec![own];
        for _ in 1..leaves.len() {
            seqs.push(forks.fork(own)?);
        }
        b.push_pending(&mut batch, &seqs);
        roots.push(rows);
        rows += 1 + d.tree.len();
        for node in 0..d.tree.len() {
            let on: Vec<SeqId> = leaves
                .iter()
                .zip(&seqs)
                .filter(|(&leaf, _)| d.tree.on_path(node, leaf))
                .map(|(_, &s)| s)
                .collect();
            batch.push(BatchToken {
                token: d.tree.tokens[node],
                pos: b.tokens().len() + depth_of(&d.tree, node),
                seqs: on,
                logits: true,
            });
        }
        paths.push(seqs);
    }
    let f0 = Instant::now();
    faults::forward(forks.model(), &batch, faults::TARGET_FORWARD)?;
    forks.keep();
    Ok(Forwarded {
        paths,
        roots,
        seconds: f0.elapsed().as_secs_f64(),
        rows: batch.len(),
    })
}

/// The target's verdict on one draft whose root is logits row `root`.
pub(crate) fn verdict(target: &dyn Model, root: usize, draft: &Draft, b: &Branch) -> Verdict {
    let row_of = |at: Option<usize>| target.logits(root + at.map_or(0, |n| n + 1));
    accept::verify(
        &draft.tree,
        row_of,
        b.target_sampler(),
        b.generated_tokens().len(),
    )
}

/// Which leaf path holds the last accepted node (the branch keeps its sequence).
pub(crate) fn kept_path(draft: &Draft, verdict: &Verdict) -> usize {
    let Some(&last) = verdict.accepted.last() else {
        return 0;
    };
    draft
        .tree
        .leaves()
        .iter()
        .position(|&leaf| draft.tree.on_path(last, leaf))
        .unwrap_or(0)
}

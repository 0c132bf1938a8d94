//! Speculative decoding: drafting token trees with the draft model, verifying
//! them with the target, and scheduling branches (one by one, or SeeD rounds).

use super::accept::{verify, DraftTree, Proposal};
use super::branch::Branch;
use super::engine::push_pending;
use super::sampling::{normalize, sample, Sampling};
use super::{EventKind, Result, RunStats, TraceEvent, TreeShape, VerifyPolicy};
use crate::model::{BatchToken, Model, SeqId, Token};
use rand::Rng;
use std::time::Instant;

/// A branch's draft between drafting and verification.
struct Draft {
    branch: usize,
    tree: DraftTree,
    /// Drafted tokens left in the branch's own draft sequence (path 0).
    kept_in_draft: Vec<Token>,
}

pub(crate) struct Speculator<'a> {
    pub target: &'a mut dyn Model,
    pub draft: &'a mut dyn Model,
    pub shape: TreeShape,
    pub stats: &'a mut RunStats,
    pub start: Instant,
    pub trace: Option<&'a mut Vec<TraceEvent>>,
}

impl Speculator<'_> {
    /// `sd` and `mcsd`: one draft and verification of branch `i` alone (the
    /// caller keeps to one branch until it finishes).
    pub fn step_one(&mut self, branches: &mut [Branch], i: usize) -> Result<()> {
        let step = branches[i].steps;
        let drafts = self.draft_phase(branches, &[i], step)?;
        self.verify_phase(branches, drafts, step)?;
        branches[i].steps += 1;
        Ok(())
    }

    /// One SeeD round: every ready branch drafts (one batched draft forward
    /// per tree level), then the queued drafts are verified in arrival order,
    /// one per target forward (FCFS) or all in one (batched). A branch drafts
    /// again only after its draft is verified.
    pub fn round(
        &mut self,
        branches: &mut [Branch],
        ready: &[usize],
        policy: VerifyPolicy,
        round: usize,
    ) -> Result<()> {
        let queue = self.draft_phase(branches, ready, round)?;
        match policy {
            VerifyPolicy::Fcfs => {
                for draft in queue {
                    self.verify_phase(branches, vec![draft], round)?;
                }
            }
            VerifyPolicy::Batched => self.verify_phase(branches, queue, round)?,
        }
        Ok(())
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn record(
        &mut self,
        branch: usize,
        kind: EventKind,
        round: usize,
        start_s: f64,
        end_s: f64,
        tokens: usize,
    ) {
        if let Some(trace) = self.trace.as_mut() {
            trace.push(TraceEvent {
                branch,
                kind,
                round,
                start_s,
                end_s,
                tokens,
            });
        }
    }

    /// Drafts a tree for each of `ids`, level by level, each level one batched
    /// draft forward over all the branches. Returns the drafts in `ids` order.
    fn draft_phase(
        &mut self,
        branches: &mut [Branch],
        ids: &[usize],
        round: usize,
    ) -> Result<Vec<Draft>> {
        let t0 = self.now();
        let mut drafts: Vec<Draft> = ids
            .iter()
            .map(|&i| Draft {
                branch: i,
                tree: DraftTree::default(),
                kept_in_draft: Vec::new(),
            })
            .collect();
        let depths: Vec<usize> = ids
            .iter()
            .map(|&i| self.shape.depth().min(branches[i].room().saturating_sub(1)))
            .collect();
        // Per draft: the positions to extend at this level and the draft sequence of each.
        let mut frontier: Vec<Vec<(Option<usize>, SeqId)>> = ids
            .iter()
            .zip(&depths)
            .map(|(&i, &d)| {
                if d > 0 {
                    vec![(None, branches[i].draft_seq.expect("draft attached"))]
                } else {
                    vec![]
                }
            })
            .collect();
        let mut forks: Vec<SeqId> = Vec::new();
        for level in 0..self.shape.depth() {
            let mut batch = Vec::new();
            for (k, &i) in ids.iter().enumerate() {
                let b = &branches[i];
                for &(at, seq) in &frontier[k] {
                    match at {
                        None => {
                            for pos in b.draft_cached..b.tokens.len() {
                                batch.push(BatchToken {
                                    token: b.tokens[pos],
                                    pos,
                                    seqs: vec![seq],
                                    logits: pos + 1 == b.tokens.len(),
                                });
                            }
                        }
                        Some(node) => {
                            let token = drafts[k].tree.tokens[node];
                            if seq == b.draft_seq.expect("draft attached") {
                                drafts[k].kept_in_draft.push(token);
                            }
                            batch.push(BatchToken {
                                token,
                                pos: self.draft.seq_len(seq)?,
                                seqs: vec![seq],
                                logits: true,
                            });
                        }
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            let f0 = Instant::now();
            self.draft.forward(&batch)?;
            let elapsed = f0.elapsed().as_secs_f64();
            self.stats.draft_forwards += 1;
            let width = self.shape.0[level];
            let mut row = 0;
            for (k, &i) in ids.iter().enumerate() {
                let b = &mut branches[i];
                if frontier[k].is_empty() {
                    continue;
                }
                b.stats.draft_forwards += 1;
                b.stats.draft_s += elapsed;
                b.draft_cached = b.tokens.len();
                let mut next = Vec::new();
                for &(at, seq) in &frontier[k] {
                    let (children, proposal) = propose(
                        self.draft.logits(row),
                        width,
                        &b.draft_sampling,
                        &mut b.draft_rng,
                    );
                    row += 1;
                    drafts[k].tree.set_proposal(at, proposal);
                    for (c, token) in children.into_iter().enumerate() {
                        let node = drafts[k].tree.push(at, token);
                        if level + 1 < depths[k] {
                            // The first child continues its parent's sequence; the others fork it.
                            let child_seq = if c == 0 { seq } else { self.draft.fork(seq)? };
                            if c > 0 {
                                forks.push(child_seq);
                            }
                            next.push((Some(node), child_seq));
                        }
                    }
                }
                frontier[k] = next;
            }
        }
        for seq in forks {
            self.draft.release(seq);
        }
        let t1 = self.now();
        for (d, &depth) in drafts.iter().zip(&depths) {
            let index = branches[d.branch].index;
            self.record(index, EventKind::Draft, round, t0, t1, depth);
        }
        Ok(drafts)
    }

    /// Verifies the given drafts in one target forward and commits the result.
    fn verify_phase(
        &mut self,
        branches: &mut [Branch],
        drafts: Vec<Draft>,
        round: usize,
    ) -> Result<()> {
        let t0 = self.now();
        let mut batch = Vec::new();
        // Per draft: the sequence of each leaf path, and the row of the root.
        let mut paths: Vec<Vec<SeqId>> = Vec::new();
        let mut root_rows = Vec::new();
        let mut rows = 0;
        for d in &drafts {
            let b = &branches[d.branch];
            let leaves = d.tree.leaves();
            let mut seqs = vec![b.target_seq];
            for _ in 1..leaves.len() {
                seqs.push(self.target.fork(b.target_seq)?);
            }
            push_pending(&mut batch, b, &seqs);
            root_rows.push(rows);
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
                    pos: b.tokens.len() + depth_of(&d.tree, node),
                    seqs: on,
                    logits: true,
                });
            }
            paths.push(seqs);
        }
        let f0 = Instant::now();
        self.target.forward(&batch)?;
        let elapsed = f0.elapsed().as_secs_f64();
        self.stats.target_forwards += 1;
        let t1 = self.now();
        for ((d, seqs), root) in drafts.iter().zip(paths).zip(root_rows) {
            let b = &mut branches[d.branch];
            let target: &dyn Model = self.target;
            let row_of = |at: Option<usize>| target.logits(root + at.map_or(0, |n| n + 1));
            let verdict = verify(&d.tree, row_of, &b.sampling, &mut b.target_rng);
            // Keep the sequence of a path through the last accepted node.
            let leaves = d.tree.leaves();
            let keep = match verdict.accepted.last() {
                Some(&last) => leaves
                    .iter()
                    .position(|&l| d.tree.on_path(last, l))
                    .unwrap_or(0),
                None => 0,
            };
            for (k, &s) in seqs.iter().enumerate() {
                if k != keep {
                    self.target.release(s);
                }
            }
            b.target_seq = seqs[keep];
            b.target_cached = b.tokens.len() + verdict.accepted.len();
            self.target.truncate(b.target_seq, b.target_cached)?;
            b.stats.target_forwards += 1;
            b.stats.verify_s += elapsed;
            b.stats.drafted += depth_of_tree(&d.tree);
            b.stats.accepted += verdict.accepted.len();
            let committed_from = b.tokens.len();
            let mut open = true;
            for &node in &verdict.accepted {
                open = open && b.commit(d.tree.tokens[node], self.target);
            }
            if open {
                b.commit(verdict.next, self.target);
            }
            b.target_cached = b.target_cached.min(b.tokens.len().saturating_sub(1));
            // The draft cache keeps the drafted tokens that were committed.
            let reused = d
                .kept_in_draft
                .iter()
                .zip(&b.tokens[committed_from.min(b.tokens.len())..])
                .take_while(|(a, c)| a == c)
                .count();
            b.draft_cached = (committed_from + reused).min(b.tokens.len().saturating_sub(1));
            if let Some(seq) = b.draft_seq {
                self.draft.truncate(seq, b.draft_cached)?;
            }
            if b.is_done() {
                b.finished_at = t1;
            }
            let accepted = verdict.accepted.len();
            let index = b.index;
            self.record(index, EventKind::Verify, round, t0, t1, accepted);
        }
        Ok(())
    }
}

fn depth_of(tree: &DraftTree, node: usize) -> usize {
    let mut depth = 0;
    let mut cur = tree.parents[node];
    while let Some(p) = cur {
        depth += 1;
        cur = tree.parents[p];
    }
    depth
}

fn depth_of_tree(tree: &DraftTree) -> usize {
    (0..tree.len())
        .map(|n| depth_of(tree, n) + 1)
        .max()
        .unwrap_or(0)
}

/// The draft's candidates for one position: its `width` best tokens at
/// temperature 0, else `width` distinct tokens sampled without replacement.
fn propose(
    logits: &[f32],
    width: usize,
    sampling: &Sampling,
    rng: &mut impl Rng,
) -> (Vec<Token>, Proposal) {
    if sampling.is_greedy() {
        let mut order: Vec<usize> = (0..logits.len()).collect();
        let by_logit = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
        let w = width.min(order.len());
        order.select_nth_unstable_by(w - 1, by_logit);
        order.truncate(w);
        order.sort_unstable_by(by_logit);
        return (
            order.into_iter().map(|t| t as Token).collect(),
            Proposal::Greedy,
        );
    }
    let q = sampling.distribution(logits);
    let mut left = q.clone();
    let mut children = Vec::with_capacity(width);
    while children.len() < width && left.iter().any(|&x| x > 0.0) {
        let t = sample(&left, rng);
        children.push(t);
        left[t as usize] = 0.0;
        normalize(&mut left);
    }
    (children, Proposal::Sampled(q))
}

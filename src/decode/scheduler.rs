//! Speculative decoding: drafting token trees with the draft model, verifying
//! them with the target, and scheduling branches (one by one, or SeeD rounds).

use super::accept::{verify, DraftTree, Proposal};
use super::branch::Branch;
use super::cost::{self, CostModel};
use super::engine::push_pending;
use super::ngram;
use super::sampling::{normalize, sample, Sampling};
use super::{
    Drafter, EventKind, Result, RunStats, TraceEvent, TreeShape, VerifyPolicy, MAX_ADAPTIVE_DRAFT,
};
use crate::model::{BatchToken, Model, SeqId, Token};
use rand::Rng;
use std::time::Instant;

/// A branch's draft between drafting and verification.
struct Draft {
    branch: usize,
    tree: DraftTree,
    /// Drafted tokens left in the branch's own draft sequence (path 0).
    kept_in_draft: Vec<Token>,
    /// Drafted by the draft model (else by n-gram lookup).
    by_model: bool,
    /// The first token cost-aware drafting cut from it, if any.
    first_cut: Option<Token>,
}

pub(crate) struct Speculator<'a> {
    pub target: &'a mut dyn Model,
    /// The draft model, where the drafter uses one.
    pub draft: Option<&'a mut dyn Model>,
    pub shape: TreeShape,
    pub drafter: Drafter,
    pub adaptive_gamma: bool,
    /// What cost-aware drafting has learnt, where it is on.
    pub cost: Option<&'a mut CostModel>,
    /// Generated tokens of the finished branches of each request in the batch.
    pub finished: &'a [(u64, &'a [Token])],
    /// Past requests, for n-gram drafts (empty unless kept).
    pub history: &'a ngram::History,
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

    /// Drafts a tree for each of `ids`: an n-gram chain where the drafter
    /// looks them up and one is found, else with the draft model level by
    /// level, each level one batched draft forward over all the branches.
    /// Returns the drafts in `ids` order.
    fn draft_phase(
        &mut self,
        branches: &mut [Branch],
        ids: &[usize],
        round: usize,
    ) -> Result<Vec<Draft>> {
        let t0 = self.now();
        let depths: Vec<usize> = ids
            .iter()
            .map(|&i| {
                let b = &branches[i];
                let depth = if self.adaptive_gamma {
                    b.draft_len
                } else {
                    self.shape.depth()
                };
                depth.min(b.room().saturating_sub(1))
            })
            .collect();
        let mut drafts: Vec<Draft> = ids
            .iter()
            .zip(&depths)
            .map(|(&i, &depth)| {
                let chain = if self.drafter.uses_ngrams() {
                    ngram_draft(branches, self.finished, self.history, i, depth)
                } else {
                    Vec::new()
                };
                let mut tree = DraftTree::default();
                let mut at = None;
                for &token in &chain {
                    tree.set_proposal(at, Proposal::Greedy);
                    at = Some(tree.push(at, token));
                }
                Draft {
                    branch: i,
                    tree,
                    kept_in_draft: Vec::new(),
                    by_model: chain.is_empty() && self.drafter.uses_model(),
                    first_cut: None,
                }
            })
            .collect();
        // Per draft: the positions to extend at this level and the draft sequence of each.
        let mut frontier: Vec<Vec<(Option<usize>, SeqId)>> = ids
            .iter()
            .zip(&depths)
            .zip(&drafts)
            .map(|((&i, &d), draft)| {
                if d > 0 && draft.by_model {
                    vec![(None, branches[i].draft_seq.expect("draft attached"))]
                } else {
                    vec![]
                }
            })
            .collect();
        let max_depth = depths.iter().copied().max().unwrap_or(0);
        let mut forks: Vec<SeqId> = Vec::new();
        for level in 0..max_depth {
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
                                pos: drafted_from(b, &drafts[k].tree, node),
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
            let draft = self.draft.as_deref_mut().expect("drafter uses the model");
            let f0 = Instant::now();
            draft.forward(&batch)?;
            let elapsed = f0.elapsed().as_secs_f64();
            self.stats.draft_forwards += 1;
            let width = self.shape.0.get(level).copied().unwrap_or(1);
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
                        draft.logits(row),
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
                            let child_seq = if c == 0 { seq } else { draft.fork(seq)? };
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
        if let Some(draft) = self.draft.as_deref_mut() {
            for seq in forks {
                draft.release(seq);
            }
        }
        let t1 = self.now();
        for d in &drafts {
            let index = branches[d.branch].index;
            let depth = depth_of_tree(&d.tree);
            self.record(index, EventKind::Draft, round, t0, t1, depth);
        }
        Ok(drafts)
    }

    /// Cost-aware drafting: cuts each draft to the tokens worth their rows of
    /// the verify forward (see `cost::budget`); keeps them all until the
    /// forward's cost per row is known.
    fn trim_to_budget(&mut self, branches: &[Branch], drafts: &mut [Draft]) {
        let Some(cost) = self.cost.as_deref() else {
            return;
        };
        let Some(line) = cost.forwards.fit() else {
            return;
        };
        if drafts.iter().all(|d| d.tree.is_empty()) {
            return;
        }
        let base_rows = drafts
            .iter()
            .map(|d| branches[d.branch].tokens.len() - branches[d.branch].target_cached)
            .sum();
        let rates: Vec<f64> = drafts
            .iter()
            .map(|d| branches[d.branch].acceptance.branch_rate(&cost.overall))
            .collect();
        let lens: Vec<usize> = drafts.iter().map(|d| d.tree.len()).collect();
        let target: &dyn Model = self.target;
        let seconds = |rows| line.seconds(target.computed_rows(rows));
        let keep = cost::budget(&rates, &lens, base_rows, seconds);
        for (d, k) in drafts.iter_mut().zip(keep) {
            d.first_cut = d.tree.tokens.get(k).copied();
            d.tree.truncate_chain(k);
        }
    }

    /// Verifies the given drafts in one target forward and commits the result.
    fn verify_phase(
        &mut self,
        branches: &mut [Branch],
        mut drafts: Vec<Draft>,
        round: usize,
    ) -> Result<()> {
        self.trim_to_budget(branches, &mut drafts);
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
        if let Some(cost) = self.cost.as_deref_mut() {
            let rows = self.target.computed_rows(batch.len());
            cost.forwards.observe(rows, elapsed);
        }
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
            let drafted = depth_of_tree(&d.tree);
            b.stats.drafted += drafted;
            let accepted = verdict.accepted.len();
            b.stats.accepted += accepted;
            if self.adaptive_gamma && drafted > 0 {
                // A draft cut short by the budget and wholly accepted says
                // nothing about a longer one.
                if accepted < drafted {
                    b.draft_len = b.draft_len.saturating_sub(1).max(1);
                } else if d.first_cut.is_none() {
                    b.draft_len = (b.draft_len + 2).min(MAX_ADAPTIVE_DRAFT);
                }
            }
            let committed_from = b.tokens.len();
            let mut open = true;
            for &node in &verdict.accepted {
                open = open && b.commit(d.tree.tokens[node], self.target);
            }
            if open {
                b.commit(verdict.next, self.target);
            }
            if let Some(cost) = self.cost.as_deref_mut() {
                // A token cut from a wholly accepted draft is tried against
                // the token the target chose there (its acceptance test for
                // an n-gram token at any temperature), so a branch whose
                // drafts were all cut still learns whether they would pay.
                let cut_tried = d.first_cut.filter(|_| open && accepted == drafted);
                let hit = cut_tried.is_some_and(|t| t == verdict.next);
                let (hits, tried) = (
                    accepted + usize::from(hit),
                    drafted + usize::from(cut_tried.is_some()),
                );
                if tried > 0 {
                    b.acceptance.observe_branch(hits, tried);
                    cost.overall.observe(hits, tried, 1.0);
                }
            }
            b.target_cached = b.target_cached.min(b.tokens.len().saturating_sub(1));
            // The draft cache keeps the drafted tokens that were committed
            // (an n-gram draft left it as it was).
            if d.by_model {
                let reused = d
                    .kept_in_draft
                    .iter()
                    .zip(&b.tokens[committed_from.min(b.tokens.len())..])
                    .take_while(|(a, c)| a == c)
                    .count();
                b.draft_cached = committed_from + reused;
            }
            b.draft_cached = b.draft_cached.min(b.tokens.len().saturating_sub(1));
            if let (Some(seq), Some(draft)) = (b.draft_seq, self.draft.as_deref_mut()) {
                draft.truncate(seq, b.draft_cached)?;
            }
            if b.is_done() {
                b.finished_at = t1;
            }
            let index = b.index;
            self.record(index, EventKind::Verify, round, t0, t1, accepted);
        }
        Ok(())
    }
}

/// The n-gram draft of branch `i`: looked up in its own prompt and text,
/// then in the other branches of its request (their text, and the prompts of
/// other prompts), then in its request's finished branches; for a greedy
/// branch, past requests' where they match a longer suffix of its context
/// than those could. (A sampled token depends on the draft it was verified
/// against, so a sampled branch drafts from its own request only: its output
/// stays a function of its request and seed.)
fn ngram_draft(
    branches: &[Branch],
    finished: &[(u64, &[Token])],
    history: &ngram::History,
    i: usize,
    len: usize,
) -> Vec<Token> {
    let b = &branches[i];
    let mut others: Vec<&[Token]> = Vec::new();
    let mut prompts_seen = vec![b.prompt_index];
    for o in branches
        .iter()
        .filter(|o| o.request == b.request && o.index != b.index)
    {
        others.push(&o.tokens[o.prompt_len..]);
        if !prompts_seen.contains(&o.prompt_index) {
            prompts_seen.push(o.prompt_index);
            others.push(&o.tokens[..o.prompt_len]);
        }
    }
    others.extend(
        finished
            .iter()
            .filter(|(request, _)| *request == b.request)
            .map(|(_, tokens)| *tokens),
    );
    let local = ngram::lookup(&b.tokens, &others, len);
    if !b.sampling.is_greedy() {
        return local;
    }
    let min_key = if local.is_empty() {
        0
    } else {
        ngram::MAX_N + 1
    };
    let past = history.lookup(&b.tokens, min_key, len);
    if past.is_empty() {
        local
    } else {
        past
    }
}

/// Position in the draft sequence of drafted node `node`.
fn drafted_from(b: &Branch, tree: &DraftTree, node: usize) -> usize {
    b.tokens.len() + depth_of(tree, node)
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

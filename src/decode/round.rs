//! Executing a round's plan: drafting, then each verify group's forward and
//! commit, moving every branch through its states and recording the trace.

use super::branch::{Branch, BranchState};
use super::commit::Commit;
use super::config::{Drafter, TreeShape};
use super::cost::CostModel;
use super::draft::{self, Draft, Drafting};
use super::error::Result;
use super::faults;
use super::ngram::History;
use super::output::{EventKind, RunStats, TraceEvent};
use super::sampling::log_prob;
use super::scheduler::RoundPlan;
use super::verify;
use crate::model::{Model, Token};
use std::time::Instant;

/// What a round works with.
pub(crate) struct Round<'a> {
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
    pub history: &'a History,
    /// Forward counts of the whole batch.
    pub counters: &'a mut RunStats,
    /// The batch's clock.
    pub start: Instant,
    pub trace: Option<&'a mut Vec<TraceEvent>>,
}

impl Round<'_> {
    /// Carries out `plan` over the batch's branches.
    pub fn run(&mut self, branches: &mut [Branch], plan: &RoundPlan) -> Result<()> {
        match plan {
            RoundPlan::Idle => Ok(()),
            RoundPlan::Plain { branches: ids } => self.plain(branches, ids),
            RoundPlan::Speculative {
                drafting,
                groups,
                round,
            } => {
                let mut queue = self.draft_step(branches, drafting, *round)?;
                for group in groups {
                    let drafts: Vec<Draft> = group
                        .iter()
                        .map(|&k| queue[k].take().expect("each draft verified once"))
                        .collect();
                    self.verify_step(branches, drafts, *round)?;
                }
                Ok(())
            }
        }
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn record(&mut self, event: TraceEvent) {
        if let Some(trace) = self.trace.as_mut() {
            trace.push(event);
        }
    }

    /// Plain decoding: one token for each branch in one target forward.
    fn plain(&mut self, branches: &mut [Branch], ids: &[usize]) -> Result<()> {
        let mut tokens = Vec::new();
        for &i in ids {
            let b = &mut branches[i];
            b.move_to(BranchState::Verifying);
            b.push_pending(&mut tokens, &[b.target().seq]);
        }
        let t0 = Instant::now();
        faults::forward(self.target, &tokens, faults::TARGET_FORWARD)?;
        let seconds = t0.elapsed().as_secs_f64();
        self.counters.target_forwards += 1;
        let now = self.now();
        for (row, &i) in ids.iter().enumerate() {
            let b = &mut branches[i];
            b.set_target_cached_all();
            b.record_verify(seconds, 0, 0);
            let t = b.generated_tokens().len();
            let logits = self.target.logits(row);
            let token = b.target_sampler().choose(logits, t);
            b.commit(token, log_prob(logits, token), self.target);
            b.end_verify(now);
        }
        Ok(())
    }

    /// Drafts for every branch in `ids`; returns the queue of their drafts.
    fn draft_step(
        &mut self,
        branches: &mut [Branch],
        ids: &[usize],
        round: usize,
    ) -> Result<Vec<Option<Draft>>> {
        let t0 = self.now();
        for &i in ids {
            branches[i].move_to(BranchState::Drafting);
        }
        let drafted = Drafting {
            draft: self.draft.as_mut().map(|d| &mut **d as &mut dyn Model),
            shape: &self.shape,
            drafter: self.drafter,
            adaptive_gamma: self.adaptive_gamma,
            cost_aware: self.cost.is_some(),
            finished: self.finished,
            history: self.history,
        }
        .run(branches, ids)?;
        self.counters.draft_forwards += drafted.forwards;
        let t1 = self.now();
        for d in &drafted.drafts {
            let b = &mut branches[d.branch];
            b.move_to(BranchState::Queued);
            let event = event(b, EventKind::Draft, round, (t0, t1), d.depth());
            self.record(event);
        }
        Ok(drafted.drafts.into_iter().map(Some).collect())
    }

    /// Verifies a group of drafts in one target forward and commits the
    /// outcome to their branches.
    fn verify_step(
        &mut self,
        branches: &mut [Branch],
        mut drafts: Vec<Draft>,
        round: usize,
    ) -> Result<()> {
        if let Some(cost) = self.cost.as_deref() {
            draft::trim_to_budget(cost, self.target, branches, &mut drafts);
        }
        let t0 = self.now();
        for d in &drafts {
            branches[d.branch].move_to(BranchState::Verifying);
        }
        let out = verify::forward(self.target, branches, &drafts)?;
        self.counters.target_forwards += 1;
        if let Some(cost) = self.cost.as_deref_mut() {
            cost.forwards
                .observe(self.target.computed_rows(out.rows), out.seconds);
        }
        let t1 = self.now();
        let mut commit = Commit {
            target: &mut *self.target,
            draft: self.draft.as_mut().map(|d| &mut **d as &mut dyn Model),
            adaptive_gamma: self.adaptive_gamma,
            cost: self.cost.as_deref_mut(),
            seconds: out.seconds,
        };
        let mut events = Vec::with_capacity(drafts.len());
        for (k, ((d, paths), root)) in drafts.iter().zip(&out.paths).zip(&out.roots).enumerate() {
            let b = &mut branches[d.branch];
            let accepted = match commit.apply(b, d, paths, *root) {
                Ok(accepted) => accepted,
                Err(e) => {
                    // The drafts left uncommitted give back their paths' forks.
                    for &seq in out.paths[k + 1..].iter().flat_map(|p| &p[1..]) {
                        commit.target.release(seq);
                    }
                    return Err(e);
                }
            };
            b.end_verify(t1);
            events.push(event(b, EventKind::Verify, round, (t0, t1), accepted));
        }
        for e in events {
            self.record(e);
        }
        Ok(())
    }
}

fn event(
    b: &Branch,
    kind: EventKind,
    round: usize,
    (start_s, end_s): (f64, f64),
    tokens: usize,
) -> TraceEvent {
    TraceEvent {
        branch: b.origin().choice,
        kind,
        round,
        start_s,
        end_s,
        tokens,
    }
}

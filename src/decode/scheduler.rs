//! The scheduler: which branches take part in the next round and how their
//! drafts are verified. `schedule` only plans; `round` executes the plan and
//! commits its results.

use super::branch::{Branch, BranchState};
use super::config::{EngineKind, VerifyPolicy};
use std::collections::VecDeque;

/// What one round does.
#[derive(Debug, PartialEq)]
pub(crate) enum RoundPlan {
    /// No branch is ready.
    Idle,
    /// `ar`: one target forward over these branches, one token each.
    Plain { branches: Vec<usize> },
    /// These branches draft, then their drafts are verified group by group
    /// (positions in `drafting`), one target forward per group, in order.
    Speculative {
        drafting: Vec<usize>,
        groups: Vec<Vec<usize>>,
        /// The trace's round.
        round: usize,
    },
}

impl RoundPlan {
    /// The branches the round advances.
    pub fn branches(&self) -> &[usize] {
        match self {
            RoundPlan::Idle => &[],
            RoundPlan::Plain { branches } => branches,
            RoundPlan::Speculative { drafting, .. } => drafting,
        }
    }
}

/// Plans the next round. `sd` and `mcsd` take the oldest ready branch alone
/// (one branch at a time by definition; finished ones leave the front after
/// each step, so this is quick); `ar` and `seed` every ready branch, `seed`
/// verifying first come first served (a forward each) or all in one.
pub(crate) fn schedule(
    kind: EngineKind,
    policy: VerifyPolicy,
    branches: &VecDeque<Branch>,
    round: usize,
) -> RoundPlan {
    let ready = |i: &usize| branches[*i].state() == BranchState::Ready;
    let live: Vec<usize> = match kind {
        EngineKind::Sd | EngineKind::Mcsd => (0..branches.len()).find(ready).into_iter().collect(),
        _ => (0..branches.len()).filter(ready).collect(),
    };
    if live.is_empty() {
        return RoundPlan::Idle;
    }
    let groups = match (kind, policy) {
        (EngineKind::Ar, _) => return RoundPlan::Plain { branches: live },
        (EngineKind::Seed, VerifyPolicy::Batched) => vec![(0..live.len()).collect()],
        _ => (0..live.len()).map(|k| vec![k]).collect(),
    };
    let round = match kind {
        EngineKind::Seed => round,
        // The trace's round of `sd`/`mcsd` is the branch's own step.
        _ => branches[live[0]].steps(),
    };
    RoundPlan::Speculative {
        drafting: live,
        groups,
        round,
    }
}

//! Committing a verify forward's outcome to a branch, in one place: the
//! sequence it keeps, the tokens it gains, what the draft length and the
//! cost model learn, and what its draft cache still holds.

use super::accept::Verdict;
use super::branch::Branch;
use super::config::MAX_ADAPTIVE_DRAFT;
use super::cost::CostModel;
use super::draft::{self, Draft};
use super::error::Result;
use super::verify;
use crate::model::{Model, SeqId};

/// What committing reads and teaches.
pub(crate) struct Commit<'a> {
    pub target: &'a mut dyn Model,
    pub draft: Option<&'a mut dyn Model>,
    pub adaptive_gamma: bool,
    pub cost: Option<&'a mut CostModel>,
    /// Seconds of the verify forward.
    pub seconds: f64,
}

impl Commit<'_> {
    /// Applies the target's verdict on `draft` to branch `b`. Returns the
    /// number of draft tokens accepted.
    pub fn apply(
        &mut self,
        b: &mut Branch,
        draft: &Draft,
        paths: &[SeqId],
        root: usize,
    ) -> Result<usize> {
        let verdict = verify::verdict(self.target, root, draft, b);
        let keep = verify::kept_path(draft, &verdict);
        for (k, &seq) in paths.iter().enumerate() {
            if k != keep {
                self.target.release(seq);
            }
        }
        let accepted = verdict.accepted.len();
        b.set_target(paths[keep], b.tokens().len() + accepted);
        self.target.truncate(paths[keep], b.target().cached)?;
        let drafted = draft.depth();
        b.record_verify(self.seconds, drafted, accepted);
        if self.adaptive_gamma && drafted > 0 {
            adapt_length(b, draft, drafted, accepted);
        }
        let committed_from = b.tokens().len();
        let open = commit_tokens(b, draft, &verdict, self.target);
        if let Some(cost) = self.cost.as_deref_mut() {
            learn(cost, b, draft, &verdict, open);
        }
        b.clamp_target_cached();
        self.fix_draft_cache(b, draft, committed_from)?;
        Ok(accepted)
    }

    /// The draft cache keeps the drafted tokens that were committed (an
    /// n-gram draft left it as it was).
    fn fix_draft_cache(
        &mut self,
        b: &mut Branch,
        draft: &Draft,
        committed_from: usize,
    ) -> Result<()> {
        if draft.by_model {
            let reused = draft
                .kept_in_draft
                .iter()
                .zip(&b.tokens()[committed_from.min(b.tokens().len())..])
                .take_while(|(a, c)| a == c)
                .count();
            b.set_draft_cached(committed_from + reused);
        }
        b.clamp_draft_cached();
        if let (Some(kv), Some(model)) = (b.draft(), self.draft.as_deref_mut()) {
            model.truncate(kv.seq, kv.cached)?;
        }
        Ok(())
    }
}

/// Two tokens longer after a wholly accepted draft, one shorter otherwise. A
/// draft cut short by the budget and wholly accepted says nothing about a
/// longer one.
fn adapt_length(b: &mut Branch, draft: &Draft, drafted: usize, accepted: usize) {
    if accepted < drafted {
        b.set_draft_len(b.draft_len().saturating_sub(1).max(1));
    } else if draft.first_cut.is_none() {
        b.set_draft_len((b.draft_len() + 2).min(MAX_ADAPTIVE_DRAFT));
    }
}

/// Commits the accepted tokens and the target's own next token. Returns
/// whether the branch is still open.
fn commit_tokens(b: &mut Branch, draft: &Draft, verdict: &Verdict, target: &dyn Model) -> bool {
    let mut open = true;
    for (&node, &logprob) in verdict.accepted.iter().zip(&verdict.logprobs) {
        open = open && b.commit(draft.tree.tokens[node], logprob, target);
    }
    if open {
        b.commit(
            verdict.next,
            verdict.logprobs[verdict.accepted.len()],
            target,
        );
    }
    open
}

/// Teaches cost-aware drafting the draft's acceptance. A token cut from a
/// wholly accepted draft is tried against the token the target chose there
/// (its acceptance test for an n-gram token at any temperature), so a
/// branch whose drafts were all cut still learns whether they would pay.
fn learn(cost: &mut CostModel, b: &mut Branch, draft: &Draft, verdict: &Verdict, open: bool) {
    let (accepted, drafted) = (verdict.accepted.len(), draft.depth());
    let cut_tried = draft.first_cut.filter(|_| open && accepted == drafted);
    let hit = cut_tried.is_some_and(|t| t == verdict.next);
    let hits = accepted + usize::from(hit);
    let tried = drafted + usize::from(cut_tried.is_some());
    if tried > 0 {
        b.observe_acceptance(hits, tried);
        cost.observe(draft::ngram_class(b, draft), hits, tried);
    }
}

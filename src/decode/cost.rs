//! Cost-aware draft budgets: of the drafted tokens of a round, verify only
//! those whose expected yield pays for their rows of the target forward.
//!
//! Whether speculation pays depends on the hardware. On a GPU a forward of a
//! few dozen rows costs about what one row does, so long drafts pay; on this
//! kind of CPU every row costs about as much as the forward's fixed part, so
//! only near-certain draft tokens pay. Rather than a fixed draft length, the
//! scheduler learns the target forward's cost per row count from the
//! forwards it runs, and each branch's per-token acceptance from its recent
//! verifications, and keeps the number of draft tokens that maximises the
//! expected tokens per second of the verify forward (the idea of hardware-
//! aware draft trees in Sequoia and of dynamic draft trees in EAGLE-2, applied
//! to a whole round of branches). Which tokens are verified never changes
//! what is accepted: output stays the target's.

use std::collections::BTreeMap;

/// Weight of a forward's newest time in its row count's running mean.
const FORWARD_WEIGHT: f64 = 0.2;
/// Decay of a branch's acceptance counts per verification (a window of
/// about five verifications).
const BRANCH_DECAY: f64 = 0.8;
/// Pseudo-trials of the engine-wide rate in a branch's estimate.
const PRIOR_TRIALS: f64 = 2.0;
/// The engine-wide rate before any verification, as that many pseudo-trials.
const FIRST_RATE: f64 = 0.5;
const FIRST_TRIALS: f64 = 2.0;

/// Seconds of a target forward by the number of rows it computes.
#[derive(Clone, Debug, Default)]
pub(crate) struct ForwardCost {
    /// Running mean of the seconds of each row count seen.
    by_rows: BTreeMap<usize, f64>,
}

impl ForwardCost {
    /// Records a verify forward's time. Every width counts: a round of many
    /// branches verifies in forwards of hundreds of rows, where speculation
    /// pays least on a CPU (prompt forwards are not recorded).
    pub fn observe(&mut self, rows: usize, seconds: f64) {
        if rows == 0 || !seconds.is_finite() {
            return;
        }
        self.by_rows
            .entry(rows)
            .and_modify(|s| *s += FORWARD_WEIGHT * (seconds - *s))
            .or_insert(seconds);
    }

    /// A least-squares line through the row counts seen (fixed cost plus a
    /// cost per row, neither negative); `None` until two row counts have been
    /// seen.
    pub fn fit(&self) -> Option<Line> {
        if self.by_rows.len() < 2 {
            return None;
        }
        let n = self.by_rows.len() as f64;
        let mean_x = self.by_rows.keys().map(|&r| r as f64).sum::<f64>() / n;
        let mean_y = self.by_rows.values().sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (&r, &s) in &self.by_rows {
            let dx = r as f64 - mean_x;
            sxy += dx * (s - mean_y);
            sxx += dx * dx;
        }
        let per_row = (sxy / sxx).max(0.0);
        let fixed = (mean_y - per_row * mean_x).max(0.0);
        Some(Line { fixed, per_row })
    }
}

/// Predicted seconds of a forward: a fixed part plus a part per row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line {
    fixed: f64,
    per_row: f64,
}

impl Line {
    pub fn seconds(&self, rows: usize) -> f64 {
        self.fixed + self.per_row * rows as f64
    }
}

/// Per-token acceptance counts: of the draft tokens the target reached, how
/// many it accepted (a draft's tokens after its first rejection are not
/// trials).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Acceptance {
    hits: f64,
    trials: f64,
}

impl Acceptance {
    /// Counts one verification of a `drafted`-token chain, `accepted` of them
    /// accepted; `decay` weighs down what came before (1: keep all).
    pub fn observe(&mut self, accepted: usize, drafted: usize, decay: f64) {
        let trials = accepted + usize::from(accepted < drafted);
        self.hits = decay * self.hits + accepted as f64;
        self.trials = decay * self.trials + trials as f64;
    }

    /// Estimated chance that the target accepts the next draft token, with
    /// `prior_trials` pseudo-trials at rate `prior`.
    pub fn rate(&self, prior: f64, prior_trials: f64) -> f64 {
        (self.hits + prior * prior_trials) / (self.trials + prior_trials)
    }

    /// A branch's counts after one more verification.
    pub fn observe_branch(&mut self, accepted: usize, drafted: usize) {
        self.observe(accepted, drafted, BRANCH_DECAY);
    }

    /// A branch's rate, drawn towards the engine-wide `overall` counts.
    pub fn branch_rate(&self, overall: &Acceptance) -> f64 {
        self.rate(overall.rate(FIRST_RATE, FIRST_TRIALS), PRIOR_TRIALS)
    }
}

/// N-gram match lengths told apart: 2-3, 4-7, 8-15 and 16 or more tokens.
const KEY_CLASSES: usize = 4;

/// Which n-gram drafts share acceptance counts: those whose match was about
/// as long, verified greedily or by sampling. A long match (a repeated
/// prompt, a phrase the model wrote in an earlier call) is accepted far more
/// often than a 2-gram, so it is worth a longer draft (SuffixDecoding sizes
/// its drafts by match length too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NgramClass {
    /// Length of the context suffix the draft matched.
    pub key: usize,
    pub greedy: bool,
}

impl NgramClass {
    fn index(self) -> usize {
        let by_key = match self.key {
            0..=3 => 0,
            4..=7 => 1,
            8..=15 => 2,
            _ => KEY_CLASSES - 1,
        };
        2 * by_key + usize::from(self.greedy)
    }
}

/// What the scheduler learns across rounds for cost-aware drafting.
#[derive(Clone, Debug, Default)]
pub(crate) struct CostModel {
    pub forwards: ForwardCost,
    /// Acceptance over all branches so far.
    pub overall: Acceptance,
    /// Acceptance of n-gram drafts by [`NgramClass`].
    by_ngram: [Acceptance; 2 * KEY_CLASSES],
}

impl CostModel {
    /// A draft's estimated per-token acceptance: a model draft's is its
    /// branch's recent record; an n-gram draft's its class's counts, drawn
    /// towards that record (and, before the branch has one, the engine's).
    pub fn draft_rate(&self, branch: &Acceptance, ngram: Option<NgramClass>) -> f64 {
        let own = branch.branch_rate(&self.overall);
        match ngram {
            Some(class) => self.by_ngram[class.index()].rate(own, PRIOR_TRIALS),
            None => own,
        }
    }

    /// Counts one verified draft: `hits` of `tried` tokens accepted.
    pub fn observe(&mut self, ngram: Option<NgramClass>, hits: usize, tried: usize) {
        self.overall.observe(hits, tried, 1.0);
        if let Some(class) = ngram {
            self.by_ngram[class.index()].observe(hits, tried, 1.0);
        }
    }
}

/// How many draft tokens each draft keeps. `rates[k]` is draft `k`'s
/// estimated per-token acceptance and `lens[k]` its drafted length;
/// `base_rows` the rows the forward computes without any draft token;
/// `cost(rows)` the predicted seconds of a forward. Each draft yields one
/// token for sure and its j-th draft token `rate^j` more in expectation;
/// the kept tokens are the best-yielding ones, as many as maximise the
/// expected tokens per predicted second (ties: fewer rows).
pub(crate) fn budget(
    rates: &[f64],
    lens: &[usize],
    base_rows: usize,
    cost: impl Fn(usize) -> f64,
) -> Vec<usize> {
    let mut gains: Vec<(f64, usize, usize)> = rates
        .iter()
        .zip(lens)
        .enumerate()
        .flat_map(|(k, (&rate, &len))| {
            let rate = rate.clamp(0.0, 1.0);
            (1..=len).map(move |j| (rate.powi(j as i32), j, k))
        })
        .collect();
    // By yield; at equal yields the earlier tokens first, so that every
    // draft keeps a prefix and equally likely drafts share the rows.
    gains.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut tokens = rates.len() as f64;
    let mut best = (tokens / cost(base_rows), 0);
    for (n, &(gain, _, _)) in gains.iter().enumerate() {
        tokens += gain;
        let rate = tokens / cost(base_rows + n + 1);
        if rate > best.0 {
            best = (rate, n + 1);
        }
    }
    let mut keep = vec![0; rates.len()];
    for &(_, _, k) in &gains[..best.1] {
        keep[k] += 1;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_cost_fits_a_line_through_row_counts() {
        let mut cost = ForwardCost::default();
        cost.observe(4, 0.125);
        assert_eq!(
            cost.fit().map(|l| l.seconds(4)),
            None,
            "one row count is not a line"
        );
        cost.observe(8, 0.225);
        // A wide round's forward is fitted too.
        cost.observe(240, 6.025);
        let at = |rows| cost.fit().unwrap().seconds(rows);
        assert!((at(1) - 0.05).abs() < 1e-9, "{}", at(1));
        assert!((at(12) - 0.325).abs() < 1e-9, "{}", at(12));
        // A new time moves its row count's mean a fifth of the way.
        cost.observe(8, 0.325);
        assert!((cost.by_rows[&8] - 0.245).abs() < 1e-12);
    }

    #[test]
    fn forward_cost_is_never_negative() {
        let mut cost = ForwardCost::default();
        cost.observe(1, 0.2);
        cost.observe(2, 0.1);
        assert!(cost.fit().unwrap().seconds(4) >= 0.0);
        assert!((cost.fit().unwrap().seconds(50) - 0.15).abs() < 1e-9);
    }

    #[test]
    fn acceptance_counts_trials_up_to_the_first_rejection() {
        let mut a = Acceptance::default();
        a.observe(2, 4, 1.0); // 2 accepted, the third rejected
        a.observe(3, 3, 1.0); // all accepted
        assert!((a.rate(0.0, 0.0) - 5.0 / 6.0).abs() < 1e-12);
        // The prior weighs in as pseudo-trials.
        assert!((a.rate(0.5, 2.0) - 6.0 / 8.0).abs() < 1e-12);
        assert!((Acceptance::default().rate(0.3, 2.0) - 0.3).abs() < 1e-12);
    }

    #[test]
    fn ngram_drafts_are_rated_by_their_class() {
        let mut cost = CostModel::default();
        let long = NgramClass {
            key: 20,
            greedy: true,
        };
        let short = NgramClass {
            key: 2,
            greedy: true,
        };
        for _ in 0..20 {
            cost.observe(Some(long), 8, 8);
            cost.observe(Some(short), 0, 1);
        }
        let fresh = Acceptance::default();
        assert!(cost.draft_rate(&fresh, Some(long)) > 0.9);
        assert!(cost.draft_rate(&fresh, Some(short)) < 0.1);
        // A class with no counts yet: the branch's own rate.
        let sampled = NgramClass {
            key: 20,
            greedy: false,
        };
        let own = cost.draft_rate(&fresh, None);
        assert!((cost.draft_rate(&fresh, Some(sampled)) - own).abs() < 1e-12);
        // Every draft counts towards the engine-wide rate.
        assert!((cost.overall.rate(0.0, 0.0) - 160.0 / 180.0).abs() < 1e-12);
    }

    #[test]
    fn free_rows_take_every_draft_token() {
        assert_eq!(budget(&[0.1, 0.9], &[3, 2], 2, |_| 1.0), vec![3, 2]);
    }

    #[test]
    fn rows_as_dear_as_the_fixed_cost_take_only_likely_tokens() {
        // cost = 1 + rows: three branches alone yield 3 tokens per 4 s.
        let cost = |rows: usize| 1.0 + rows as f64;
        // A token accepted 95% of the time pays (3.95 / 5 > 3 / 4), one at 50% does not.
        assert_eq!(
            budget(&[0.95, 0.5, 0.5], &[1, 1, 1], 3, cost),
            vec![1, 0, 0]
        );
        // Expected tokens per second with 0..5 tokens of a 95% draft:
        // 0.750, 0.790, 0.809, 0.816, 0.8155, 0.811: three pay.
        assert_eq!(
            budget(&[0.95, 0.0, 0.0], &[5, 5, 5], 3, cost),
            vec![3, 0, 0]
        );
    }

    #[test]
    fn a_step_in_cost_is_crossed_only_when_the_whole_step_pays() {
        // Rows computed in groups of four: 3 base rows leave one free row.
        let cost = |rows: usize| 1.0 + rows.next_multiple_of(4) as f64;
        assert_eq!(budget(&[0.3, 0.2, 0.1], &[4, 4, 4], 3, cost), vec![1, 0, 0]);
        // Certain tokens fill whole groups: 3 base rows + 9 make 12.
        assert_eq!(budget(&[1.0, 1.0, 1.0], &[4, 4, 4], 3, cost), vec![3, 3, 3]);
    }
}

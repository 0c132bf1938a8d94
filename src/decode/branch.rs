//! One continuation being generated: its tokens, its sequences in the
//! models' KV caches, its text and the state the scheduler moves it through.

use super::cost::Acceptance;
use super::output::{BranchStats, Completion, FinishReason};
use super::sampling::Sampler;
use crate::model::{BatchToken, Model, SeqId, Token};
use std::sync::Arc;

/// Where a branch is in a round: `Ready` -> `Drafting` -> `Queued` ->
/// `Verifying` -> `Ready` again (plain decoding goes from `Ready` to
/// `Verifying`), until it is `Finished`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum BranchState {
    Ready,
    Drafting,
    /// Drafted; its draft waits for a verify forward.
    Queued,
    Verifying,
    /// `at`: seconds from the batch's start, unless it ended on admission.
    Finished {
        reason: FinishReason,
        at: Option<f64>,
    },
}

/// Whose branch it is: its request and place in the request's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The admitted request (see `batch`).
    pub request: u64,
    /// Choice index in the request's output (prompt-major), also for traces.
    pub choice: usize,
    pub prompt_index: usize,
    pub sample_index: usize,
}

/// Limits that end a branch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub max_tokens: usize,
    pub stop: Arc<[String]>,
    pub context: usize,
}

/// A branch's place in one model's KV cache: its sequence and how many of
/// its tokens that sequence holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KvSeq {
    pub seq: SeqId,
    pub cached: usize,
}

/// Everything a branch starts from.
pub(crate) struct BranchStart<'a> {
    pub origin: Origin,
    pub prompt: &'a [Token],
    /// Its target sequence, holding all of the prompt but its last token.
    pub target_seq: SeqId,
    /// Its draft sequence, likewise (speculative engines with a draft model).
    pub draft_seq: Option<SeqId>,
    pub target_sampler: Sampler,
    pub draft_sampler: Sampler,
    pub limits: Limits,
    pub draft_len: usize,
    pub admitted_at: f64,
}

pub(crate) struct Branch {
    origin: Origin,
    state: BranchState,
    /// Prompt and committed generated tokens.
    tokens: Vec<Token>,
    prompt_len: usize,
    /// The target's log-probability of each generated token.
    logprobs: Vec<f32>,
    target: KvSeq,
    draft: Option<KvSeq>,
    /// Generated text so far (bytes: a token may end inside a character).
    text: Vec<u8>,
    /// Length of `text` to report (cut before a stop string).
    text_len: usize,
    /// Bytes of `text` already handed out as streamed deltas.
    streamed: usize,
    /// The end token the target chose, if one ended it (not in `tokens`).
    ended_by: Option<Token>,
    target_sampler: Sampler,
    draft_sampler: Sampler,
    limits: Limits,
    stats: BranchStats,
    admitted_at: f64,
    /// Draft-verify steps taken (the trace's round for `sd`/`mcsd`).
    steps: usize,
    /// Its next draft's length (adapted: see `EngineConfig::adaptive_gamma`).
    draft_len: usize,
    /// Its recent per-token acceptance (for cost-aware drafting).
    acceptance: Acceptance,
}

impl Branch {
    /// A branch ready to decode, or finished at once if no token fits.
    pub fn new(start: BranchStart) -> Self {
        let cached = start.prompt.len() - 1;
        let mut b = Branch {
            origin: start.origin,
            state: BranchState::Ready,
            tokens: start.prompt.to_vec(),
            prompt_len: start.prompt.len(),
            logprobs: Vec::new(),
            target: KvSeq {
                seq: start.target_seq,
                cached,
            },
            draft: start.draft_seq.map(|seq| KvSeq { seq, cached }),
            text: Vec::new(),
            text_len: 0,
            streamed: 0,
            ended_by: None,
            target_sampler: start.target_sampler,
            draft_sampler: start.draft_sampler,
            limits: start.limits,
            stats: BranchStats::default(),
            admitted_at: start.admitted_at,
            steps: 0,
            draft_len: start.draft_len,
            acceptance: Acceptance::default(),
        };
        b.check_room();
        b
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }

    pub fn state(&self) -> BranchState {
        self.state
    }

    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    pub fn prompt(&self) -> &[Token] {
        &self.tokens[..self.prompt_len]
    }

    pub fn generated_tokens(&self) -> &[Token] {
        &self.tokens[self.prompt_len..]
    }

    pub fn target(&self) -> KvSeq {
        self.target
    }

    pub fn draft(&self) -> Option<KvSeq> {
        self.draft
    }

    pub fn ended_by(&self) -> Option<Token> {
        self.ended_by
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    pub fn draft_len(&self) -> usize {
        self.draft_len
    }

    pub fn acceptance(&self) -> &Acceptance {
        &self.acceptance
    }

    pub fn target_sampler(&self) -> &Sampler {
        &self.target_sampler
    }

    pub fn draft_sampler(&self) -> &Sampler {
        &self.draft_sampler
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, BranchState::Finished { .. })
    }

    pub fn finish_reason(&self) -> Option<FinishReason> {
        match self.state {
            BranchState::Finished { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Tokens the model may still add before a limit ends the branch.
    pub fn room(&self) -> usize {
        let generated = self.tokens.len() - self.prompt_len;
        let by_max = self.limits.max_tokens.saturating_sub(generated);
        let by_context = self.limits.context.saturating_sub(self.tokens.len() + 1);
        by_max.min(by_context)
    }

    /// Moves it on in its round; a finished branch stays finished.
    pub fn move_to(&mut self, next: BranchState) {
        use BranchState::*;
        if self.is_done() {
            return;
        }
        debug_assert!(
            matches!(
                (self.state, next),
                (Ready, Drafting)
                    | (Drafting, Queued)
                    | (Queued | Ready, Verifying)
                    | (Verifying, Ready)
            ),
            "branch moved from {:?} to {next:?}",
            self.state
        );
        self.state = next;
    }

    /// Takes a branch the round left part way (a forward failed) back to
    /// ready. Returns whether it was part way; if so its sequences are to be
    /// cut back to what it holds.
    pub fn roll_back(&mut self) -> bool {
        let part_way = matches!(
            self.state,
            BranchState::Drafting | BranchState::Queued | BranchState::Verifying
        );
        if part_way {
            self.state = BranchState::Ready;
            // Drafting counted the fed tokens as cached; the next forward
            // must feed the last one again for its logits.
            self.clamp_target_cached();
            self.clamp_draft_cached();
        }
        part_way
    }

    /// Ends its verification: ready for the next round, or finished now.
    pub fn end_verify(&mut self, now: f64) {
        match &mut self.state {
            BranchState::Finished { at, .. } => *at = at.or(Some(now)),
            _ => self.move_to(BranchState::Ready),
        }
    }

    /// Adds its uncached tokens to a target batch, in `seqs`, with logits
    /// for the last.
    pub fn push_pending(&self, batch: &mut Vec<BatchToken>, seqs: &[SeqId]) {
        let n = self.tokens.len();
        for pos in self.target.cached..n {
            batch.push(BatchToken {
                token: self.tokens[pos],
                pos,
                seqs: seqs.to_vec(),
                logits: pos + 1 == n,
            });
        }
    }

    /// Its tokens not yet in the target's KV cache.
    pub fn pending_rows(&self) -> usize {
        self.tokens.len() - self.target.cached
    }

    /// The target holds every committed token in `seq` (plain decoding).
    pub fn set_target_cached_all(&mut self) {
        self.target.cached = self.tokens.len();
    }

    /// The target's sequence after a verify forward and what of it to keep.
    pub fn set_target(&mut self, seq: SeqId, cached: usize) {
        self.target = KvSeq { seq, cached };
    }

    /// The draft model holds `cached` of its tokens (at most all but the last).
    pub fn set_draft_cached(&mut self, cached: usize) {
        if let Some(d) = self.draft.as_mut() {
            d.cached = cached;
        }
    }

    /// Keeps the target's cached count below the last token, which the next
    /// forward feeds (it was committed, not computed).
    pub fn clamp_target_cached(&mut self) {
        self.target.cached = self.target.cached.min(self.tokens.len().saturating_sub(1));
    }

    /// Likewise for the draft model's.
    pub fn clamp_draft_cached(&mut self) {
        let last = self.tokens.len().saturating_sub(1);
        if let Some(d) = self.draft.as_mut() {
            d.cached = d.cached.min(last);
        }
    }

    /// Counts a draft forward it took part in.
    pub fn record_draft_forward(&mut self, seconds: f64) {
        self.stats.draft_forwards += 1;
        self.stats.draft_s += seconds;
    }

    /// Counts a target forward it took part in, with its draft's outcome.
    pub fn record_verify(&mut self, seconds: f64, drafted: usize, accepted: usize) {
        self.stats.target_forwards += 1;
        self.stats.verify_s += seconds;
        self.stats.drafted += drafted;
        self.stats.accepted += accepted;
    }

    /// Counts one draft-verify step of `sd`/`mcsd`.
    pub fn count_step(&mut self) {
        self.steps += 1;
    }

    pub fn set_draft_len(&mut self, len: usize) {
        self.draft_len = len;
    }

    pub fn observe_acceptance(&mut self, hits: usize, tried: usize) {
        self.acceptance.observe_branch(hits, tried);
    }

    /// Ends the branch at once if no token may be added.
    fn check_room(&mut self) {
        if !self.is_done() && self.room() == 0 {
            self.finish(FinishReason::Length);
        }
    }

    fn finish(&mut self, reason: FinishReason) {
        self.state = BranchState::Finished { reason, at: None };
    }

    /// Commits one token chosen by the target, with the target's
    /// log-probability of it. Returns false once the branch has finished (the
    /// token is then dropped if it was an end token).
    pub fn commit(&mut self, token: Token, logprob: f32, model: &dyn Model) -> bool {
        if self.is_done() {
            return false;
        }
        if model.is_end(token) {
            self.finish(FinishReason::Stop);
            self.ended_by = Some(token);
            return false;
        }
        self.tokens.push(token);
        self.logprobs.push(logprob);
        let old = self.text.len();
        self.text.extend_from_slice(&model.token_bytes(token));
        self.text_len = self.text.len();
        if let Some(cut) = find_stop(&self.text, old, &self.limits.stop) {
            self.text_len = cut;
            self.finish(FinishReason::Stop);
            return false;
        }
        self.check_room();
        !self.is_done()
    }

    /// Text committed since the last call that can no longer change: while the
    /// branch runs, the bytes that may still start a stop string and an
    /// incomplete UTF-8 character are held back.
    pub fn take_delta(&mut self) -> String {
        let end = if self.is_done() {
            self.text_len
        } else {
            let hold = self
                .limits
                .stop
                .iter()
                .map(|s| s.len() - 1)
                .max()
                .unwrap_or(0);
            let end = self.text_len.saturating_sub(hold).max(self.streamed);
            match std::str::from_utf8(&self.text[self.streamed..end]) {
                Ok(_) => end,
                Err(e) => self.streamed + e.valid_up_to(),
            }
        };
        if end <= self.streamed {
            return String::new();
        }
        let delta = String::from_utf8_lossy(&self.text[self.streamed..end]).into_owned();
        self.streamed = end;
        delta
    }

    /// Its completion, its idle time counted up to `now` unless it finished
    /// earlier.
    pub fn into_completion(mut self, now: f64) -> Completion {
        let (reason, at) = match self.state {
            BranchState::Finished { reason, at } => (reason, at),
            _ => (FinishReason::Length, None),
        };
        let end = at.unwrap_or(now);
        let busy = self.stats.draft_s + self.stats.verify_s;
        self.stats.idle_s = (end - self.admitted_at - busy).max(0.0);
        Completion {
            prompt_index: self.origin.prompt_index,
            sample_index: self.origin.sample_index,
            text: String::from_utf8_lossy(&self.text[..self.text_len]).into_owned(),
            tokens: self.tokens[self.prompt_len..].to_vec(),
            logprobs: self.logprobs,
            finish_reason: reason,
            stats: self.stats,
        }
    }
}

/// Start of the first stop string that ends within the bytes added after `old`.
fn find_stop(text: &[u8], old: usize, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter_map(|s| {
            let s = s.as_bytes();
            let from = old.saturating_sub(s.len() - 1);
            text[from..]
                .windows(s.len())
                .position(|w| w == s)
                .map(|i| from + i)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::noise::Noise;
    use crate::decode::sampling::Sampling;
    use crate::model::tiny::{TinyConfig, TinyLm};

    fn branch(max_tokens: usize) -> Branch {
        let sampler = || Sampler::new(Sampling::default(), Noise::new(0, 0, 0));
        Branch::new(BranchStart {
            origin: Origin {
                request: 0,
                choice: 0,
                prompt_index: 0,
                sample_index: 0,
            },
            prompt: &[1, 2, 3],
            target_seq: SeqId(0),
            draft_seq: None,
            target_sampler: sampler(),
            draft_sampler: sampler(),
            limits: Limits {
                max_tokens,
                stop: Arc::from(Vec::new()),
                context: 64,
            },
            draft_len: 3,
            admitted_at: 0.0,
        })
    }

    #[test]
    fn a_round_moves_a_branch_through_its_states_until_it_finishes() {
        let model = TinyLm::new(TinyConfig::target());
        let mut b = branch(2);
        assert_eq!(
            (b.state(), b.target().cached, b.room()),
            (BranchState::Ready, 2, 2)
        );
        for state in [
            BranchState::Drafting,
            BranchState::Queued,
            BranchState::Verifying,
        ] {
            b.move_to(state);
            assert_eq!(b.state(), state);
        }
        assert!(b.commit(4, 0.0, &model));
        b.end_verify(1.0);
        assert_eq!(b.state(), BranchState::Ready);
        b.move_to(BranchState::Verifying);
        assert!(!b.commit(5, 0.0, &model), "max_tokens reached");
        b.end_verify(2.0);
        let finished = BranchState::Finished {
            reason: FinishReason::Length,
            at: Some(2.0),
        };
        assert_eq!(b.state(), finished);
        b.move_to(BranchState::Ready);
        assert_eq!(b.state(), finished, "a finished branch stays finished");
        let c = b.into_completion(5.0);
        assert_eq!(
            (c.tokens, c.finish_reason),
            (vec![4, 5], FinishReason::Length)
        );
        assert_eq!(c.stats.idle_s, 2.0);
    }

    #[test]
    fn a_branch_without_room_finishes_on_admission() {
        let b = branch(0);
        let at_once = BranchState::Finished {
            reason: FinishReason::Length,
            at: None,
        };
        assert_eq!(b.state(), at_once);
        assert_eq!(b.into_completion(3.0).stats.idle_s, 3.0);
    }

    #[test]
    fn stop_string_across_tokens() {
        let stops = vec!["\n\n".to_string(), "?".to_string()];
        assert_eq!(find_stop(b"ab\n", 2, &stops), None);
        assert_eq!(find_stop(b"ab\n\nc", 3, &stops), Some(2));
        assert_eq!(find_stop(b"what? x?", 3, &stops), Some(4));
    }
}

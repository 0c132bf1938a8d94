//! One continuation being generated: its tokens, its sequences, when it ends.

use super::cost::Acceptance;
use super::{BranchStats, Completion, FinishReason, Sampling};
use crate::model::{Model, SeqId, Token};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

pub(crate) struct Branch {
    /// Index among its request's branches (prompt-major), for traces.
    pub index: usize,
    /// The request it belongs to (see `batch`).
    pub request: u64,
    pub prompt_index: usize,
    pub sample_index: usize,
    /// Prompt and committed generated tokens.
    pub tokens: Vec<Token>,
    pub prompt_len: usize,
    pub target_seq: SeqId,
    /// Tokens of `tokens` already in the target's KV cache.
    pub target_cached: usize,
    pub draft_seq: Option<SeqId>,
    pub draft_cached: usize,
    /// Generated text so far (bytes: a token may end inside a character).
    pub text: Vec<u8>,
    /// Length of `text` to report (cut before a stop string).
    pub text_len: usize,
    pub finish: Option<FinishReason>,
    /// The end token the target chose, if one ended it (not in `tokens`).
    pub ended_by: Option<Token>,
    /// Separate streams so that results do not depend on scheduling order.
    pub target_rng: ChaCha8Rng,
    pub draft_rng: ChaCha8Rng,
    pub stats: BranchStats,
    /// Seconds from the batch's start when it was admitted and when it finished.
    pub admitted_at: f64,
    pub finished_at: f64,
    /// Its request's settings (requests in one batch may differ).
    pub sampling: Sampling,
    pub draft_sampling: Sampling,
    pub limits: Limits,
    /// Draft-verify steps taken (the trace's round for `sd`/`mcsd`).
    pub steps: usize,
    /// Its next draft's length when adapted (see `EngineConfig::adaptive_gamma`).
    pub draft_len: usize,
    /// Its recent per-token acceptance (for cost-aware drafting).
    pub acceptance: Acceptance,
    /// Bytes of `text` already handed out as streamed deltas.
    pub streamed: usize,
}

/// Limits that end a branch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub max_tokens: usize,
    pub stop: Arc<[String]>,
    pub context: usize,
}

impl Branch {
    pub fn new(
        index: usize,
        prompt_index: usize,
        sample_index: usize,
        prompt: &[Token],
        seed: u64,
        target_seq: SeqId,
    ) -> Self {
        let stream = |salt: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(salt);
            rng
        };
        Branch {
            index,
            request: 0,
            prompt_index,
            sample_index,
            tokens: prompt.to_vec(),
            prompt_len: prompt.len(),
            target_seq,
            target_cached: 0,
            draft_seq: None,
            draft_cached: 0,
            text: Vec::new(),
            text_len: 0,
            finish: None,
            ended_by: None,
            target_rng: stream(2 * index as u64),
            draft_rng: stream(2 * index as u64 + 1),
            stats: BranchStats::default(),
            admitted_at: 0.0,
            finished_at: 0.0,
            sampling: Sampling::default(),
            draft_sampling: Sampling::default(),
            limits: Limits::default(),
            steps: 0,
            draft_len: 1,
            acceptance: Acceptance::default(),
            streamed: 0,
        }
    }

    pub fn generated(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }

    pub fn is_done(&self) -> bool {
        self.finish.is_some()
    }

    /// Tokens the model may still add before a limit ends the branch.
    pub fn room(&self) -> usize {
        let by_max = self.limits.max_tokens.saturating_sub(self.generated());
        let by_context = self.limits.context.saturating_sub(self.tokens.len() + 1);
        by_max.min(by_context)
    }

    /// Ends the branch at once if no token may be added.
    pub fn check_room(&mut self) {
        if self.finish.is_none() && self.room() == 0 {
            self.finish = Some(FinishReason::Length);
        }
    }

    /// Commits one token chosen by the target. Returns false once the branch
    /// has finished (the token is then dropped if it was an end token).
    pub fn commit(&mut self, token: Token, model: &dyn Model) -> bool {
        if self.finish.is_some() {
            return false;
        }
        if model.is_end(token) {
            self.finish = Some(FinishReason::Stop);
            self.ended_by = Some(token);
            return false;
        }
        self.tokens.push(token);
        let old = self.text.len();
        self.text.extend_from_slice(&model.token_bytes(token));
        self.text_len = self.text.len();
        if let Some(cut) = find_stop(&self.text, old, &self.limits.stop) {
            self.text_len = cut;
            self.finish = Some(FinishReason::Stop);
            return false;
        }
        self.check_room();
        self.finish.is_none()
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

    pub fn into_completion(self) -> Completion {
        Completion {
            prompt_index: self.prompt_index,
            sample_index: self.sample_index,
            text: String::from_utf8_lossy(&self.text[..self.text_len]).into_owned(),
            tokens: self.tokens[self.prompt_len..].to_vec(),
            finish_reason: self.finish.unwrap_or(FinishReason::Length),
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
    use super::find_stop;

    #[test]
    fn stop_string_across_tokens() {
        let stops = vec!["\n\n".to_string(), "?".to_string()];
        assert_eq!(find_stop(b"ab\n", 2, &stops), None);
        assert_eq!(find_stop(b"ab\n\nc", 3, &stops), Some(2));
        assert_eq!(find_stop(b"what? x?", 3, &stops), Some(4));
    }
}

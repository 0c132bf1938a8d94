//! What a request gives back: completions, statistics and the trace.

use crate::model::Token;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context ran out.
    Length,
}

/// Per-completion statistics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BranchStats {
    pub drafted: usize,
    pub accepted: usize,
    /// Target forwards this branch took part in (prompt processing excluded).
    pub target_forwards: usize,
    pub draft_forwards: usize,
    pub draft_s: f64,
    pub verify_s: f64,
    /// Time alive but neither drafting nor verifying (waiting its turn).
    pub idle_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Completion {
    pub prompt_index: usize,
    pub sample_index: usize,
    pub text: String,
    pub tokens: Vec<Token>,
    /// The target's log-probability of each of `tokens` (its raw softmax;
    /// empty where the engine cannot tell, as a remote server's).
    pub logprobs: Vec<f32>,
    pub finish_reason: FinishReason,
    pub stats: BranchStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Draft,
    Verify,
}

/// One draft or verify event of one branch (times from the start of the run).
#[derive(Clone, Debug, Serialize)]
pub struct TraceEvent {
    pub branch: usize,
    pub kind: EventKind,
    /// Round of the scheduler (for `sd`/`mcsd`, the step of that branch).
    pub round: usize,
    pub start_s: f64,
    pub end_s: f64,
    /// Tokens drafted (draft) or accepted (verify).
    pub tokens: usize,
}

/// Statistics of a whole run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunStats {
    pub engine: String,
    pub wall_s: f64,
    pub prompt_tokens: usize,
    /// Prompt tokens of the target not computed: found in the prefix cache or
    /// shared with another prompt of the request.
    pub prompt_reused: usize,
    /// Prompts that left a kept completion part way (see `PrefillStats::seams`).
    pub prompt_seams: usize,
    /// Prompt tokens of the draft model not computed (0 without one).
    pub draft_prompt_reused: usize,
    /// Seconds spent processing prompts (target and draft), before decoding.
    pub prompt_s: f64,
    pub generated_tokens: usize,
    /// Generated tokens copied from an identical greedy sample (not decoded).
    pub copied_tokens: usize,
    pub target_forwards: usize,
    pub draft_forwards: usize,
    pub drafted: usize,
    pub accepted: usize,
}

impl RunStats {
    /// Adds another run's counts and time (the engine name is kept).
    pub fn add(&mut self, other: &RunStats) {
        self.wall_s += other.wall_s;
        self.prompt_tokens += other.prompt_tokens;
        self.prompt_reused += other.prompt_reused;
        self.prompt_seams += other.prompt_seams;
        self.draft_prompt_reused += other.draft_prompt_reused;
        self.prompt_s += other.prompt_s;
        self.generated_tokens += other.generated_tokens;
        self.copied_tokens += other.copied_tokens;
        self.target_forwards += other.target_forwards;
        self.draft_forwards += other.draft_forwards;
        self.drafted += other.drafted;
        self.accepted += other.accepted;
    }

    pub fn accept_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }

    pub fn tokens_per_s(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.generated_tokens as f64 / self.wall_s
        } else {
            0.0
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Output {
    /// In prompt order, then sample order.
    pub completions: Vec<Completion>,
    pub stats: RunStats,
    pub trace: Vec<TraceEvent>,
}

//! The decode layer: engines that turn a request into completions.
//!
//! `ar` decodes with the target alone; `sd` and `mcsd` draft and verify one
//! branch at a time (a chain, or a token tree); `seed` schedules all branches:
//! batched drafting, then first-come-first-served verification in rounds.

pub mod accept;
mod batch;
mod branch;
mod cost;
mod divergence;
mod engine;
mod ngram;
pub mod prefix;
pub mod sampling;
mod scheduler;

pub use batch::{Event, RequestId};
pub use divergence::{divergences_from, find_divergences, Divergence};
pub use engine::Engine;

pub use sampling::Sampling;

use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("prompt {index} has {tokens} tokens but the context holds {context}")]
    PromptTooLong {
        index: usize,
        tokens: usize,
        context: usize,
    },
    #[error("draft model {draft} does not share the vocabulary of target model {target} ({why})")]
    VocabMismatch {
        draft: String,
        target: String,
        why: String,
    },
    #[error("engine {0} needs a draft model")]
    NeedsDraft(EngineKind),
}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// One batch of work: `n` samples of each prompt.
#[derive(Clone, Debug)]
pub struct Request {
    /// Prompts as text, already in the model's chat format if wanted.
    pub prompts: Vec<String>,
    pub n: usize,
    pub sampling: Sampling,
    /// Temperature of the draft model; `None` uses the target's.
    pub draft_temperature: Option<f32>,
    pub max_tokens: usize,
    pub stop: Vec<String>,
    pub seed: u64,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            prompts: Vec::new(),
            n: 1,
            sampling: Sampling::default(),
            draft_temperature: None,
            max_tokens: 128,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

impl Request {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DecodeError::Invalid(m));
        if self.prompts.is_empty() {
            return bad("no prompt given".into());
        }
        if self.n == 0 {
            return bad("n must be at least 1".into());
        }
        let t = self.sampling.temperature;
        if !t.is_finite() || t < 0.0 {
            return bad(format!("temperature must be 0 or more, got {t}"));
        }
        if let Some(t) = self.draft_temperature {
            if !t.is_finite() || t < 0.0 {
                return bad(format!("draft temperature must be 0 or more, got {t}"));
            }
        }
        let p = self.sampling.top_p;
        if !(p > 0.0 && p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {p}"));
        }
        if self.stop.iter().any(String::is_empty) {
            return bad("a stop string is empty".into());
        }
        Ok(())
    }

    pub fn draft_sampling(&self) -> Sampling {
        self.sampling
            .with_temperature(self.draft_temperature.unwrap_or(self.sampling.temperature))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Ar,
    Sd,
    Mcsd,
    Seed,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Ar => "ar",
            EngineKind::Sd => "sd",
            EngineKind::Mcsd => "mcsd",
            EngineKind::Seed => "seed",
        })
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ar" => Ok(EngineKind::Ar),
            "sd" => Ok(EngineKind::Sd),
            "mcsd" => Ok(EngineKind::Mcsd),
            "seed" => Ok(EngineKind::Seed),
            _ => Err(format!(
                "unknown engine {s:?} (expected ar, sd, mcsd or seed)"
            )),
        }
    }
}

/// How the SeeD scheduler verifies the queued drafts of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyPolicy {
    /// One branch per target forward, in arrival order (the paper).
    Fcfs,
    /// Every queued draft in one target forward.
    Batched,
}

impl FromStr for VerifyPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fcfs" => Ok(VerifyPolicy::Fcfs),
            "batched" => Ok(VerifyPolicy::Batched),
            _ => Err(format!(
                "unknown verify policy {s:?} (expected fcfs or batched)"
            )),
        }
    }
}

/// Where the speculative engines' drafts come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Drafter {
    /// The draft model.
    Model,
    /// N-gram lookup in the branch's prompt and text and its siblings' (no
    /// draft model; a branch without a match decodes one token).
    Ngram,
    /// N-gram lookup first, the draft model where nothing matches.
    NgramModel,
}

impl Drafter {
    pub fn uses_model(self) -> bool {
        self != Drafter::Ngram
    }

    pub fn uses_ngrams(self) -> bool {
        self != Drafter::Model
    }
}

impl FromStr for Drafter {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "model" => Ok(Drafter::Model),
            "ngram" => Ok(Drafter::Ngram),
            "ngram+model" => Ok(Drafter::NgramModel),
            _ => Err(format!(
                "unknown drafter {s:?} (expected model, ngram or ngram+model)"
            )),
        }
    }
}

/// Longest draft of the adaptive draft length.
pub const MAX_ADAPTIVE_DRAFT: usize = 16;

/// The shape of a draft: children per node at each depth. `[1, 1, 1]` is a
/// chain of three tokens; `[2, 1, 1]` two candidates, each extended by two.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TreeShape(pub Vec<usize>);

impl TreeShape {
    pub fn chain(gamma: usize) -> Self {
        TreeShape(vec![1; gamma])
    }

    pub fn depth(&self) -> usize {
        self.0.len()
    }
}

impl FromStr for TreeShape {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let widths = s
            .split(',')
            .map(|w| match w.trim().parse::<usize>() {
                Ok(n) if (1..=8).contains(&n) => Ok(n),
                _ => Err(format!(
                    "tree shape {s:?}: each width must be a number from 1 to 8"
                )),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if widths.len() > 16 {
            return Err(format!("tree shape {s:?} is deeper than 16"));
        }
        Ok(TreeShape(widths))
    }
}

/// How an engine runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub kind: EngineKind,
    /// Draft shape of `sd` and `seed` when no tree is given: a chain of gamma.
    pub gamma: usize,
    /// Draft shape of `mcsd` (and of `seed` when given).
    pub tree: Option<TreeShape>,
    pub verify: VerifyPolicy,
    /// Record every draft and verify event.
    pub trace: bool,
    /// Keep prompt prefixes' KV across requests (see `prefix`).
    pub prefix_cache: bool,
    pub drafter: Drafter,
    /// Adapt each branch's draft length (chains only) to its acceptance:
    /// two longer after a fully accepted draft, one shorter otherwise,
    /// from 1 to [`MAX_ADAPTIVE_DRAFT`].
    pub adaptive_gamma: bool,
    /// Verify only the draft tokens whose expected yield pays for their rows
    /// of the target forward, from the forward costs and acceptance seen so
    /// far (chains only; see `cost`).
    pub cost_aware: bool,
    /// N-gram drafters also look up past requests' prompt ends and
    /// completions for greedy branches, where they match a longer suffix than
    /// the request's own text (see `ngram::History`).
    pub ngram_history: bool,
    /// Decode a greedy request's identical samples (same prompt, temperature
    /// 0) once and copy the completion: they would be the same tokens. Off by
    /// default so that tests exercise every branch; the command line turns it on.
    pub dedup_greedy: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::Seed,
            gamma: 3,
            tree: None,
            verify: VerifyPolicy::Fcfs,
            trace: false,
            prefix_cache: true,
            drafter: Drafter::Model,
            adaptive_gamma: false,
            cost_aware: false,
            ngram_history: false,
            dedup_greedy: false,
        }
    }
}

impl EngineConfig {
    /// A short name such as `seed-batched[2,1,1]` for reports.
    pub fn label(&self) -> String {
        let mut label = self.kind.to_string();
        if self.kind == EngineKind::Seed {
            label += if self.verify == VerifyPolicy::Fcfs {
                "-fcfs"
            } else {
                "-batched"
            };
        }
        if self.kind != EngineKind::Ar {
            let shape = self
                .shape()
                .0
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",");
            label += &format!("[{shape}]");
            label += match self.drafter {
                Drafter::Model => "",
                Drafter::Ngram => "+ngram-only",
                Drafter::NgramModel => "+ngram",
            };
            if self.adaptive_gamma {
                label += "+adaptive";
            }
            if self.cost_aware {
                label += "+cost";
            }
            if self.ngram_history {
                label += "+history";
            }
        }
        if self.dedup_greedy {
            label += "+dedup";
        }
        label
    }

    /// Whether the draft settings fit together.
    pub fn check(&self) -> std::result::Result<(), String> {
        let shape = self.shape();
        if shape.depth() == 0 {
            return Err("the draft length must be at least 1".into());
        }
        let tree = shape.0.iter().any(|&w| w != 1);
        if self.adaptive_gamma && tree {
            return Err("an adaptive draft length needs a chain draft, not a tree".into());
        }
        if self.cost_aware && tree {
            return Err("cost-aware drafting needs a chain draft, not a tree".into());
        }
        if self.ngram_history && (self.kind == EngineKind::Ar || !self.drafter.uses_ngrams()) {
            return Err("the n-gram history needs an n-gram drafter (ngram or ngram+model)".into());
        }
        Ok(())
    }

    /// The draft shape this configuration uses.
    pub fn shape(&self) -> TreeShape {
        match (&self.tree, self.kind) {
            (Some(t), _) => t.clone(),
            (None, EngineKind::Mcsd) => TreeShape(vec![2, 1, 1]),
            (None, _) => TreeShape::chain(self.gamma),
        }
    }
}

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
    pub tokens: Vec<crate::model::Token>,
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

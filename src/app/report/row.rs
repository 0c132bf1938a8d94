//! One row of `seed bench`'s results.

use serde::Serialize;

/// What one configuration did over all problems.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    pub config: String,
    pub engine: String,
    pub wall_s: f64,
    pub speedup_vs_ar: Option<f64>,
    pub speedup_vs_sd: Option<f64>,
    /// Over `baseline` (ar+pc+dedup), where one of the rows runs it.
    pub speedup_vs_baseline: Option<f64>,
    pub tokens_per_s: f64,
    pub accept_rate: f64,
    /// Drafted tokens accepted per target forward (0 for `ar`).
    pub accepted_per_target_forward: f64,
    pub target_forwards_per_token: f64,
    pub generated_tokens: usize,
    pub prompt_tokens: usize,
    pub prompt_tokens_reused: usize,
    /// Prompts that left a kept completion part way (a seam or a cut step).
    pub prompt_seams: usize,
    /// Prompt tokens cached, untimed, before each run: the text every
    /// problem's prompts begin with (0 with `--cold`).
    pub warm_prompt_tokens: usize,
    /// Seconds of prompt processing, which no decoding method shortens.
    pub prompt_s: f64,
    /// `prompt_s` as a share of `wall_s`.
    pub prompt_share: f64,
    pub requests: usize,
    pub correct: usize,
    pub problems: usize,
    /// Whether every tree equals the reference configuration's.
    pub identical: bool,
    /// Problems whose tree differs from the reference's.
    pub differing: Vec<String>,
}

//! A request: n samples of each of its prompts, and how they are sampled.

use super::error::{DecodeError, Result};
use super::sampling::Sampling;

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

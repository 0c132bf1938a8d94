//! Failpoints where a model call can fail, for fault-injection tests. They
//! exist with the `failpoints` feature and compile to nothing without it. A
//! test turns one on with, e.g., `fail::cfg(TARGET_FORWARD, "1*return(cache-full)")`:
//! the argument picks the error (`cache-full`, `out-of-sequences`, anything
//! else a failed forward).

use crate::model::{BatchToken, Model, ModelError, Result};

/// Every target forward of a round (plain decoding or verification).
pub const TARGET_FORWARD: &str = "target-forward";
/// Every draft-model forward of a drafting step.
pub const DRAFT_FORWARD: &str = "draft-forward";
/// Every prompt-processing forward (with or without the prefix cache).
pub const PREFILL_FORWARD: &str = "prefill-forward";
/// The start of every engine step: `panic` kills the engine.
pub const STEP: &str = "engine-step";

/// `model.forward(batch)`, unless failpoint `point` says it fails.
pub(crate) fn forward(model: &mut dyn Model, batch: &[BatchToken], point: &str) -> Result<()> {
    fail::fail_point!(point, |how: Option<String>| Err(injected(point, how)));
    let _ = point;
    model.forward(batch)
}

/// Where a test may kill the engine.
pub(crate) fn step() {
    fail::fail_point!(STEP);
}

#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
fn injected(point: &str, how: Option<String>) -> ModelError {
    match how.as_deref() {
        Some("cache-full") => ModelError::CacheFull(0),
        Some("out-of-sequences") => ModelError::OutOfSequences(0),
        _ => ModelError::Forward(format!("fault injected at {point}")),
    }
}

//! The decode layer: engines that turn a request into completions.
//!
//! `ar` decodes with the target alone; `sd` and `mcsd` draft and verify one
//! branch at a time (a chain, or a token tree); `seed` schedules all branches:
//! batched drafting, then first-come-first-served verification in rounds.
//!
//! A step of the engine is plan, execute, commit: `scheduler` plans a round
//! (which branches draft, which drafts are verified together), `round`
//! executes it through `draft` and `verify`, and `commit` applies each
//! verdict to its branch; `batch` then hands out text and finished requests.

pub mod accept;
mod admission;
mod batch;
mod branch;
mod commit;
mod config;
mod cost;
mod dedup;
mod divergence;
mod draft;
mod engine;
mod error;
pub mod faults;
mod ngram;
pub mod noise;
mod output;
mod owned;
mod prefill;
pub mod prefix;
pub mod probs;
mod request;
mod round;
pub mod sampling;
mod scheduler;
mod verify;

pub use admission::{Capacity, Needs, Tokenized};
pub use batch::{Event, RequestId};
pub use config::{Drafter, EngineConfig, EngineKind, TreeShape, VerifyPolicy, MAX_ADAPTIVE_DRAFT};
pub use divergence::{divergences_from, find_divergences, Divergence};
pub use engine::Engine;
pub use error::{DecodeError, Result};
pub use output::{BranchStats, Completion, EventKind, FinishReason, Output, RunStats, TraceEvent};
pub use request::Request;
pub use sampling::Sampling;

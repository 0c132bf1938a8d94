//! seed: scheduled speculative decoding for fast tree-search reasoning.
//!
//! Layers depend one way: `app` -> `serve` -> `search` -> `decode` -> `model`;
//! `fetch` (installing models and data) sits below `app`.

pub mod app;
pub mod choice;
pub mod decode;
pub mod fetch;
pub mod model;
pub mod search;
pub mod serve;

//! seed: scheduled speculative decoding for fast tree-search reasoning.
//!
//! Layers depend one way: `app` -> `serve` -> `search` -> `decode` -> `model`.

pub mod app;
pub mod choice;
pub mod decode;
pub mod model;
pub mod search;
pub mod serve;

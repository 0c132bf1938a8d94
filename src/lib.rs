//! seed: scheduled speculative decoding for fast tree-search reasoning.
//!
//! Layers depend one way: `app` -> `search` -> `decode` -> `model`.

pub mod app;
pub mod decode;
pub mod model;
pub mod search;

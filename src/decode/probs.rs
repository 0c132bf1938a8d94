//! A distribution over the vocabulary, kept as its tokens of nonzero
//! probability: sampling with top-k leaves k of 151 936.

use crate::model::Token;

/// A distribution over the vocabulary as its tokens of nonzero probability,
/// in token order (top-k keeps k of 151 936).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Probs {
    pub entries: Vec<(Token, f32)>,
}

impl Probs {
    /// From one probability per token.
    pub fn from_dense(p: &[f32]) -> Probs {
        let entries = (p.iter().enumerate())
            .filter(|(_, &px)| px > 0.0)
            .map(|(x, &px)| (x as Token, px))
            .collect();
        Probs { entries }
    }

    /// One probability per token of a vocabulary of `len`.
    pub fn to_dense(&self, len: usize) -> Vec<f32> {
        let mut p = vec![0.0; len];
        for &(x, px) in &self.entries {
            p[x as usize] = px;
        }
        p
    }
}

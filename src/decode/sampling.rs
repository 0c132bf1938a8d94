//! Turning logits into the distribution a token is sampled from.

use super::noise::Noise;
use crate::model::Token;
use rand::Rng;

/// How tokens are chosen from the logits.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Sampling {
    /// 0 picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep the smallest set of most likely tokens whose mass reaches top_p (1 keeps all).
    pub top_p: f32,
    /// Keep the k most likely tokens (0 keeps all).
    pub top_k: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
        }
    }
}

impl Sampling {
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    pub fn with_temperature(&self, temperature: f32) -> Sampling {
        Sampling {
            temperature,
            ..self.clone()
        }
    }

    /// The sampling distribution over the vocabulary: softmax(logits / T), then
    /// top-k and top-p, renormalised. Only for a positive temperature.
    pub fn distribution(&self, logits: &[f32]) -> Vec<f32> {
        debug_assert!(!self.is_greedy());
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let inv_t = 1.0 / self.temperature;
        let mut p: Vec<f32> = logits.iter().map(|&l| ((l - max) * inv_t).exp()).collect();
        let k = if self.top_k == 0 {
            p.len()
        } else {
            self.top_k.min(p.len())
        };
        if k < p.len() || self.top_p < 1.0 {
            let mut order: Vec<usize> = (0..p.len()).collect();
            // Ties broken by token id so that the kept set is deterministic.
            let by_prob = |a: &usize, b: &usize| p[*b].total_cmp(&p[*a]).then(a.cmp(b));
            if k < order.len() {
                order.select_nth_unstable_by(k - 1, by_prob);
                order.truncate(k);
            }
            order.sort_unstable_by(by_prob);
            let total: f32 = order.iter().map(|&i| p[i]).sum();
            let mut kept = 0;
            let mut mass = 0.0;
            for &i in &order {
                kept += 1;
                mass += p[i] / total;
                if mass >= self.top_p {
                    break;
                }
            }
            let mut filtered = vec![0.0; p.len()];
            for &i in &order[..kept] {
                filtered[i] = p[i];
            }
            p = filtered;
        }
        normalize(&mut p);
        p
    }
}

/// A branch's settings for one model with the branch's noise: the token at
/// each position is a function of the logits and the position alone.
#[derive(Clone, Debug)]
pub struct Sampler {
    pub sampling: Sampling,
    noise: Noise,
}

impl Sampler {
    pub fn new(sampling: Sampling, noise: Noise) -> Self {
        Sampler { sampling, noise }
    }

    /// The token at generated position `t`: the most likely at temperature
    /// 0, else the noise's pick from the processed distribution.
    pub fn choose(&self, logits: &[f32], t: usize) -> Token {
        if self.sampling.is_greedy() {
            argmax(logits)
        } else {
            self.noise.pick(t, &self.sampling.distribution(logits))
        }
    }

    /// A draft's `width` candidates at position `t`: its best tokens at
    /// temperature 0, else the best of the noise's race under its
    /// distribution (the first is what it would sample).
    pub fn candidates(&self, logits: &[f32], t: usize, width: usize) -> Vec<Token> {
        if !self.sampling.is_greedy() {
            return self
                .noise
                .best(t, &self.sampling.distribution(logits), width);
        }
        let mut order: Vec<usize> = (0..logits.len()).collect();
        let by_logit = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
        let w = width.min(order.len());
        order.select_nth_unstable_by(w - 1, by_logit);
        order.truncate(w);
        order.sort_unstable_by(by_logit);
        order.into_iter().map(|t| t as Token).collect()
    }
}

/// Index of the largest logit; the lowest index wins a tie.
pub fn argmax(logits: &[f32]) -> Token {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as Token
}

pub fn normalize(p: &mut [f32]) {
    let sum: f32 = p.iter().sum();
    if sum > 0.0 {
        p.iter_mut().for_each(|x| *x /= sum);
    }
}

/// Draws an index from a distribution (which must sum to about 1).
pub fn sample(p: &[f32], rng: &mut impl Rng) -> Token {
    let mut u: f32 = rng.gen::<f32>() * p.iter().sum::<f32>();
    let mut last_nonzero = 0;
    for (i, &x) in p.iter().enumerate() {
        if x > 0.0 {
            last_nonzero = i;
            if u < x {
                return i as Token;
            }
            u -= x;
        }
    }
    // Rounding left u just above the total: take the last possible token.
    last_nonzero as Token
}

//! Turning logits into the distribution a token is sampled from.

use super::noise::Noise;
use super::probs::Probs;
use crate::model::Token;
use rand::Rng;
use std::collections::BinaryHeap;

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
    pub fn distribution(&self, logits: &[f32]) -> Probs {
        debug_assert!(!self.is_greedy());
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let inv_t = 1.0 / self.temperature;
        let weight = |l: f32| ((l - max) * inv_t).exp();
        let mut order: Vec<(Token, f32)> = match self.top_k {
            0 => (0..logits.len())
                .map(|i| (i as Token, weight(logits[i])))
                .collect(),
            k => top_k_candidates(logits, k, max, inv_t)
                .into_iter()
                .map(|i| (i, weight(logits[i as usize])))
                .collect(),
        };
        let k = if self.top_k == 0 {
            order.len()
        } else {
            self.top_k.min(order.len())
        };
        if k < logits.len() || self.top_p < 1.0 {
            // Ties broken by token id so that the kept set is deterministic.
            let by_prob =
                |a: &(Token, f32), b: &(Token, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            if k < order.len() {
                order.select_nth_unstable_by(k - 1, by_prob);
                order.truncate(k);
            }
            order.sort_unstable_by(by_prob);
            let total: f32 = order.iter().map(|e| e.1).sum();
            let mut kept = 0;
            let mut mass = 0.0;
            for e in &order {
                kept += 1;
                mass += e.1 / total;
                if mass >= self.top_p {
                    break;
                }
            }
            order.truncate(kept);
            order.sort_unstable_by_key(|e| e.0);
        }
        order.retain(|e| e.1 > 0.0);
        let sum: f32 = order.iter().map(|e| e.1).sum();
        if sum > 0.0 {
            order.iter_mut().for_each(|e| e.1 /= sum);
        }
        Probs { entries: order }
    }
}

/// Every token that can be among the `k` most likely, in token order: those
/// whose scaled logit `(l - max) / T` is within a margin of the k-th largest,
/// far wider than the rounding of `exp` that can tie two weights. Where the
/// k-th weight is below f32's normal range (rounding coarser), every token.
fn top_k_candidates(logits: &[f32], k: usize, max: f32, inv_t: f32) -> Vec<Token> {
    const MARGIN: f32 = 1e-3;
    let kth = (kth_largest(logits, k) - max) * inv_t;
    let floor = if kth.exp() >= f32::MIN_POSITIVE {
        kth - MARGIN
    } else {
        f32::NEG_INFINITY
    };
    (0..logits.len())
        .filter(|&i| (logits[i] - max) * inv_t >= floor)
        .map(|i| i as Token)
        .collect()
}

/// The `k`-th largest of `values` (k >= 1; the smallest if there are fewer),
/// by a heap of the k largest seen: most values cost one comparison.
fn kth_largest(values: &[f32], k: usize) -> f32 {
    use std::cmp::Reverse;
    let mut heap: BinaryHeap<Reverse<u32>> = BinaryHeap::with_capacity(k + 1);
    for &v in values {
        let key = Reverse(ordered_bits(v));
        if heap.len() < k {
            heap.push(key);
        } else if heap.peek().is_some_and(|min| key < *min) {
            heap.pop();
            heap.push(key);
        }
    }
    heap.peek()
        .map_or(f32::NEG_INFINITY, |min| from_ordered_bits(min.0))
}

/// A float's bits reordered so that integer order is `total_cmp`'s order.
fn ordered_bits(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

fn from_ordered_bits(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 {
        key & !(1 << 31)
    } else {
        !key
    })
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

/// The model's own log-probability of `token` (softmax of the raw logits, no
/// temperature or truncation): how sure the model was of what it wrote.
/// Lane-wise, so that it vectorizes: libm's `exp` over 151 936 logits took
/// 5-10x as long as this, per generated token.
pub fn log_prob(logits: &[f32], token: Token) -> f32 {
    let max = lanes(logits, f32::NEG_INFINITY, f32::max);
    let max = max.into_iter().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = lanes(logits, 0.0, |acc, l| acc + exp_poly(l - max))
        .into_iter()
        .sum();
    logits[token as usize] - max - sum.ln()
}

const LANES: usize = 16;

/// Folds `values` into LANES independent accumulators (value i into lane i
/// mod LANES), which the compiler keeps in vector registers.
fn lanes(values: &[f32], init: f32, fold: impl Fn(f32, f32) -> f32) -> [f32; LANES] {
    let mut acc = [init; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = fold(*a, v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(rest) {
        *a = fold(*a, v);
    }
    acc
}

/// e^x for x <= 0 within 1e-7 relative (x clamped at -87): x = n ln2 + r, a
/// degree-7 Taylor polynomial for e^r, and 2^n built in the exponent bits.
#[inline(always)]
fn exp_poly(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // n + 127 lands in the low mantissa bits of 1.5 * 2^23 + n + 127.
    p * f32::from_bits((n + (12_582_912.0 + 127.0)).to_bits() << 23)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The distribution as it was computed over the whole vocabulary before
    /// `Probs` (the reference the sparse form must equal bit for bit).
    fn dense_reference(s: &Sampling, logits: &[f32]) -> Vec<f32> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let inv_t = 1.0 / s.temperature;
        let mut p: Vec<f32> = logits.iter().map(|&l| ((l - max) * inv_t).exp()).collect();
        let k = if s.top_k == 0 {
            p.len()
        } else {
            s.top_k.min(p.len())
        };
        if k < p.len() || s.top_p < 1.0 {
            let mut order: Vec<usize> = (0..p.len()).collect();
            let by_prob = |a: &usize, b: &usize| p[*b].total_cmp(&p[*a]).then(a.cmp(b));
            if k < order.len() {
                order.select_nth_unstable_by(k - 1, by_prob);
                order.truncate(k);
            }
            order.sort_unstable_by(by_prob);
            let total: f32 = order.iter().map(|&i| p[i]).sum();
            let (mut kept, mut mass) = (0, 0.0);
            for &i in &order {
                kept += 1;
                mass += p[i] / total;
                if mass >= s.top_p {
                    break;
                }
            }
            let mut filtered = vec![0.0; p.len()];
            for &i in &order[..kept] {
                filtered[i] = p[i];
            }
            p = filtered;
        }
        let sum: f32 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= sum);
        p
    }

    /// Logits flat, peaked, with ties, and with a top far above the rest.
    fn logit_rows() -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 3000;
        let mut rows = vec![
            (0..n)
                .map(|_| rng.gen_range(-10.0f32..10.0))
                .collect::<Vec<_>>(),
            (0..n)
                .map(|_| rng.gen_range(-2.0f32..2.0).round())
                .collect(),
            (0..n)
                .map(|i| {
                    if i % 97 == 0 {
                        30.0
                    } else {
                        rng.gen_range(-5.0..5.0)
                    }
                })
                .collect(),
        ];
        let mut spiked: Vec<f32> = (0..n).map(|_| rng.gen_range(-100.0f32..0.0)).collect();
        spiked[17] = 90.0;
        rows.push(spiked);
        rows
    }

    #[test]
    fn the_sparse_distribution_is_the_dense_one_bit_for_bit() {
        for temperature in [0.3, 0.7, 1.0, 1.5] {
            for top_k in [0, 1, 40, 2999, 5000] {
                for top_p in [0.5, 0.95, 1.0] {
                    let s = Sampling {
                        temperature,
                        top_p,
                        top_k,
                    };
                    for (r, row) in logit_rows().iter().enumerate() {
                        let got = s.distribution(row).to_dense(row.len());
                        let want = dense_reference(&s, row);
                        let bits = |p: &[f32]| p.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "{s:?} row {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn log_prob_is_the_log_softmax_of_the_raw_logits() {
        for row in logit_rows() {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let sum: f64 = row.iter().map(|&l| (l as f64 - max).exp()).sum();
            for token in [0, 17, 500, 2999] {
                let want = row[token] as f64 - max - sum.ln();
                let got = log_prob(&row, token as Token) as f64;
                assert!(
                    (got - want).abs() < 1e-4 * want.abs().max(1.0),
                    "{got} {want}"
                );
            }
        }
        let small = [1.0f32, 2.0, 3.0];
        let total: f32 = (0..3).map(|t| log_prob(&small, t).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }

    #[test]
    fn kth_largest_counts_from_the_top() {
        let v = [3.0, -1.0, 7.5, -0.0, 0.0, 7.5, -20.0];
        assert_eq!(kth_largest(&v, 1), 7.5);
        assert_eq!(kth_largest(&v, 2), 7.5);
        assert_eq!(kth_largest(&v, 3), 3.0);
        assert_eq!(kth_largest(&v, 7), -20.0);
        assert_eq!(kth_largest(&v, 9), -20.0);
        for x in [-3.5f32, -0.0, 0.0, 1e-40, 2.0, f32::INFINITY] {
            assert_eq!(from_ordered_bits(ordered_bits(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn exp_poly_is_within_a_few_ulps_of_exp() {
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_poly(x) as f64, (x as f64).exp());
            assert!(
                (got / want - 1.0).abs() < 4e-7,
                "exp({x}): {got} against {want}"
            );
            x += 0.0137;
        }
        assert_eq!(exp_poly(0.0), 1.0);
        assert!(exp_poly(-1000.0) < 2e-38);
    }
}

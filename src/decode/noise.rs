//! Position-keyed randomness. The noise that picks a branch's token at
//! generated position `t` is a pure function of (request seed, prompt index,
//! sample index, `t`): ChaCha8 keyed by the first three, its stream the
//! position, one word per vocabulary entry. Whatever engine decodes a branch
//! and whatever drafts it is checked against, the same noise picks the same
//! token from the same distribution, so every engine returns `ar`'s samples.
//!
//! A token is picked by an exponential race (the Gumbel-max trick): each
//! token `x` draws `E_x = -ln u_x` and the smallest `E_x / p_x` wins, which
//! picks `x` with probability `p_x`. A draft model racing on its own
//! distribution with the same `E` agrees with the target as often as the
//! two distributions allow it to (Gumbel coupling).
//!
//! Distributions come as their tokens of nonzero probability (`Probs`), and
//! a token's word is read at its place in the stream, so a top-k race costs
//! k words, not one per vocabulary entry, and draws the same words.

use super::probs::Probs;
use crate::model::Token;
use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The noise of one branch.
#[derive(Clone, Debug)]
pub struct Noise {
    key: [u8; 32],
}

impl Noise {
    pub fn new(seed: u64, prompt_index: usize, sample_index: usize) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&(prompt_index as u64).to_le_bytes());
        key[16..24].copy_from_slice(&(sample_index as u64).to_le_bytes());
        Noise { key }
    }

    /// The race's score of each token of `p` at position `t`, in token
    /// order: smaller wins. Token `x` draws word `x` of stream `t`.
    fn scores<'a>(&self, t: usize, p: &'a Probs) -> impl Iterator<Item = (Token, f32)> + 'a {
        let mut rng = ChaCha8Rng::from_seed(self.key);
        rng.set_stream(t as u64);
        let mut next_word = 0;
        p.entries.iter().map(move |&(x, px)| {
            if x != next_word {
                rng.set_word_pos(u128::from(x));
            }
            next_word = x + 1;
            // A uniform in (0, 1]: never 0, so E is finite.
            let u = ((rng.next_u32() >> 8) + 1) as f32 / (1u32 << 24) as f32;
            (x, -u.ln() / px)
        })
    }

    /// The token the noise picks at position `t` from distribution `p`.
    pub fn pick(&self, t: usize, p: &Probs) -> Token {
        let mut best = (f32::INFINITY, 0);
        for (x, score) in self.scores(t, p) {
            if score < best.0 {
                best = (score, x);
            }
        }
        best.1
    }

    /// How near a tie the race at position `t` under `p` was: the log-ratio
    /// of its second-best score to its best (0: a tie).
    pub fn margin(&self, t: usize, p: &Probs) -> f32 {
        let (mut best, mut second) = (f32::INFINITY, f32::INFINITY);
        for (_, score) in self.scores(t, p) {
            if score < best {
                second = best;
                best = score;
            } else if score < second {
                second = score;
            }
        }
        (second / best).ln()
    }

    /// The `k` best tokens of the race at position `t` under `q`, best first
    /// (distinct, with positive probability).
    pub fn best(&self, t: usize, q: &Probs, k: usize) -> Vec<Token> {
        let mut scored: Vec<(f32, Token)> = (self.scores(t, q))
            .filter(|(_, s)| s.is_finite())
            .map(|(x, s)| (s, x))
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        let order = |a: &(f32, Token), b: &(f32, Token)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
        scored.sort_unstable_by(order);
        scored.into_iter().map(|(_, x)| x).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noise_is_a_function_of_its_key_and_position() {
        let p = Probs::from_dense(&[0.25; 4]);
        let a = Noise::new(7, 0, 0);
        let picks: Vec<Token> = (0..64).map(|t| a.pick(t, &p)).collect();
        let again: Vec<Token> = (0..64).rev().map(|t| a.pick(t, &p)).collect();
        assert_eq!(picks, again.into_iter().rev().collect::<Vec<_>>());
        for other in [
            Noise::new(8, 0, 0),
            Noise::new(7, 1, 0),
            Noise::new(7, 0, 1),
        ] {
            let theirs: Vec<Token> = (0..64).map(|t| other.pick(t, &p)).collect();
            assert_ne!(picks, theirs);
        }
    }

    #[test]
    fn picks_follow_the_distribution() {
        let p = [0.5, 0.0, 0.3, 0.2];
        let mut counts = [0usize; 4];
        for seed in 0..20_000 {
            counts[Noise::new(seed, 0, 0).pick(3, &Probs::from_dense(&p)) as usize] += 1;
        }
        assert_eq!(counts[1], 0, "a token of probability 0 is never picked");
        for (x, &px) in p.iter().enumerate() {
            let seen = counts[x] as f32 / 20_000.0;
            assert!((seen - px).abs() < 0.015, "token {x}: {seen} against {px}");
        }
    }

    /// The race as it was run over the whole vocabulary, one word per
    /// token in order: the reference the sparse race must equal.
    fn dense_scores(noise: &Noise, t: usize, p: &[f32]) -> Vec<f32> {
        let mut rng = ChaCha8Rng::from_seed(noise.key);
        rng.set_stream(t as u64);
        (p.iter())
            .map(|&px| {
                let u = ((rng.next_u32() >> 8) + 1) as f32 / (1u32 << 24) as f32;
                if px > 0.0 {
                    -u.ln() / px
                } else {
                    f32::INFINITY
                }
            })
            .collect()
    }

    #[test]
    fn the_sparse_race_draws_the_dense_race_words() {
        // Nonzero tokens scattered over the vocabulary, some adjacent.
        let mut p = vec![0.0f32; 1000];
        for (i, x) in [3, 4, 5, 99, 500, 501, 998].into_iter().enumerate() {
            p[x] = (i + 1) as f32 / 28.0;
        }
        let probs = Probs::from_dense(&p);
        for t in 0..64 {
            let noise = Noise::new(t as u64, 1, 2);
            let scores = dense_scores(&noise, t, &p);
            let winner = (0..p.len()).fold(0, |b, x| if scores[x] < scores[b] { x } else { b });
            assert_eq!(noise.pick(t, &probs) as usize, winner, "t {t}");
            let mut sorted: Vec<f32> = scores.iter().copied().filter(|s| s.is_finite()).collect();
            sorted.sort_by(f32::total_cmp);
            assert_eq!(noise.margin(t, &probs), (sorted[1] / sorted[0]).ln());
            let best = noise.best(t, &probs, 3);
            let want: Vec<f32> = sorted[..3].to_vec();
            let got: Vec<f32> = best.iter().map(|&x| scores[x as usize]).collect();
            assert_eq!(got, want, "t {t}");
        }
    }

    #[test]
    fn the_race_winner_leads_the_best_list() {
        let q = Probs::from_dense(&[0.1, 0.6, 0.0, 0.3]);
        let noise = Noise::new(3, 2, 1);
        for t in 0..32 {
            let best = noise.best(t, &q, 3);
            assert_eq!(best[0], noise.pick(t, &q));
            assert_eq!(best.len(), 3);
            assert!(!best.contains(&2));
        }
    }
}

//! The CPU cost of seed's own work (acceptance, scheduling), to set beside the
//! cost of a target forward. Run: `cargo bench --bench overhead`.
//!
//! Acceptance runs on rows of Qwen2.5's vocabulary size (151 936), as with the
//! default pair. The scheduler runs on the pure-Rust tiny model, whose forward
//! costs almost nothing, so its time is the scheduler's and acceptance's.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seed::decode::accept::{verify, DraftTree};
use seed::decode::noise::Noise;
use seed::decode::sampling::Sampler;
use seed::decode::{Drafter, Engine, EngineConfig, EngineKind, Request, Sampling, VerifyPolicy};
use seed::model::tiny::{TinyConfig, TinyLm};

const VOCAB: usize = 151_936;
const GAMMA: usize = 3;

fn main() {
    divan::main();
}

fn rows(n: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..n)
        .map(|_| (0..VOCAB).map(|_| rng.gen_range(-10.0f32..10.0)).collect())
        .collect()
}

/// A chain of GAMMA drafted tokens, the target's best at each position, so
/// that all are accepted and every row is read.
fn chain(rows: &[Vec<f32>]) -> DraftTree {
    let mut tree = DraftTree::default();
    let mut at = None;
    for row in rows.iter().take(GAMMA) {
        let best = seed::decode::sampling::argmax(row);
        at = Some(tree.push(at, best));
    }
    tree
}

/// Greedy verification of a 3-token chain (4 rows of logits): per verified token, divide by 4.
#[divan::bench]
fn verify_greedy_chain(bencher: divan::Bencher) {
    let rows = rows(GAMMA + 1);
    let tree = chain(&rows);
    let sampler = Sampler::new(Sampling::default(), Noise::new(1, 0, 0));
    bencher.bench_local(|| verify(&tree, |at| &rows[at.map_or(0, |n| n + 1)], &sampler, 0));
}

/// Coupled verification of a 3-token chain at temperature 0.7 (softmax and
/// the noise's race over every row).
#[divan::bench]
fn verify_sampled_chain(bencher: divan::Bencher) {
    let rows = rows(GAMMA + 1);
    let tree = chain(&rows);
    let sampler = Sampler::new(
        Sampling::default().with_temperature(0.7),
        Noise::new(1, 0, 0),
    );
    bencher.bench_local(|| verify(&tree, |at| &rows[at.map_or(0, |n| n + 1)], &sampler, 0));
}

/// The same at `seed solve`'s sampling (0.7 with top-k 40 and top-p 0.95):
/// only the top-k tokens get an exp and a word of the race.
#[divan::bench]
fn verify_sampled_chain_top_k(bencher: divan::Bencher) {
    let rows = rows(GAMMA + 1);
    let tree = chain(&rows);
    let sampling = Sampling {
        temperature: 0.7,
        top_p: 0.95,
        top_k: 40,
    };
    let sampler = Sampler::new(sampling, Noise::new(1, 0, 0));
    bencher.bench_local(|| verify(&tree, |at| &rows[at.map_or(0, |n| n + 1)], &sampler, 0));
}

fn tiny_engine(config: EngineConfig) -> Engine {
    Engine::new(
        Box::new(TinyLm::new(TinyConfig::target())),
        Some(Box::new(TinyLm::new(TinyConfig::draft()))),
        config,
    )
    .unwrap()
}

/// A whole `seed` request on the tiny model: 8 branches of 64 tokens (512
/// generated tokens per iteration).
#[divan::bench(args = [VerifyPolicy::Fcfs, VerifyPolicy::Batched])]
fn seed_request_512_tokens(bencher: divan::Bencher, verify: VerifyPolicy) {
    let config = EngineConfig {
        kind: EngineKind::Seed,
        verify,
        ..EngineConfig::default()
    };
    let mut engine = tiny_engine(config);
    let request = Request {
        prompts: vec!["abc".into()],
        n: 8,
        max_tokens: 64,
        sampling: Sampling::default().with_temperature(0.7),
        ..Request::default()
    };
    bencher.bench_local(|| engine.generate(&request).unwrap());
}

/// The same with n-gram drafts ahead of the draft model, 60 branches of 64
/// tokens over 20 prompts of ~300 tokens (3840 generated tokens per
/// iteration): every branch looks its context up in all of its request's text.
#[divan::bench]
fn seed_request_ngram_60_branches(bencher: divan::Bencher) {
    let config = EngineConfig {
        kind: EngineKind::Seed,
        verify: VerifyPolicy::Batched,
        drafter: Drafter::NgramModel,
        ..EngineConfig::default()
    };
    let mut engine = tiny_engine(config);
    let prompts = (0..20)
        .map(|i| format!("question {i}: ").repeat(25))
        .collect();
    let request = Request {
        prompts,
        n: 3,
        max_tokens: 64,
        sampling: Sampling::default().with_temperature(0.7),
        ..Request::default()
    };
    bencher.bench_local(|| engine.generate(&request).unwrap());
}

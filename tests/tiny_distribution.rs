//! Speculative sampling is exact: on the tiny model the first two tokens sampled
//! by every engine follow the target's own distribution (chi-square test), and
//! the same test rejects a deliberately wrong acceptance rule.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seed::decode::sampling::sample;
use seed::decode::{
    Drafter, Engine, EngineConfig, EngineKind, Request, Sampling, TreeShape, VerifyPolicy,
};
use seed::model::tiny::{TinyConfig, TinyLm};
use seed::model::{BatchToken, Model};
use std::collections::HashMap;

const PROMPT: &str = "tree search";
const SAMPLES: usize = 20_000;

fn sampling() -> Sampling {
    Sampling {
        temperature: 1.0,
        top_p: 0.95,
        top_k: 16,
    }
}

/// The target's distribution of a token after `context` (prompt tokens then generated ones).
fn target_distribution(model: &mut TinyLm, context: &[u32]) -> Vec<f32> {
    let seq = model.create().unwrap();
    let batch: Vec<BatchToken> = context
        .iter()
        .enumerate()
        .map(|(pos, &token)| BatchToken {
            token,
            pos,
            seqs: vec![seq],
            logits: pos + 1 == context.len(),
        })
        .collect();
    model.forward(&batch).unwrap();
    let logits = model.logits(0);
    let p = sampling().distribution(logits).to_dense(logits.len());
    model.release(seq);
    p
}

/// Probability of each (first, second) token pair under the target.
fn expected_pairs() -> HashMap<(u32, u32), f64> {
    let mut model = TinyLm::new(TinyConfig::target());
    let prompt = model.tokenize(PROMPT, true).unwrap();
    let p1 = target_distribution(&mut model, &prompt);
    let mut out = HashMap::new();
    for (t1, &a) in p1.iter().enumerate() {
        if a == 0.0 {
            continue;
        }
        let mut ctx = prompt.clone();
        ctx.push(t1 as u32);
        // The end token finishes a branch: its pair is (end, end).
        if t1 == 0 {
            out.insert((0, 0), a as f64);
            continue;
        }
        let p2 = target_distribution(&mut model, &ctx);
        for (t2, &b) in p2.iter().enumerate() {
            if b > 0.0 {
                out.insert((t1 as u32, t2 as u32), a as f64 * b as f64);
            }
        }
    }
    out
}

/// Pearson's chi-square statistic and its 0.1% critical value; cells expected
/// fewer than 5 times are pooled.
fn chi_square(
    counts: &HashMap<(u32, u32), usize>,
    expected: &HashMap<(u32, u32), f64>,
    n: usize,
) -> (f64, f64) {
    let mut stat = 0.0;
    let mut cells = 0;
    let (mut pooled_o, mut pooled_e) = (0.0, 0.0);
    for (key, &p) in expected {
        let e = p * n as f64;
        let o = *counts.get(key).unwrap_or(&0) as f64;
        if e < 5.0 {
            pooled_o += o;
            pooled_e += e;
        } else {
            stat += (o - e).powi(2) / e;
            cells += 1;
        }
    }
    let impossible: usize = counts
        .iter()
        .filter(|(k, _)| !expected.contains_key(k))
        .map(|(_, c)| c)
        .sum();
    assert_eq!(impossible, 0, "sampled a pair the target cannot produce");
    if pooled_e > 0.0 {
        stat += (pooled_o - pooled_e).powi(2) / pooled_e;
        cells += 1;
    }
    let df = (cells - 1) as f64;
    // Wilson-Hilferty approximation of the chi-square quantile, z = 3.09 (0.1%).
    let h = 2.0 / (9.0 * df);
    let critical = df * (1.0 - h + 3.09 * h.sqrt()).powi(3);
    (stat, critical)
}

fn engine_pairs(
    kind: EngineKind,
    tree: Option<&str>,
    verify: VerifyPolicy,
    drafter: Drafter,
) -> HashMap<(u32, u32), usize> {
    let config = EngineConfig {
        kind,
        gamma: 3,
        tree: tree.map(|t| t.parse::<TreeShape>().unwrap()),
        verify,
        trace: false,
        prefix_cache: true,
        drafter,
        adaptive_gamma: drafter == Drafter::Ngram,
        cost_aware: verify == VerifyPolicy::Batched && tree.is_none(),
        ngram_history: false,
        // Every sample decoded: the point is to exercise every branch.
        dedup_greedy: false,
    };
    let mut engine = Engine::new(
        Box::new(TinyLm::new(TinyConfig::target())),
        Some(Box::new(TinyLm::new(TinyConfig::draft()))),
        config,
    )
    .unwrap();
    let request = Request {
        prompts: vec![PROMPT.to_string()],
        n: SAMPLES,
        sampling: sampling(),
        max_tokens: 4,
        seed: 11,
        ..Request::default()
    };
    let out = engine.generate(&request).unwrap();
    if kind != EngineKind::Ar {
        assert!(out.stats.drafted > 0 && out.stats.accepted < out.stats.drafted);
    }
    let mut counts = HashMap::new();
    for c in out.completions {
        let first = c.tokens.first().copied().unwrap_or(0);
        let second = if first == 0 {
            0
        } else {
            c.tokens.get(1).copied().unwrap_or(0)
        };
        *counts.entry((first, second)).or_insert(0) += 1;
    }
    counts
}

#[test]
fn speculative_engines_sample_the_target_distribution() {
    let expected = expected_pairs();
    let configs = [
        (EngineKind::Ar, None, VerifyPolicy::Fcfs, Drafter::Model),
        (EngineKind::Sd, None, VerifyPolicy::Fcfs, Drafter::Model),
        (
            EngineKind::Mcsd,
            Some("2,1,1"),
            VerifyPolicy::Fcfs,
            Drafter::Model,
        ),
        (
            EngineKind::Mcsd,
            Some("3,2"),
            VerifyPolicy::Fcfs,
            Drafter::Model,
        ),
        (EngineKind::Seed, None, VerifyPolicy::Fcfs, Drafter::Model),
        (
            EngineKind::Seed,
            Some("2,1,1"),
            VerifyPolicy::Batched,
            Drafter::Model,
        ),
        // Deterministic n-gram candidates (accepted with probability p(x)).
        (EngineKind::Sd, None, VerifyPolicy::Fcfs, Drafter::Ngram),
        (
            EngineKind::Seed,
            None,
            VerifyPolicy::Batched,
            Drafter::NgramModel,
        ),
    ];
    for (kind, tree, verify, drafter) in configs {
        let counts = engine_pairs(kind, tree, verify, drafter);
        let (stat, critical) = chi_square(&counts, &expected, SAMPLES);
        eprintln!("{kind} {tree:?} {verify:?}: chi-square {stat:.1}, critical {critical:.1}");
        assert!(
            stat < critical,
            "{kind} {tree:?}: chi-square {stat:.1} >= {critical:.1}"
        );
    }
}

/// Speculative sampling of one token with a broken rule: after a rejection it
/// resamples from the target instead of the residual max(0, p - q).
fn wrong_rule_first_token(p: &[f32], q: &[f32], rng: &mut impl Rng) -> u32 {
    let x = sample(q, rng);
    let ratio = p[x as usize] / q[x as usize];
    if rng.gen::<f32>() < ratio.min(1.0) {
        x
    } else {
        sample(p, rng)
    }
}

#[test]
fn the_test_rejects_a_wrong_acceptance_rule() {
    let expected = expected_pairs();
    let mut target = TinyLm::new(TinyConfig::target());
    let mut draft = TinyLm::new(TinyConfig::draft());
    let prompt = target.tokenize(PROMPT, true).unwrap();
    let p = target_distribution(&mut target, &prompt);
    let q = target_distribution(&mut draft, &prompt);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut counts = HashMap::new();
    for _ in 0..SAMPLES {
        let first = wrong_rule_first_token(&p, &q, &mut rng);
        let second = if first == 0 {
            0
        } else {
            let mut ctx = prompt.clone();
            ctx.push(first);
            sample(&target_distribution(&mut target, &ctx), &mut rng)
        };
        *counts.entry((first, second)).or_insert(0) += 1;
    }
    let (stat, critical) = chi_square(&counts, &expected, SAMPLES);
    eprintln!("wrong rule: chi-square {stat:.1}, critical {critical:.1}");
    assert!(
        stat > critical,
        "the wrong rule passed: chi-square {stat:.1} < {critical:.1}"
    );
}

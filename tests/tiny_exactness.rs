//! Exactness of every engine on the pure-Rust tiny model.

use seed::decode::{
    Completion, Drafter, Engine, EngineConfig, EngineKind, Output, Request, Sampling, TreeShape,
    VerifyPolicy,
};
use seed::model::tiny::{TinyConfig, TinyLm};

/// How draft lengths are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Length {
    Fixed,
    Adaptive,
    /// Adaptive, and cut by cost-aware drafting.
    Cost,
}

/// An engine kind with its draft tree (if not the default), verify policy,
/// drafter and draft lengths.
type Config = (
    EngineKind,
    Option<&'static str>,
    VerifyPolicy,
    Drafter,
    Length,
);

fn engine((kind, tree, verify, drafter, length): Config) -> Engine {
    let config = EngineConfig {
        kind,
        gamma: 3,
        tree: tree.map(|t| t.parse::<TreeShape>().unwrap()),
        verify,
        trace: true,
        prefix_cache: true,
        drafter,
        adaptive_gamma: length != Length::Fixed,
        cost_aware: length == Length::Cost,
        ngram_history: drafter != Drafter::Model,
        // Every sample decoded: the point is to exercise every branch.
        dedup_greedy: false,
    };
    Engine::new(
        Box::new(TinyLm::new(TinyConfig::target())),
        Some(Box::new(TinyLm::new(TinyConfig::draft()))),
        config,
    )
    .unwrap()
}

fn request(prompts: &[&str], n: usize, max_tokens: usize) -> Request {
    Request {
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        n,
        max_tokens,
        ..Request::default()
    }
}

fn tokens(out: &Output) -> Vec<Vec<u32>> {
    out.completions.iter().map(|c| c.tokens.clone()).collect()
}

/// The target's log-probabilities of the tokens, as bits: the same logits
/// give the same values, whichever engine verified them.
fn logprob_bits(out: &Output) -> Vec<Vec<u32>> {
    let bits = |c: &Completion| c.logprobs.iter().map(|l| l.to_bits()).collect();
    out.completions.iter().map(bits).collect()
}

const AR: Config = (
    EngineKind::Ar,
    None,
    VerifyPolicy::Fcfs,
    Drafter::Model,
    Length::Fixed,
);

fn all_configs() -> Vec<Config> {
    use Drafter::*;
    use EngineKind::*;
    use Length::*;
    use VerifyPolicy::*;
    vec![
        (Sd, None, Fcfs, Model, Fixed),
        (Mcsd, None, Fcfs, Model, Fixed),
        (Mcsd, Some("3,2,1"), Fcfs, Model, Fixed),
        (Seed, None, Fcfs, Model, Fixed),
        (Seed, None, Batched, Model, Fixed),
        (Seed, Some("2,1,1"), Fcfs, Model, Fixed),
        (Seed, Some("2,2"), Batched, Model, Fixed),
        (Sd, None, Fcfs, Model, Adaptive),
        (Seed, None, Batched, Model, Adaptive),
        (Sd, None, Fcfs, Ngram, Fixed),
        (Seed, None, Batched, Ngram, Adaptive),
        (Seed, None, Fcfs, NgramModel, Fixed),
        (Seed, None, Batched, NgramModel, Adaptive),
        (Sd, None, Fcfs, Model, Cost),
        (Seed, None, Batched, Model, Cost),
        (Seed, None, Batched, Ngram, Cost),
    ]
}

#[test]
fn greedy_speculative_equals_autoregressive() {
    let prompts = ["hello there", "a", "what is two plus two?"];
    for n in [1, 3, 8] {
        let req = request(&prompts, n, 40);
        let ar = engine(AR).generate(&req).unwrap();
        assert_eq!(ar.completions.len(), prompts.len() * n);
        for config in all_configs() {
            let out = engine(config).generate(&req).unwrap();
            assert_eq!(tokens(&out), tokens(&ar), "{config:?} n={n}");
            assert_eq!(logprob_bits(&out), logprob_bits(&ar), "{config:?} n={n}");
            let s = &out.stats;
            assert!(s.drafted > 0 && s.accepted < s.drafted, "{s:?}");
            if config.3 == Drafter::Model {
                assert!(
                    s.accepted > 0,
                    "drafts must be both accepted and rejected: {s:?}"
                );
            }
        }
    }
}

#[test]
fn ngram_drafts_from_a_finished_sibling_are_accepted() {
    // sd runs one branch at a time: at temperature 0 the second sample of a
    // prompt repeats the first, which its n-gram lookups find.
    let req = request(&["hello there", "what is two plus two?"], 2, 40);
    let ar = engine(AR).generate(&req).unwrap();
    for drafter in [Drafter::Ngram, Drafter::NgramModel] {
        let config = (
            EngineKind::Sd,
            None,
            VerifyPolicy::Fcfs,
            drafter,
            Length::Adaptive,
        );
        let out = engine(config).generate(&req).unwrap();
        assert_eq!(tokens(&out), tokens(&ar), "{config:?}");
        let s = &out.stats;
        assert!(s.accepted >= 40, "{config:?}: {s:?}");
        if drafter == Drafter::Ngram {
            assert_eq!(s.draft_forwards, 0, "{s:?}");
        }
    }
}

#[test]
fn ngram_drafts_come_from_past_requests_until_forgotten() {
    // Asked again, a greedy request finds its whole completion among the
    // engine's past requests: its prompt's end is followed by it.
    let req = request(&["what is two plus two?"], 1, 40);
    let ar = engine(AR).generate(&req).unwrap();
    let config = (
        EngineKind::Seed,
        None,
        VerifyPolicy::Batched,
        Drafter::Ngram,
        Length::Adaptive,
    );
    let mut e = engine(config);
    let first = e.generate(&req).unwrap();
    let again = e.generate(&req).unwrap();
    e.forget_past_requests();
    let cold = e.generate(&req).unwrap();
    for out in [&first, &again, &cold] {
        assert_eq!(tokens(out), tokens(&ar));
    }
    let (f, a, c) = (&first.stats, &again.stats, &cold.stats);
    assert!(a.accepted >= 30 && a.accepted > f.accepted, "{f:?}\n{a:?}");
    assert!(2 * a.target_forwards < f.target_forwards, "{f:?}\n{a:?}");
    // Forgotten: drafted as the first time.
    assert_eq!(
        (c.drafted, c.accepted, c.target_forwards),
        (f.drafted, f.accepted, f.target_forwards)
    );
}

#[test]
fn greedy_with_sampled_drafts_equals_autoregressive() {
    let mut req = request(&["the tree of thoughts"], 4, 30);
    req.draft_temperature = Some(1.5);
    let ar = engine(AR).generate(&req).unwrap();
    for config in all_configs() {
        let out = engine(config).generate(&req).unwrap();
        assert_eq!(tokens(&out), tokens(&ar), "{config:?}");
    }
}

#[test]
fn samples_of_one_prompt_differ_at_positive_temperature() {
    let mut req = request(&["abc"], 6, 20);
    req.sampling = Sampling {
        temperature: 1.0,
        ..Sampling::default()
    };
    for config in all_configs() {
        let out = engine(config).generate(&req).unwrap();
        let distinct: std::collections::HashSet<_> = tokens(&out).into_iter().collect();
        assert!(distinct.len() > 1, "{config:?}: all samples equal");
        // Same seed, same result, whatever the scheduling (cost-aware
        // drafting included: the output does not depend on the draft).
        let again = engine(config).generate(&req).unwrap();
        assert_eq!(tokens(&out), tokens(&again));
    }
}

/// Sampling settings the tree searches use and their variants.
fn samplings() -> Vec<Sampling> {
    let mut all = Vec::new();
    for temperature in [0.3, 0.8, 1.2] {
        let plain = Sampling {
            temperature,
            ..Sampling::default()
        };
        all.push(plain.clone());
        all.push(Sampling {
            top_k: 5,
            ..plain.clone()
        });
        all.push(Sampling {
            top_p: 0.9,
            ..plain
        });
    }
    all
}

#[test]
fn sampled_speculative_equals_autoregressive() {
    let prompts = ["hello there", "a", "what is two plus two?"];
    for sampling in samplings() {
        for n in [1, 3, 8] {
            for draft_temperature in [None, Some(0.0), Some(1.0)] {
                let mut req = request(&prompts, n, 24);
                req.sampling = sampling.clone();
                req.draft_temperature = draft_temperature;
                req.seed = 11;
                let ar = engine(AR).generate(&req).unwrap();
                for config in all_configs() {
                    let out = engine(config).generate(&req).unwrap();
                    let label =
                        format!("{config:?} {sampling:?} n={n} draft {draft_temperature:?}");
                    assert_eq!(tokens(&out), tokens(&ar), "{label}");
                    assert_eq!(logprob_bits(&out), logprob_bits(&ar), "{label}");
                    if config.3 == Drafter::Model {
                        assert!(out.stats.drafted > 0, "{label}: {:?}", out.stats);
                    }
                }
            }
        }
    }
}

#[test]
fn another_seed_or_sample_gives_other_samples() {
    let mut req = request(&["hello there", "what is two plus two?"], 3, 24);
    req.sampling = Sampling {
        temperature: 0.8,
        ..Sampling::default()
    };
    let first = engine(AR).generate(&req).unwrap();
    req.seed = 1;
    let other = engine(AR).generate(&req).unwrap();
    assert_ne!(tokens(&first), tokens(&other));
    for config in all_configs() {
        let out = engine(config).generate(&req).unwrap();
        assert_eq!(tokens(&out), tokens(&other), "{config:?}");
        let per_prompt: Vec<_> = tokens(&out).chunks(3).map(|c| c.to_vec()).collect();
        for samples in per_prompt {
            assert!(
                samples[0] != samples[1] || samples[1] != samples[2],
                "{config:?}"
            );
        }
    }
}

/// What [`extending_calls`] saw.
#[derive(Default)]
struct Extended {
    outputs: Vec<Vec<Vec<u32>>>,
    /// Prompt tokens the later calls reused, in the target and the draft model.
    reused: usize,
    draft_reused: usize,
    /// Tokens of the later calls' prompts that earlier calls computed
    /// (prompt and fed completion).
    computed_before: usize,
}

/// Three calls as a search makes them: each prompt of the next call is a
/// prompt of this one, one of its completions and more text.
fn extending_calls(config: Config, prefix_cache: bool, temperature: f32) -> Extended {
    let mut e = engine(config);
    e.config.prefix_cache = prefix_cache;
    let mut prompts = vec![
        "q: two plus two\na:".to_string(),
        "q: hello\na:".to_string(),
    ];
    let mut seen = Extended::default();
    for call in 0..3 {
        let req = Request {
            prompts: prompts.clone(),
            n: 2,
            max_tokens: 12,
            sampling: Sampling {
                temperature,
                ..Sampling::default()
            },
            seed: 5,
            ..Request::default()
        };
        let out = e.generate(&req).unwrap();
        if call > 0 {
            seen.reused += out.stats.prompt_reused;
            seen.draft_reused += out.stats.draft_prompt_reused;
        }
        let kept: Vec<_> = out.completions.iter().step_by(2).collect();
        if call < 2 {
            // A token per character; a completion's last token was never fed.
            seen.computed_before += kept
                .iter()
                .map(|c| prompts[c.prompt_index].len() + c.text.len() - 1)
                .sum::<usize>();
        }
        prompts = kept
            .iter()
            .map(|c| format!("{}{} so", prompts[c.prompt_index], c.text))
            .collect();
        seen.outputs.push(tokens(&out));
    }
    seen
}

#[test]
fn prompts_that_extend_earlier_completions_reuse_them_and_change_nothing() {
    use Drafter::*;
    use EngineKind::*;
    use VerifyPolicy::*;
    let configs = [
        AR,
        (Seed, None, Batched, Ngram, Length::Cost),
        (Seed, None, Fcfs, Model, Length::Fixed),
        (Mcsd, None, Fcfs, Model, Length::Fixed),
    ];
    for temperature in [0.0, 0.8] {
        let reference = extending_calls(AR, false, temperature).outputs;
        for config in configs {
            let cached = extending_calls(config, true, temperature);
            assert_eq!(
                cached.outputs, reference,
                "{config:?} at {temperature}, cache on"
            );
            let (reused, before) = (cached.reused, cached.computed_before);
            assert!(
                reused >= before,
                "{config:?} at {temperature}: reused {reused} of {before}"
            );
            // The draft model keeps its completions too, each up to a draft
            // (gamma 3) and a token short: it is fed the last accepted tokens
            // only when it drafts again. The later calls extend 4 completions
            // of 12 tokens, so keeping prompts alone would fall 48 short.
            let draft_reused = cached.draft_reused;
            match (config.0, config.3) {
                (Seed | Sd | Mcsd, Model) => assert!(
                    draft_reused + 4 * (3 + 1) >= before,
                    "{config:?} at {temperature}: draft reused {draft_reused} of {before}"
                ),
                _ => assert_eq!(draft_reused, 0, "{config:?}: no draft model"),
            }
            let uncached = extending_calls(config, false, temperature);
            assert_eq!(
                uncached.outputs, reference,
                "{config:?} at {temperature}, cache off"
            );
            assert_eq!(
                uncached.reused + uncached.draft_reused,
                0,
                "{config:?}: nothing is reused without the cache"
            );
        }
    }
}

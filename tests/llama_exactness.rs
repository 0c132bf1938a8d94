//! Greedy exactness on a real model: SmolLM2 as target and as its own draft,
//! drafting at temperature 1 so that many drafts are rejected. Every
//! speculative engine must return exactly the tokens of plain decoding.

mod common;

use seed::decode::{Engine, EngineConfig, EngineKind, Request, TreeShape, VerifyPolicy};

const PROMPTS: [&str; 4] = [
    "Write a short poem about trees.",
    "Explain what a prime number is.",
    "List three fruits and their colors.",
    "What is 17 times 3? Think step by step.",
];

fn run(
    kind: EngineKind,
    tree: Option<&str>,
    prompts: &[&str],
    n: usize,
) -> (Vec<Vec<u32>>, usize, usize) {
    let config = EngineConfig {
        kind,
        gamma: 3,
        tree: tree.map(|t| t.parse::<TreeShape>().unwrap()),
        verify: VerifyPolicy::Fcfs,
        trace: false,
    };
    let draft = (kind != EngineKind::Ar)
        .then(|| Box::new(common::smollm(8192)) as Box<dyn seed::model::Model>);
    let mut engine = Engine::new(Box::new(common::smollm(8192)), draft, config).unwrap();
    let prompts = prompts
        .iter()
        .map(|p| engine.chat_prompt(p).unwrap())
        .collect();
    let request = Request {
        prompts,
        n,
        draft_temperature: Some(1.0),
        max_tokens: 40,
        seed: 5,
        ..Request::default()
    };
    let out = engine.generate(&request).unwrap();
    let tokens = out.completions.into_iter().map(|c| c.tokens).collect();
    (tokens, out.stats.drafted, out.stats.accepted)
}

#[test]
fn speculative_engines_match_greedy_decoding_on_smollm2() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    for (n, prompts) in [(1, &PROMPTS[..]), (3, &PROMPTS[..2]), (8, &PROMPTS[2..])] {
        let (ar, _, _) = run(EngineKind::Ar, None, prompts, n);
        assert_eq!(ar.len(), prompts.len() * n);
        assert!(ar.iter().all(|t| !t.is_empty()));
        for (kind, tree) in [
            (EngineKind::Sd, None),
            (EngineKind::Mcsd, Some("2,1,1")),
            (EngineKind::Seed, None),
            (EngineKind::Seed, Some("2,1,1")),
        ] {
            let (tokens, drafted, accepted) = run(kind, tree, prompts, n);
            assert!(
                accepted > 0 && accepted < drafted,
                "{kind}: drafts should be partly rejected ({accepted}/{drafted})"
            );
            for (i, (got, want)) in tokens.iter().zip(&ar).enumerate() {
                assert_eq!(
                    got, want,
                    "{kind} tree {tree:?} n={n}: completion {i} differs from ar"
                );
            }
        }
    }
}

//! Continuous batching on the tiny model: requests that join and leave a
//! running batch get what they would get alone, streamed text adds up to the
//! final text, cancelling frees every sequence, and identical greedy samples
//! are decoded once.

use seed::decode::{
    Engine, EngineConfig, EngineKind, Event, Output, Request, RequestId, Sampling, TreeShape,
    VerifyPolicy,
};
use seed::model::tiny::{TinyConfig, TinyLm};
use std::collections::HashMap;

fn engine(kind: EngineKind, tree: Option<&str>, verify: VerifyPolicy) -> Engine {
    let config = EngineConfig {
        kind,
        tree: tree.map(|t| t.parse::<TreeShape>().unwrap()),
        verify,
        // Without the prefix cache every sequence belongs to a request.
        prefix_cache: false,
        ..EngineConfig::default()
    };
    Engine::new(
        Box::new(TinyLm::new(TinyConfig::target())),
        Some(Box::new(TinyLm::new(TinyConfig::draft()))),
        config,
    )
    .unwrap()
}

fn configs() -> Vec<(EngineKind, Option<&'static str>, VerifyPolicy)> {
    vec![
        (EngineKind::Ar, None, VerifyPolicy::Fcfs),
        (EngineKind::Sd, None, VerifyPolicy::Fcfs),
        (EngineKind::Mcsd, None, VerifyPolicy::Fcfs),
        (EngineKind::Seed, None, VerifyPolicy::Fcfs),
        (EngineKind::Seed, None, VerifyPolicy::Batched),
        (EngineKind::Seed, Some("2,1,1"), VerifyPolicy::Fcfs),
    ]
}

fn request(prompt: &str, n: usize, temperature: f32, seed: u64, stop: &[&str]) -> Request {
    Request {
        prompts: vec![prompt.to_string(), format!("{prompt} again")],
        n,
        sampling: Sampling {
            temperature,
            ..Sampling::default()
        },
        max_tokens: 40,
        stop: stop.iter().map(|s| s.to_string()).collect(),
        seed,
        ..Request::default()
    }
}

fn texts(out: &Output) -> Vec<(Vec<u32>, String)> {
    out.completions
        .iter()
        .map(|c| (c.tokens.clone(), c.text.clone()))
        .collect()
}

/// Runs `requests`, admitting request k after `joins[k]` steps, until all are
/// done. Returns each request's output and its streamed text per choice.
fn run_joined(
    e: &mut Engine,
    requests: &[Request],
    joins: &[usize],
) -> Vec<(Output, HashMap<usize, String>)> {
    let mut ids: Vec<Option<RequestId>> = vec![None; requests.len()];
    let mut outs: HashMap<RequestId, Output> = HashMap::new();
    let mut streamed: HashMap<(RequestId, usize), String> = HashMap::new();
    let mut step = 0;
    while outs.len() < requests.len() {
        for (k, r) in requests.iter().enumerate() {
            if ids[k].is_none() && joins[k] <= step {
                ids[k] = Some(e.admit(r, true).unwrap());
            }
        }
        for event in e.step() {
            match event {
                Event::Delta {
                    request,
                    choice,
                    text,
                    ..
                } => streamed
                    .entry((request, choice))
                    .or_default()
                    .push_str(&text),
                Event::Done { request, output } => {
                    outs.insert(request, output);
                }
                Event::Failed { request, error } => panic!("{request:?} failed: {error}"),
            }
        }
        step += 1;
        assert!(step < 10_000, "the batch never finished");
    }
    ids.iter()
        .map(|id| {
            let id = id.unwrap();
            let per_choice = streamed
                .iter()
                .filter(|((r, _), _)| *r == id)
                .map(|((_, c), t)| (*c, t.clone()))
                .collect();
            (outs.remove(&id).unwrap(), per_choice)
        })
        .collect()
}

#[test]
fn joining_a_running_batch_changes_no_output() {
    for (kind, tree, verify) in configs() {
        for temperature in [0.0, 1.0] {
            let requests = vec![
                request("abc", 3, temperature, 1, &[]),
                request("the tree", 2, temperature, 2, &["e"]),
                request("x", 1, temperature, 3, &[]),
            ];
            let alone: Vec<Output> = requests
                .iter()
                .map(|r| engine(kind, tree, verify).generate(r).unwrap())
                .collect();
            let mut e = engine(kind, tree, verify);
            let joined = run_joined(&mut e, &requests, &[0, 3, 7]);
            for (k, ((out, streamed), alone)) in joined.iter().zip(&alone).enumerate() {
                let label = format!("{kind} {tree:?} {verify:?} t={temperature} request {k}");
                assert_eq!(texts(out), texts(alone), "{label}");
                assert_eq!(out.completions.len(), streamed.len(), "{label}");
                for (i, c) in out.completions.iter().enumerate() {
                    assert_eq!(streamed[&i], c.text, "{label}: streamed text of choice {i}");
                }
            }
            assert_eq!(e.in_flight(), 0);
            assert_eq!(e.target.live_sequences(), Some(0));
            assert_eq!(e.draft.as_ref().unwrap().live_sequences(), Some(0));
        }
    }
}

#[test]
fn cancel_frees_every_sequence_and_spares_the_others() {
    for (kind, tree, verify) in configs() {
        let keep = request("abc", 2, 1.0, 5, &[]);
        let drop = request("never mind", 4, 1.0, 6, &[]);
        let alone = engine(kind, tree, verify).generate(&keep).unwrap();
        let mut e = engine(kind, tree, verify);
        let a = e.admit(&keep, false).unwrap();
        let b = e.admit(&drop, false).unwrap();
        assert_eq!(e.live_branches(), 12);
        for _ in 0..2 {
            e.step();
        }
        assert!(e.cancel(b));
        assert!(!e.cancel(b), "cancelled twice");
        // Only the kept request's sequences are left: one per branch and model.
        assert_eq!(e.target.live_sequences(), Some(e.live_branches()));
        let mut out = None;
        while out.is_none() {
            for event in e.step() {
                if let Event::Done { request, output } = event {
                    assert_eq!(request, a);
                    out = Some(output);
                }
            }
        }
        assert_eq!(texts(&out.unwrap()), texts(&alone), "{kind} {tree:?}");
        assert_eq!(e.target.live_sequences(), Some(0), "{kind}");
        assert_eq!(e.draft.as_ref().unwrap().live_sequences(), Some(0));
        // The engine keeps serving.
        assert_eq!(
            texts(&e.generate(&keep).unwrap()),
            texts(&alone),
            "{kind} {tree:?}"
        );
    }
}

#[test]
fn generate_refuses_a_busy_engine() {
    let mut e = engine(EngineKind::Seed, None, VerifyPolicy::Fcfs);
    let r = request("abc", 1, 0.0, 0, &[]);
    e.admit(&r, false).unwrap();
    let err = e.generate(&r).unwrap_err().to_string();
    assert!(err.contains("in flight"), "{err}");
}

#[test]
fn greedy_twins_get_the_decoded_completion() {
    for (kind, tree, verify) in configs() {
        let with_dedup = |dedup_greedy: bool| {
            let mut e = engine(kind, tree, verify);
            e.config.dedup_greedy = dedup_greedy;
            e
        };
        let label = format!("{kind} {tree:?} {verify:?}");
        let mut r = request("abc", 3, 0.0, 1, &["e"]);
        r.prompts.push("abc".into());
        let plain = with_dedup(false).generate(&r).unwrap();
        assert_eq!(plain.stats.copied_tokens, 0);

        let mut e = with_dedup(true);
        e.admit(&r, false).unwrap();
        assert_eq!(
            e.live_branches(),
            2,
            "{label}: one branch per distinct prompt"
        );
        let mut e = with_dedup(true);
        let (out, streamed) = run_joined(&mut e, std::slice::from_ref(&r), &[0]).remove(0);
        assert_eq!(texts(&out), texts(&plain), "{label}");
        let finishes = |o: &Output| {
            o.completions
                .iter()
                .map(|c| c.finish_reason)
                .collect::<Vec<_>>()
        };
        assert_eq!(finishes(&out), finishes(&plain), "{label}");
        for (i, c) in out.completions.iter().enumerate() {
            assert_eq!(streamed[&i], c.text, "{label}: streamed text of choice {i}");
        }
        // Decoded: the first sample of prompts 0 and 1; the other seven are copies.
        let decoded = out.completions[0].tokens.len() + out.completions[3].tokens.len();
        assert_eq!(out.stats.generated_tokens, plain.stats.generated_tokens);
        assert_eq!(
            out.stats.copied_tokens,
            out.stats.generated_tokens - decoded,
            "{label}"
        );
        assert!(
            out.stats.target_forwards <= plain.stats.target_forwards,
            "{label}"
        );
        assert_eq!(e.target.live_sequences(), Some(0), "{label}");
        assert_eq!(e.draft.as_ref().unwrap().live_sequences(), Some(0));

        // Sampled requests are decoded in full.
        let mut sampled = r.clone();
        sampled.sampling.temperature = 1.0;
        let mut e = with_dedup(true);
        e.admit(&sampled, false).unwrap();
        assert_eq!(e.live_branches(), 9, "{label}");
    }
}

//! The SeeD scheduler's rules, checked on its trace with the tiny model.

use seed::decode::{
    Engine, EngineConfig, EngineKind, EventKind, FinishReason, Output, Request, Sampling,
    TraceEvent, VerifyPolicy,
};
use seed::model::tiny::{TinyConfig, TinyLm};
use std::collections::HashMap;

fn seed_engine(verify: VerifyPolicy) -> Engine {
    let config = EngineConfig {
        kind: EngineKind::Seed,
        verify,
        trace: true,
        ..EngineConfig::default()
    };
    Engine::new(
        Box::new(TinyLm::new(TinyConfig::target())),
        Some(Box::new(TinyLm::new(TinyConfig::draft()))),
        config,
    )
    .unwrap()
}

fn run(verify: VerifyPolicy, request: &Request) -> Output {
    seed_engine(verify).generate(request).unwrap()
}

/// Checks the trace: per branch, draft and verify alternate starting with a
/// draft (never two drafts in flight); in each round every live branch is
/// verified once, in the order its draft arrived; branches that are done never
/// appear again.
fn check_trace(out: &Output, verify: VerifyPolicy) {
    let mut last: HashMap<usize, EventKind> = HashMap::new();
    for e in &out.trace {
        let prev = last.insert(e.branch, e.kind);
        match e.kind {
            EventKind::Draft => assert_ne!(
                prev,
                Some(EventKind::Draft),
                "branch {} drafted twice in a row",
                e.branch
            ),
            EventKind::Verify => assert_eq!(
                prev,
                Some(EventKind::Draft),
                "branch {} verified without a draft",
                e.branch
            ),
        }
    }
    assert!(
        last.values().all(|&k| k == EventKind::Verify),
        "a draft was never verified"
    );
    let rounds = out.trace.iter().map(|e| e.round).max().unwrap_or(0);
    for round in 0..=rounds {
        let of = |kind| -> Vec<&TraceEvent> {
            out.trace
                .iter()
                .filter(|e| e.round == round && e.kind == kind)
                .collect()
        };
        let drafts: Vec<usize> = of(EventKind::Draft).iter().map(|e| e.branch).collect();
        let verifies = of(EventKind::Verify);
        let order: Vec<usize> = verifies.iter().map(|e| e.branch).collect();
        assert_eq!(
            order, drafts,
            "round {round}: verification order is not arrival order"
        );
        // Every draft of the round arrives before the first verification.
        let last_draft = of(EventKind::Draft)
            .iter()
            .map(|e| e.end_s)
            .fold(0.0, f64::max);
        assert!(verifies.iter().all(|v| v.start_s >= last_draft));
        if verify == VerifyPolicy::Fcfs {
            // One branch per target forward, one after another.
            for w in verifies.windows(2) {
                assert!(w[1].start_s >= w[0].end_s);
            }
        }
    }
    // A branch stops appearing in rounds once it has finished.
    for c in 0..out.completions.len() {
        let rounds: Vec<usize> = out
            .trace
            .iter()
            .filter(|e| e.branch == c && e.kind == EventKind::Verify)
            .map(|e| e.round)
            .collect();
        assert_eq!(
            rounds,
            (0..rounds.len()).collect::<Vec<_>>(),
            "branch {c} skipped a round"
        );
    }
}

/// Each verification commits at least one token, so the forwards are bounded.
fn check_no_spinning(out: &Output, verify: VerifyPolicy) {
    let tokens: usize = out.completions.iter().map(|c| c.tokens.len() + 1).sum();
    let longest = out
        .completions
        .iter()
        .map(|c| c.tokens.len() + 1)
        .max()
        .unwrap_or(0);
    let bound = match verify {
        VerifyPolicy::Fcfs => tokens,
        VerifyPolicy::Batched => longest,
    };
    assert!(
        out.stats.target_forwards <= bound,
        "{} target forwards for {tokens} tokens",
        out.stats.target_forwards
    );
}

#[test]
fn every_branch_finishes_in_fcfs_rounds() {
    for verify in [VerifyPolicy::Fcfs, VerifyPolicy::Batched] {
        for n in [1, 16] {
            let request = Request {
                prompts: vec!["a tree".into(), "of thoughts".into()],
                n,
                max_tokens: 30,
                ..Request::default()
            };
            let out = run(verify, &request);
            assert_eq!(out.completions.len(), 2 * n);
            assert!(out.completions.iter().all(|c| c.tokens.len() <= 30));
            check_trace(&out, verify);
            check_no_spinning(&out, verify);
        }
    }
}

#[test]
fn branches_of_very_different_lengths_and_stop_strings() {
    for verify in [VerifyPolicy::Fcfs, VerifyPolicy::Batched] {
        let request = Request {
            prompts: vec!["x".into()],
            n: 16,
            sampling: Sampling {
                temperature: 1.0,
                ..Sampling::default()
            },
            max_tokens: 60,
            stop: vec!["e".into(), "q".into()],
            seed: 3,
            ..Request::default()
        };
        let out = run(verify, &request);
        let lengths: Vec<usize> = out.completions.iter().map(|c| c.tokens.len()).collect();
        let (min, max) = (lengths.iter().min().unwrap(), lengths.iter().max().unwrap());
        assert!(max - min >= 10, "lengths should differ widely: {lengths:?}");
        for c in &out.completions {
            if c.finish_reason == FinishReason::Stop && c.tokens.len() < 60 {
                assert!(
                    !c.text.contains('e') && !c.text.contains('q'),
                    "text runs past a stop string: {:?}",
                    c.text
                );
            }
        }
        check_trace(&out, verify);
        check_no_spinning(&out, verify);
    }
}

#[test]
fn zero_and_one_max_tokens() {
    for verify in [VerifyPolicy::Fcfs, VerifyPolicy::Batched] {
        let mut request = Request {
            prompts: vec!["abc".into()],
            n: 4,
            max_tokens: 0,
            ..Request::default()
        };
        let out = run(verify, &request);
        assert!(out
            .completions
            .iter()
            .all(|c| c.tokens.is_empty() && c.finish_reason == FinishReason::Length));
        assert_eq!(out.stats.target_forwards, 0);
        assert!(out.trace.is_empty());

        request.max_tokens = 1;
        let out = run(verify, &request);
        assert!(out
            .completions
            .iter()
            .all(|c| c.tokens.len() == 1 && c.finish_reason == FinishReason::Length));
        // No drafting when only one token may be added: the target picks it.
        assert_eq!(out.stats.drafted, 0);
        check_trace(&out, verify);
    }
}

#[test]
fn sd_runs_branches_one_after_another() {
    let config = EngineConfig {
        kind: EngineKind::Sd,
        trace: true,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(
        Box::new(TinyLm::new(TinyConfig::target())),
        Some(Box::new(TinyLm::new(TinyConfig::draft()))),
        config,
    )
    .unwrap();
    let request = Request {
        prompts: vec!["ab".into()],
        n: 3,
        max_tokens: 20,
        ..Request::default()
    };
    let out = engine.generate(&request).unwrap();
    let order: Vec<usize> = out.trace.iter().map(|e| e.branch).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "sd interleaved branches");
}

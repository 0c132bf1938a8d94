//! The llama.cpp backend's KV cache: truncation, forks and token trees give the
//! logits of a fresh run over the same tokens.

mod common;

use seed::model::{BatchToken, Model, SeqId};

/// Largest logit difference tolerated between a batched and a one-token
/// forward over the same tokens. SmolLM2 is Q4_1/Q8_0, whose CPU kernels
/// give near-identical results whatever the batch; K-quants differ more.
const TOLERANCE: f32 = 0.05;

fn feed(model: &mut dyn Model, seq: SeqId, tokens: &[u32], logits_all: bool) -> Vec<Vec<f32>> {
    let start = model.seq_len(seq).unwrap();
    let batch: Vec<BatchToken> = tokens
        .iter()
        .enumerate()
        .map(|(i, &token)| BatchToken {
            token,
            pos: start + i,
            seqs: vec![seq],
            logits: logits_all || i + 1 == tokens.len(),
        })
        .collect();
    model.forward(&batch).unwrap();
    let rows = if logits_all { tokens.len() } else { 1 };
    (0..rows).map(|r| model.logits(r).to_vec()).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Logits after each of `tokens`, one token per forward (plain decoding).
fn one_by_one(model: &mut dyn Model, prompt: &[u32], tokens: &[u32]) -> Vec<Vec<f32>> {
    let seq = model.create().unwrap();
    feed(model, seq, prompt, false);
    let out = tokens
        .iter()
        .map(|&t| feed(model, seq, &[t], false).remove(0))
        .collect();
    model.release(seq);
    out
}

#[test]
fn truncation_after_rejection_gives_fresh_logits() {
    let _lock = lock();
    let mut model = common::smollm(2048);
    let prompt = model.tokenize("The capital of France is", true).unwrap();
    let good = model
        .tokenize(" Paris, and the capital of Italy is Rome.", false)
        .unwrap();
    let fresh = one_by_one(&mut model, &prompt, &good);

    let seq = model.create().unwrap();
    feed(&mut model, seq, &prompt, false);
    // A draft whose last three tokens are wrong: verify it, then drop them.
    let mut draft = good[..3].to_vec();
    draft.extend(model.tokenize(" Berlin Madrid Oslo", false).unwrap());
    feed(&mut model, seq, &draft, true);
    model.truncate(seq, prompt.len() + 3).unwrap();
    assert_eq!(model.seq_len(seq).unwrap(), prompt.len() + 3);
    let rest = feed(&mut model, seq, &good[3..], true);
    for (i, row) in rest.iter().enumerate() {
        let d = max_diff(row, &fresh[3 + i]);
        assert!(d < TOLERANCE, "position {i}: logits differ by {d}");
    }
}

#[test]
fn token_tree_paths_give_the_logits_of_their_chains() {
    let _lock = lock();
    let mut model = common::smollm(2048);
    let prompt = model.tokenize("One, two, three,", true).unwrap();
    let a = model.tokenize(" four, five", false).unwrap();
    let b = model.tokenize(" 4, 5", false).unwrap();
    let fresh_a = one_by_one(&mut model, &prompt, &a);
    let fresh_b = one_by_one(&mut model, &prompt, &b);

    // Prompt but its last token, then a fork; the last prompt token is shared by both paths.
    let s0 = model.create().unwrap();
    feed(&mut model, s0, &prompt[..prompt.len() - 1], false);
    let s1 = model.fork(s0).unwrap();
    let n = prompt.len() - 1;
    let mut batch = vec![BatchToken {
        token: prompt[n],
        pos: n,
        seqs: vec![s0, s1],
        logits: true,
    }];
    for (path, seq) in [(&a, s0), (&b, s1)] {
        for (i, &t) in path.iter().enumerate() {
            batch.push(BatchToken {
                token: t,
                pos: n + 1 + i,
                seqs: vec![seq],
                logits: true,
            });
        }
    }
    model.forward(&batch).unwrap();
    let mut row = 1;
    for fresh in [&fresh_a, &fresh_b] {
        for (i, expect) in fresh.iter().enumerate() {
            let d = max_diff(model.logits(row), expect);
            assert!(
                d < TOLERANCE,
                "tree row {row} (token {i}): logits differ by {d}"
            );
            row += 1;
        }
    }
    // The fork keeps only its own path after releasing the other.
    model.release(s0);
    assert_eq!(model.seq_len(s1).unwrap(), n + 1 + b.len());
    let next = feed(&mut model, s1, &[b[0]], false);
    let check = {
        let mut m2 = common::smollm(2048);
        let mut path = b.clone();
        path.push(b[0]);
        one_by_one(&mut m2, &prompt, &path).pop().unwrap()
    };
    let d = max_diff(&next[0], &check);
    assert!(d < TOLERANCE, "after release, logits differ by {d}");
}

/// Three branches of a prompt decoded side by side (their cells interleave),
/// each verifying a one-token draft that is rejected every other step; the
/// first is kept as a completion, the others dropped; then, after the cells
/// are reclaimed where the engine reclaims them, a prompt extending the
/// completion goes through the cache. Returns its next-token logits and
/// those of the same tokens computed afresh on `fresh`.
fn logits_after_a_kept_completion(
    model: &mut dyn Model,
    fresh: &mut dyn Model,
) -> (Vec<f32>, Vec<f32>) {
    let mut cache = seed::decode::prefix::PrefixCache::new(4096, 64);
    let prompt = model
        .tokenize("Natalia sold clips to 48 friends.", true)
        .unwrap();
    let (seqs, _) = cache.prefill(model, &[&prompt, &prompt, &prompt]).unwrap();
    let texts = [
        " In May she sold half as many",
        " Then she sold 24",
        " So the total",
    ];
    let paths: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| model.tokenize(t, false).unwrap())
        .collect();
    let steps = paths.iter().map(Vec::len).min().unwrap();
    let wrong = model.tokenize(" zebra", false).unwrap()[0];
    for step in 0..steps {
        let mut batch = Vec::new();
        for (b, path) in paths.iter().enumerate() {
            let pos = prompt.len() + step;
            batch.push(BatchToken {
                token: path[step],
                pos,
                seqs: vec![seqs[b]],
                logits: true,
            });
            if step % 2 == 0 {
                batch.push(BatchToken {
                    token: wrong,
                    pos: pos + 1,
                    seqs: vec![seqs[b]],
                    logits: true,
                });
            }
        }
        model.forward(&batch).unwrap();
        for (b, _) in paths.iter().enumerate() {
            model.truncate(seqs[b], prompt.len() + step + 1).unwrap();
        }
    }
    let kept: Vec<u32> = [&prompt[..], &paths[0][..steps]].concat();
    assert_eq!(
        cache.insert_completion(model, &kept, seqs[0]).unwrap(),
        steps
    );
    seqs.iter().for_each(|&s| model.release(s));
    if cache.may_reclaim(model) {
        model.reclaim(); // as `Engine::reclaim` between requests
    }
    let more = model.tokenize(" clips in May, and", false).unwrap();
    let next: Vec<u32> = [&kept[..], &more[..]].concat();
    let (seqs, stats) = cache.prefill(model, &[&next]).unwrap();
    assert_eq!(stats.reused, kept.len(), "the completion is reused");
    let last = model.tokenize(" in", false).unwrap();
    let reused = feed(model, seqs[0], &last, false).remove(0);
    let seq = fresh.create().unwrap();
    feed(fresh, seq, &next, false);
    let expect = feed(fresh, seq, &last, false).remove(0);
    (reused, expect)
}

/// The real-model lock, with exact mode's kernels chosen for the whole process
/// first: ggml picks them at its first matrix product, so the exact test must
/// not depend on whether a fast-mode test ran before it (it failed when one did).
fn lock() -> std::sync::MutexGuard<'static, ()> {
    seed::model::llama::disable_tiled_matmul();
    common::REAL_MODEL_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn load(path: &std::path::Path, exact: bool) -> seed::model::llama::LlamaLm {
    let options = seed::model::llama::LlamaOptions {
        context: 2048,
        max_sequences: 64,
        threads: 0,
        exact,
    };
    seed::model::llama::LlamaLm::load(path, &options).unwrap()
}

#[test]
fn a_kept_completion_gives_fresh_logits_bit_for_bit_in_exact_mode() {
    let _lock = lock();
    let draft = common::model_path(seed::fetch::models::DRAFT_DEFAULT);
    for path in [common::smollm_path(), draft] {
        let (mut model, mut fresh) = (load(&path, true), load(&path, true));
        let (reused, expect) = logits_after_a_kept_completion(&mut model, &mut fresh);
        let same = reused
            .iter()
            .zip(&expect)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{}: logits differ by {}",
            path.display(),
            max_diff(&reused, &expect)
        );
    }
}

#[test]
fn a_kept_completion_gives_fresh_logits_within_tolerance_in_fast_mode() {
    let _lock = lock();
    let (mut model, mut fresh) = (common::smollm(2048), common::smollm(2048));
    let (reused, expect) = logits_after_a_kept_completion(&mut model, &mut fresh);
    let d = max_diff(&reused, &expect);
    assert!(d < TOLERANCE, "logits differ by {d}");
}

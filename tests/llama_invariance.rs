//! Exact mode's promise, shown directly: the logits of one sequence are
//! bit-identical whether its tokens are fed one per forward alone, inside a
//! batch of 8 sequences, or as k-token verifications next to other sequences,
//! and whatever forwards its prompt was prefilled in.
//!
//! On SmolLM2 (Q4_1) and on the default draft, Qwen2.5-Coder 0.5B (Q4_K_M),
//! whose K-quant weights llama.cpp would repack for 4-row gemm kernels.

mod common;

use seed::fetch::models::DRAFT_DEFAULT;
use seed::model::llama::{LlamaLm, LlamaOptions};
use seed::model::{BatchToken, Model, SeqId, Token};

fn tokens(m: &dyn Model) -> (Vec<Token>, Vec<Token>) {
    let prompt = m
        .tokenize(
            "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning",
            true,
        )
        .unwrap();
    let cont = m
        .tokenize(
            " and bakes muffins for her friends every day with four. She sells the remainder at the market.",
            false,
        )
        .unwrap();
    (prompt, cont)
}

fn prefill(m: &mut dyn Model, prompt: &[Token]) -> SeqId {
    let s = m.create().unwrap();
    let batch: Vec<_> = prompt
        .iter()
        .enumerate()
        .map(|(pos, &token)| BatchToken {
            token,
            pos,
            seqs: vec![s],
            logits: false,
        })
        .collect();
    m.forward(&batch).unwrap();
    s
}

/// Feeds `cont` after `prompt` in steps of `k` tokens, with `others` forks fed
/// other tokens in the same forwards; returns the logits of every step of the
/// watched sequence.
fn run(
    m: &mut dyn Model,
    prompt: &[Token],
    cont: &[Token],
    k: usize,
    others: usize,
) -> Vec<Vec<u32>> {
    let s = prefill(m, prompt);
    let forks: Vec<_> = (0..others).map(|_| m.fork(s).unwrap()).collect();
    let n = prompt.len();
    let mut rows = Vec::new();
    for start in (0..cont.len()).step_by(k) {
        let end = (start + k).min(cont.len());
        let mut batch = Vec::new();
        for (f, &seq) in forks.iter().enumerate() {
            for j in start..end {
                batch.push(BatchToken {
                    token: cont[(j + 3 * f + 1) % cont.len()],
                    pos: n + j,
                    seqs: vec![seq],
                    logits: j % 2 == 0,
                });
            }
        }
        // The watched sequence in the middle of the batch.
        let at = batch.len() / 2;
        let watched: Vec<_> = (start..end)
            .map(|j| BatchToken {
                token: cont[j],
                pos: n + j,
                seqs: vec![s],
                logits: true,
            })
            .collect();
        let first_row = batch[..at].iter().filter(|t| t.logits).count();
        batch.splice(at..at, watched);
        m.forward(&batch).unwrap();
        for r in 0..end - start {
            rows.push(
                m.logits(first_row + r)
                    .iter()
                    .map(|x| x.to_bits())
                    .collect(),
            );
        }
    }
    m.release(s);
    for f in forks {
        m.release(f);
    }
    m.reclaim();
    rows
}

/// A prompt longer than one exact-mode chunk (63 tokens).
const LONG_PROMPT: &str = "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?\nAnswer: Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May. The answer is 72.\nQuestion: Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?\nAnswer:";

/// Feeds `prompt` to a new sequence `part` tokens per forward, each forward
/// also carrying as many tokens of `side` on another sequence; returns the
/// logits of the prompt's last token.
fn prefill_logits(
    m: &mut dyn Model,
    prompt: &[Token],
    part: usize,
    side: Option<&[Token]>,
) -> Vec<u32> {
    let s = m.create().unwrap();
    let side_seq = side.map(|_| m.create().unwrap());
    let mut side_pos = 0;
    let mut last = Vec::new();
    for start in (0..prompt.len()).step_by(part) {
        let end = (start + part).min(prompt.len());
        let mut batch = Vec::new();
        if let (Some(side), Some(seq)) = (side, side_seq) {
            let take = (end - start).min(side.len() - side_pos);
            for (j, &token) in side.iter().enumerate().skip(side_pos).take(take) {
                batch.push(BatchToken {
                    token,
                    pos: j,
                    seqs: vec![seq],
                    logits: false,
                });
            }
            side_pos += take;
        }
        for j in start..end {
            batch.push(BatchToken {
                token: prompt[j],
                pos: j,
                seqs: vec![s],
                logits: j + 1 == prompt.len(),
            });
        }
        m.forward(&batch).unwrap();
        if end == prompt.len() {
            last = m.logits(0).iter().map(|x| x.to_bits()).collect();
        }
    }
    m.release(s);
    if let Some(seq) = side_seq {
        m.release(seq);
    }
    m.reclaim();
    last
}

fn batch_differences(m: &mut dyn Model) -> Vec<String> {
    let (prompt, cont) = tokens(m);
    let alone = run(m, &prompt, &cont, 1, 0);
    assert_eq!(alone.len(), cont.len());
    let mut bad = Vec::new();
    for (k, others, what) in [
        (1, 7, "one token in a batch of 8 sequences"),
        (3, 0, "a 3-token verification"),
        (4, 0, "a 4-token verification"),
        (4, 7, "a 4-token verification beside 7 sequences"),
        (
            9,
            7,
            "9-token verifications beside 7 sequences (forwards over 63 tokens)",
        ),
    ] {
        let got = run(m, &prompt, &cont, k, others);
        for (pos, (a, b)) in alone.iter().zip(&got).enumerate() {
            let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
            if differing > 0 {
                bad.push(format!(
                    "{what}: {differing} logits of token {pos} differ from one-token decoding"
                ));
                break;
            }
        }
    }
    bad
}

fn prefill_differences(m: &mut dyn Model) -> Vec<String> {
    let prompt = m.tokenize(LONG_PROMPT, true).unwrap();
    let side = m.tokenize(&LONG_PROMPT[40..], true).unwrap();
    assert!(prompt.len() > 100, "{} tokens", prompt.len());
    let reference = prefill_logits(m, &prompt, 1, None);
    let mut bad = Vec::new();
    for (part, side, what) in [
        (prompt.len(), None, "whole prompt in one forward"),
        (3, None, "3-token forwards"),
        (4, None, "4-token forwards"),
        (40, None, "40-token forwards"),
        (
            1,
            Some(&side[..]),
            "one token beside another sequence's token",
        ),
        (
            20,
            Some(&side[..]),
            "20 tokens beside 20 of another sequence",
        ),
        (
            prompt.len(),
            Some(&side[..]),
            "whole prompt beside another whole prompt",
        ),
    ] {
        let got = prefill_logits(m, &prompt, part, side);
        let differing = reference.iter().zip(&got).filter(|(x, y)| x != y).count();
        if differing > 0 {
            bad.push(format!(
                "{what}: {differing} logits differ from one-token prefilling"
            ));
        }
    }
    bad
}

fn qwen_draft_exact() -> LlamaLm {
    let options = LlamaOptions {
        context: 4096,
        max_sequences: 64,
        threads: 0,
        exact: true,
    };
    LlamaLm::load(&common::model_path(DRAFT_DEFAULT), &options).expect("load Qwen 0.5B")
}

#[test]
fn exact_mode_logits_do_not_depend_on_the_batch() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let bad = batch_differences(&mut common::smollm_exact(4096));
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn exact_mode_logits_do_not_depend_on_the_batch_with_k_quants() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let bad = batch_differences(&mut qwen_draft_exact());
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn exact_mode_prefill_does_not_depend_on_its_forwards() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let bad = prefill_differences(&mut common::smollm_exact(4096));
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn exact_mode_prefill_does_not_depend_on_its_forwards_with_k_quants() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let bad = prefill_differences(&mut qwen_draft_exact());
    assert!(bad.is_empty(), "{bad:#?}");
}

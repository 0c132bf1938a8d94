//! Exact mode's promise, shown directly: the logits of one sequence are
//! bit-identical whether its tokens are fed one per forward alone, inside a
//! batch of 8 sequences, or as k-token verifications next to other sequences.

mod common;

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

#[test]
fn exact_mode_logits_do_not_depend_on_the_batch() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let mut m = common::smollm_exact(4096);
    let (prompt, cont) = tokens(&m);
    let alone = run(&mut m, &prompt, &cont, 1, 0);
    assert_eq!(alone.len(), cont.len());
    for (k, others, what) in [
        (1, 7, "one token in a batch of 8 sequences"),
        (4, 0, "a 4-token verification"),
        (4, 7, "a 4-token verification beside 7 sequences"),
        (
            9,
            7,
            "9-token verifications beside 7 sequences (forwards over 63 tokens)",
        ),
    ] {
        let got = run(&mut m, &prompt, &cont, k, others);
        for (pos, (a, b)) in alone.iter().zip(&got).enumerate() {
            let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
            assert_eq!(
                differing, 0,
                "{what}: {differing} logits of token {pos} differ from one-token decoding"
            );
        }
    }
}

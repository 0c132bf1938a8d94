//! Prompt processing: each decoded prompt's sequence in a model's KV cache
//! (through the prefix cache where it is on), and one sequence per sample
//! forked from it.

use super::error::Result;
use super::prefix::PrefixCache;
use crate::model::{BatchToken, Model, SeqId, Token};

/// Most tokens of one prompt-processing forward.
const PREFILL_CHUNK: usize = 1024;

/// Returns a new sequence per prompt holding all but its last token (which
/// every branch feeds itself), and how many of those tokens were not computed
/// (found in the prefix cache, or shared with another prompt of the request).
/// Without a cache each prompt is computed in full.
pub(crate) fn process_prompts(
    model: &mut dyn Model,
    cache: Option<&mut PrefixCache>,
    prompts: &[Vec<Token>],
) -> Result<(Vec<SeqId>, usize)> {
    let heads: Vec<&[Token]> = prompts.iter().map(|p| &p[..p.len() - 1]).collect();
    if let Some(cache) = cache {
        let (seqs, stats) = cache.prefill(model, &heads)?;
        let total: usize = heads.iter().map(|h| h.len()).sum();
        return Ok((seqs, total - stats.computed));
    }
    let seqs = heads
        .iter()
        .map(|_| model.create())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let chunk = PREFILL_CHUNK.min(model.context_size());
    let mut batch = Vec::new();
    for (head, &seq) in heads.iter().zip(&seqs) {
        for (pos, &token) in head.iter().enumerate() {
            batch.push(BatchToken {
                token,
                pos,
                seqs: vec![seq],
                logits: false,
            });
            if batch.len() == chunk {
                model.forward(&batch)?;
                batch.clear();
            }
        }
    }
    model.forward(&batch)?;
    Ok((seqs, 0))
}

/// One sequence per sample, `samples` per prompt in the prompts' order:
/// forks of each prompt's sequence, the last sample taking the sequence
/// itself. On an error every sequence of `roots` and every fork is freed.
pub(crate) fn sample_seqs(
    model: &mut dyn Model,
    roots: &[SeqId],
    samples: usize,
) -> Result<Vec<SeqId>> {
    let mut seqs = Vec::with_capacity(roots.len() * samples);
    for (j, &root) in roots.iter().enumerate() {
        for s in 0..samples {
            if s + 1 == samples {
                seqs.push(root);
                continue;
            }
            match model.fork(root) {
                Ok(seq) => seqs.push(seq),
                Err(e) => {
                    // Out of sequences: free what this request holds.
                    for &seq in seqs.iter().chain(&roots[j..]) {
                        model.release(seq);
                    }
                    return Err(e.into());
                }
            }
        }
    }
    Ok(seqs)
}

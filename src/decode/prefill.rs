//! Prompt processing: each decoded prompt's sequence in a model's KV cache
//! (through the prefix cache where it is on), and one sequence per sample
//! forked from it.

use super::error::Result;
use super::faults;
use super::owned::OwnedSeqs;
use super::prefix::{PrefillStats, PrefixCache};
use crate::model::{BatchToken, Model, SeqId, Token};

/// Most tokens of one prompt-processing forward.
const PREFILL_CHUNK: usize = 1024;

/// Returns a new sequence per prompt holding all but its last token (which
/// every branch feeds itself), and what was computed: `reused` counts the
/// tokens not computed (found in the prefix cache, or shared with another
/// prompt of the request). Without a cache each prompt is computed in full.
pub(crate) fn process_prompts(
    model: &mut dyn Model,
    cache: Option<&mut PrefixCache>,
    prompts: &[Vec<Token>],
) -> Result<(Vec<SeqId>, PrefillStats)> {
    let heads: Vec<&[Token]> = prompts.iter().map(|p| &p[..p.len() - 1]).collect();
    let total: usize = heads.iter().map(|h| h.len()).sum();
    if let Some(cache) = cache {
        let (seqs, stats) = cache.prefill(model, &heads)?;
        let reused = total - stats.computed;
        return Ok((seqs, PrefillStats { reused, ..stats }));
    }
    let chunk = PREFILL_CHUNK.min(model.context_size());
    let mut seqs = OwnedSeqs::new(model);
    let mut batch = Vec::new();
    for head in &heads {
        let seq = seqs.create()?;
        for (pos, &token) in head.iter().enumerate() {
            batch.push(BatchToken {
                token,
                pos,
                seqs: vec![seq],
                logits: false,
            });
            if batch.len() == chunk {
                faults::forward(seqs.model(), &batch, faults::PREFILL_FORWARD)?;
                batch.clear();
            }
        }
    }
    faults::forward(seqs.model(), &batch, faults::PREFILL_FORWARD)?;
    let computed = PrefillStats {
        computed: total,
        ..PrefillStats::default()
    };
    Ok((seqs.keep(), computed))
}

/// One sequence per sample, `samples` per prompt in the prompts' order:
/// forks of each prompt's sequence, the last sample taking the sequence
/// itself. On an error every sequence of `roots` and every fork is freed.
pub(crate) fn sample_seqs(
    model: &mut dyn Model,
    roots: &[SeqId],
    samples: usize,
) -> Result<Vec<SeqId>> {
    let mut owned = OwnedSeqs::new(model);
    owned.adopt(roots);
    let mut seqs = Vec::with_capacity(roots.len() * samples);
    for &root in roots {
        for _ in 1..samples {
            seqs.push(owned.fork(root)?);
        }
        seqs.push(root);
    }
    owned.keep();
    Ok(seqs)
}

//! Explaining where a greedy engine's output leaves plain decoding's.
//!
//! Outside exact mode a batched target forward may round differently from a
//! one-token forward, so at a near-tie the engine can pick another token than
//! `ar` would. [`find_divergences`] reruns the request with `ar`, finds the
//! first differing token of every completion, and measures the target's gap
//! between its two best tokens there with a one-token forward: a small gap
//! says the difference is rounding at a near-tie, not a bug.

use super::config::EngineKind;
use super::engine::Engine;
use super::error::Result;
use super::noise::Noise;
use super::output::Output;
use super::request::Request;
use crate::model::{BatchToken, Model, Token};
use serde::Serialize;

/// The first position where one completion differs from `ar`'s.
#[derive(Clone, Debug, Serialize)]
pub struct Divergence {
    pub prompt_index: usize,
    pub sample_index: usize,
    /// Generated tokens both agree on before the difference.
    pub position: usize,
    pub ar_token: Option<Token>,
    pub engine_token: Option<Token>,
    /// How near a tie the target's choice there was, by a one-token forward
    /// at that position: its best logit minus its second best at temperature
    /// 0, else the log-ratio of the two best scores of the noise's race.
    pub top_two_gap: f32,
}

/// Runs `request` with `ar` on the same models and compares it with `output`
/// (the engine's result for the same request).
pub fn find_divergences(
    engine: &mut Engine,
    request: &Request,
    output: &Output,
) -> Result<Vec<Divergence>> {
    let kind = engine.config.kind;
    engine.config.kind = EngineKind::Ar;
    let reference = engine.generate(request);
    engine.config.kind = kind;
    divergences_from(engine.target.as_mut(), request, output, &reference?)
}

/// The first difference of every completion of `output` from `reference`'s
/// (both for `request`), with how near a tie the target's choice was there.
pub fn divergences_from(
    target: &mut dyn Model,
    request: &Request,
    output: &Output,
    reference: &Output,
) -> Result<Vec<Divergence>> {
    let mut found = Vec::new();
    for (ours, theirs) in output.completions.iter().zip(&reference.completions) {
        let position = ours
            .tokens
            .iter()
            .zip(&theirs.tokens)
            .take_while(|(a, b)| a == b)
            .count();
        if position == ours.tokens.len() && position == theirs.tokens.len() {
            continue;
        }
        let mut context = target.tokenize(&request.prompts[ours.prompt_index], true)?;
        context.extend_from_slice(&ours.tokens[..position]);
        found.push(Divergence {
            prompt_index: ours.prompt_index,
            sample_index: ours.sample_index,
            position,
            ar_token: theirs.tokens.get(position).copied(),
            engine_token: ours.tokens.get(position).copied(),
            top_two_gap: {
                let logits = last_logits(target, &context)?;
                if request.sampling.is_greedy() {
                    top_two_gap(&logits)
                } else {
                    let noise = Noise::new(request.seed, ours.prompt_index, ours.sample_index);
                    noise.margin(position, &request.sampling.distribution(&logits))
                }
            },
        });
    }
    Ok(found)
}

/// The target's next-token logits after `context`, the last token fed alone
/// as plain decoding does.
fn last_logits(model: &mut dyn Model, context: &[Token]) -> Result<Vec<f32>> {
    let seq = model.create()?;
    let result = (|| {
        let (last, head) = context.split_last().expect("prompts are never empty");
        let batch: Vec<BatchToken> = head
            .iter()
            .enumerate()
            .map(|(pos, &token)| BatchToken {
                token,
                pos,
                seqs: vec![seq],
                logits: false,
            })
            .collect();
        for chunk in batch.chunks(1024) {
            model.forward(chunk)?;
        }
        model.forward(&[BatchToken {
            token: *last,
            pos: head.len(),
            seqs: vec![seq],
            logits: true,
        }])?;
        Ok(model.logits(0).to_vec())
    })();
    model.release(seq);
    model.reclaim();
    result
}

/// The best logit minus the second best.
fn top_two_gap(logits: &[f32]) -> f32 {
    let (mut best, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &x in logits {
        if x > best {
            second = best;
            best = x;
        } else if x > second {
            second = x;
        }
    }
    best - second
}

//! The task's corrections in the loop: a generated text whose mistake the
//! task can correct (GSM8K: a wrong calculation, as a calculator would give
//! the result at the `=`, the way GSM8K's own solutions are annotated) is cut
//! at the mistake, the right text written in, and the model continues from
//! there. One batch request per round, for the texts still to correct.

use super::algorithms::Searcher;
use super::task::SampleSpec;
use super::tree::{Phase, Samples};
use anyhow::Result;

/// The most corrections of one text (a step rarely holds more calculations).
const MAX_ROUNDS: usize = 3;

/// A sample to continue from its corrected start.
struct Pending {
    prompt: usize,
    sample: usize,
    start: String,
    note: String,
}

impl Searcher<'_, '_> {
    /// `outputs` (the samples of `specs`) with the task's corrections made
    /// and continued; notes what was corrected for the tree (`note_of`).
    pub(super) fn corrected(
        &mut self,
        specs: &[SampleSpec],
        mut outputs: Samples,
        step: usize,
    ) -> Result<Samples> {
        if !self.config().corrections {
            return Ok(outputs);
        }
        // What was corrected, per prompt and sample.
        let mut notes: Vec<Vec<Vec<String>>> =
            outputs.iter().map(|s| vec![Vec::new(); s.len()]).collect();
        for _ in 0..MAX_ROUNDS {
            let pending = self.to_correct(&outputs);
            if pending.is_empty() {
                break;
            }
            let continued: Vec<SampleSpec> = pending
                .iter()
                .map(|p| SampleSpec {
                    answer_start: format!("{}{}", specs[p.prompt].answer_start, p.start),
                    ..specs[p.prompt].clone()
                })
                .collect();
            let rests = self.ask(&continued, 1, step, Phase::Generate)?;
            for (p, rest) in pending.into_iter().zip(rests) {
                // The cut text's tokens count too: the model wrote them.
                let (rest, made) = rest.into_iter().next().unwrap_or_default();
                let sample = &mut outputs[p.prompt][p.sample];
                *sample = (p.start + &rest, sample.1.plus(made));
                notes[p.prompt][p.sample].push(p.note);
            }
        }
        for (samples, notes) in outputs.iter().zip(notes) {
            for ((text, _), notes) in samples.iter().zip(notes) {
                if !notes.is_empty() {
                    self.correction_notes
                        .insert(text.trim().to_string(), notes.join("; "));
                }
            }
        }
        Ok(outputs)
    }

    fn to_correct(&self, outputs: &Samples) -> Vec<Pending> {
        let mut pending = Vec::new();
        for (prompt, samples) in outputs.iter().enumerate() {
            for (sample, (text, _)) in samples.iter().enumerate() {
                if let Some(c) = self.task().correct(text) {
                    pending.push(Pending {
                        prompt,
                        sample,
                        start: c.start,
                        note: c.note,
                    });
                }
            }
        }
        pending
    }

    /// What the task corrected in a generated text, if anything.
    pub(super) fn note_of(&self, text: &str) -> Option<String> {
        self.correction_notes.get(text.trim()).cloned()
    }
}

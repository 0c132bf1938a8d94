//! The baselines a tree search must beat, run by the same searcher: `io` (the
//! answer alone), `cot` (one chain of thought) and `cot-sc` (k chains, the
//! majority answer: self-consistency, Wang et al. 2023).

use super::algorithms::Searcher;
use super::task::Chain;
use super::tree::{Phase, Status};
use anyhow::Result;
use std::collections::HashMap;

impl Searcher<'_, '_> {
    /// Asks for `n` chains in one request; each is a finished child of the
    /// root scored by the number of chains that share its answer. Returns the
    /// first chain with the most common answer (the root if none came back).
    pub(super) fn chains(&mut self, style: Chain, n: usize) -> Result<usize> {
        let spec = self.task().chain(style);
        let specs = [spec];
        let outputs = self.ask(&specs, n, 0, Phase::Generate)?;
        let outputs = self.corrected(&specs, outputs, 0)?;
        let mut ids = Vec::new();
        for (text, made) in outputs.into_iter().flatten() {
            let state = self.task().chain_state(&text);
            let id = self.tree.add(0, text.trim().to_string(), state, made);
            self.tree.nodes[id].finished = true;
            self.tree.nodes[id].note = self.note_of(&text);
            ids.push(id);
        }
        let answers: Vec<Option<String>> = ids
            .iter()
            .map(|&id| self.task().check(&self.tree.nodes[id].state).answer)
            .collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for answer in answers.iter().flatten() {
            *counts.entry(answer).or_default() += 1;
        }
        let votes = |a: &Option<String>| a.as_deref().map_or(0, |a| counts[a]);
        // The most votes, ties to the earlier chain.
        let chosen = (0..ids.len()).rev().max_by_key(|&i| votes(&answers[i]));
        for (i, &id) in ids.iter().enumerate() {
            let node = &mut self.tree.nodes[id];
            node.score = Some(votes(&answers[i]) as f64);
            node.status = if Some(i) == chosen {
                Status::Kept
            } else {
                Status::Pruned
            };
        }
        Ok(chosen.map_or(0, |i| ids[i]))
    }
}

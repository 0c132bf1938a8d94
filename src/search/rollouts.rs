//! Evaluation by rollouts (`--evaluate rollout`, RAP's simulation with
//! self-consistency as the reward): each open state is continued to a whole
//! solution, and its value is the share of the search's answers so far that
//! agree with its rollouts' answers. The rollouts are finished children of
//! their state and vote in the final answer beside the finished states, so the
//! search ends with a majority over every whole solution it wrote.

use super::algorithms::Searcher;
use super::tree::{Generated, Phase, Status};
use anyhow::{anyhow, Result};

/// A rollout's or finished state's weight in the final vote.
const VOTE: f64 = 1.0;
/// An open state's value when all the answers agree with its rollouts'.
const FULL_VALUE: f64 = 10.0;

impl Searcher<'_, '_> {
    /// Scores `nodes` (all unruled, of one step): finished states are votes,
    /// open states get `n_evaluate` rollouts each, in one request.
    pub(super) fn rollout_scores(&mut self, nodes: &[usize], step: usize) -> Result<Vec<f64>> {
        let mut answers: Vec<Vec<Option<String>>> = vec![Vec::new(); nodes.len()];
        let mut open = Vec::new();
        let mut specs = Vec::new();
        for (i, &n) in nodes.iter().enumerate() {
            let state = &self.tree.nodes[n].state;
            if self.tree.nodes[n].finished {
                answers[i].push(self.task().check(state).answer);
                continue;
            }
            let spec = self.task().rollout(state).ok_or_else(|| {
                anyhow!(
                    "{} has no rollouts in this layout (GSM8K: --layout continue)",
                    self.task().name()
                )
            })?;
            open.push(i);
            specs.push(spec);
        }
        if !specs.is_empty() {
            let outputs = self.ask(&specs, self.config().n_evaluate, step, Phase::Evaluate)?;
            let outputs = self.corrected(&specs, outputs, step)?;
            for (&i, samples) in open.iter().zip(outputs) {
                for (text, made) in samples {
                    answers[i].push(self.add_rollout(nodes[i], &text, made));
                }
            }
        }
        for answer in answers.iter().flatten().flatten() {
            *self.answer_tally.entry(answer.clone()).or_default() += 1;
        }
        let total = self.answer_tally.values().sum::<usize>().max(1) as f64;
        let share = |a: &Option<String>| {
            a.as_ref()
                .map_or(0.0, |a| self.answer_tally[a] as f64 / total)
        };
        Ok(nodes
            .iter()
            .zip(&answers)
            .map(|(&n, answers)| match self.tree.nodes[n].finished {
                true => VOTE,
                false => {
                    let sum: f64 = answers.iter().map(share).sum();
                    FULL_VALUE * sum / answers.len().max(1) as f64
                }
            })
            .collect())
    }

    /// Adds a rollout of `parent` to the tree; returns its answer.
    fn add_rollout(&mut self, parent: usize, text: &str, made: Generated) -> Option<String> {
        let thought = self.task().chain_state(text);
        let state = self.task().extend(&self.tree.nodes[parent].state, &thought);
        let answer = self.task().check(&state).answer;
        let id = self.tree.add(parent, thought, state, made);
        let note = self.note_of(text);
        let node = &mut self.tree.nodes[id];
        node.finished = true;
        node.score = Some(VOTE);
        node.status = Status::Rollout;
        node.note = note;
        answer
    }
}

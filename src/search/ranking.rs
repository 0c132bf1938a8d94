//! How well a search ranks what it can tell apart: how often evaluation kept
//! a state on a right path beside a wrong one, and how often the final choice
//! was right where the finished states gave a right and a wrong answer.

use super::algorithms::Searcher;

impl Searcher<'_, '_> {
    /// Counts a selection in the tree's ranking where the task can tell its
    /// candidates apart.
    pub(super) fn count_ranking(&mut self, candidates: &[usize], kept: &[usize]) {
        let right = |c: &usize| self.task.on_right_path(&self.tree.nodes[*c].state);
        let verdicts: Vec<Option<bool>> = candidates.iter().map(right).collect();
        if verdicts.contains(&Some(true)) && verdicts.contains(&Some(false)) {
            self.tree.ranking.decisions += 1;
            if kept.iter().any(|c| right(c) == Some(true)) {
                self.tree.ranking.right_kept += 1;
            }
        }
    }

    /// Counts the final choice in the tree's ranking where the finished
    /// states gave both a right and a wrong answer.
    pub(super) fn count_answer_choice(&mut self, chosen_right: bool) {
        let verdicts: Vec<bool> = (self.tree.nodes.iter())
            .filter(|n| n.finished)
            .map(|n| self.task.check(&n.state).correct)
            .collect();
        if verdicts.contains(&true) && verdicts.contains(&false) {
            self.tree.ranking.answer_choices += 1;
            self.tree.ranking.right_chosen += usize::from(chosen_right);
        }
    }
}

//! The final vote of BFS and beam: the candidates' answers weighed against
//! each other, each candidate's part kept in the tree as its ballot.

use super::algorithms::{Searcher, VoteWeight};
use super::tree::Ballot;

impl Searcher<'_, '_> {
    /// The candidate whose answer has the most weight in total over the
    /// candidates that give it (a vote weighted by value, as RAP aggregates
    /// its paths; `vote_weight`); the best ranked candidate with that answer.
    /// Ties go to the earlier candidate. Records the ballots in the tree.
    pub(super) fn final_vote(&mut self, candidates: &[usize]) -> Option<usize> {
        self.tree.ballots = candidates.iter().map(|&c| self.ballot(c)).collect();
        let mut support: Vec<(Option<&String>, f64, &Ballot)> = Vec::new();
        for ballot in &self.tree.ballots {
            let (answer, weight) = (ballot.answer.as_ref(), self.weight(ballot));
            match support.iter_mut().find(|s| s.0 == answer) {
                Some(s) => {
                    s.1 += weight;
                    if ballot.value > s.2.value {
                        s.2 = ballot;
                    }
                }
                None => support.push((answer, weight, ballot)),
            }
        }
        let best = support.iter().rev().max_by(|x, y| x.1.total_cmp(&y.1))?;
        Some(best.2.node)
    }

    /// What candidate `c` brings to the vote.
    fn ballot(&self, c: usize) -> Ballot {
        let check = self.task().check(&self.tree.nodes[c].state);
        Ballot {
            node: c,
            answer: check.answer,
            correct: check.correct,
            value: self.rank_score(c),
            confidence: self.tree.path_confidence(c),
        }
    }

    /// A ballot's weight in the vote.
    fn weight(&self, ballot: &Ballot) -> f64 {
        let value = ballot.value.max(0.0);
        match self.config().vote_weight {
            VoteWeight::Value => value,
            VoteWeight::Confidence => value * ballot.confidence,
        }
    }
}

//! The record of one search: every node with its thought, score and fate,
//! and the engine statistics of every step.

use super::task::Check;
use crate::decode::RunStats;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Root,
    /// Selected to be expanded further (or, at the last step, a final candidate).
    Kept,
    /// Evaluated and dropped.
    Pruned,
    /// Generated but never evaluated or chosen (a DFS that stopped early).
    Unexplored,
    /// Broke the task's rules (`note` says how); never evaluated.
    Invalid,
    /// Its parent continued to a whole solution to evaluate the parent (a
    /// vote in the final answer; `--evaluate rollout`).
    Rollout,
}

/// What generating a text took and how sure the target was of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Generated {
    pub tokens: usize,
    /// The target's log-probability of those tokens, summed (0 where the
    /// engine cannot tell: scripted models, remote servers).
    pub logprob: f64,
}

impl Generated {
    pub fn plus(self, other: Generated) -> Generated {
        Generated {
            tokens: self.tokens + other.tokens,
            logprob: self.logprob + other.logprob,
        }
    }

    /// An equal share of it, for one of `parts` thoughts written together.
    pub fn share(self, parts: usize) -> Generated {
        let parts = parts.max(1);
        Generated {
            tokens: self.tokens / parts,
            logprob: self.logprob / parts as f64,
        }
    }
}

/// Texts of the samples of each prompt of a request, with what generating
/// them took.
pub type Samples = Vec<Vec<(String, Generated)>>;

#[derive(Clone, Debug, Serialize)]
pub struct Node {
    pub id: usize,
    pub parent: Option<usize>,
    pub depth: usize,
    /// The thought this node adds to its parent's state.
    pub thought: String,
    /// All thoughts from the root.
    pub state: String,
    pub score: Option<f64>,
    pub status: Status,
    /// Tokens generated for this thought.
    pub tokens: usize,
    /// The target's log-probability of them, summed.
    pub logprob: f64,
    /// This node's share of its generation step's time.
    pub time_s: f64,
    /// The state answers the problem: its path ends here.
    pub finished: bool,
    /// What the task's rules said about it (why it is invalid, or its ruled value).
    pub note: Option<String>,
}

/// How often evaluation kept a state on a right path when one was there to
/// keep: over the selections whose candidates the task could tell apart
/// (some on a right path, some not).
impl Node {
    /// Adds a note after the one it has (a ruling after a correction).
    pub fn add_note(&mut self, note: String) {
        self.note = Some(match self.note.take() {
            Some(earlier) => format!("{earlier}; {note}"),
            None => note,
        });
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranking {
    pub decisions: usize,
    pub right_kept: usize,
    /// Searches whose finished states gave a right and a wrong answer, and
    /// those of them whose chosen answer was right: how well the final
    /// choice (the value-weighted vote, the majority) picks among them.
    pub answer_choices: usize,
    pub right_chosen: usize,
}

impl Ranking {
    /// Adds another search's counts.
    pub fn add(&mut self, other: &Ranking) {
        self.decisions += other.decisions;
        self.right_kept += other.right_kept;
        self.answer_choices += other.answer_choices;
        self.right_chosen += other.right_chosen;
    }
}

/// What one candidate brought to the final vote (BFS and beam).
#[derive(Clone, Debug, Serialize)]
pub struct Ballot {
    pub node: usize,
    pub answer: Option<String>,
    pub correct: bool,
    pub value: f64,
    /// `Tree::path_confidence` of the node.
    pub confidence: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Generate,
    Evaluate,
}

/// One batch request of the search.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    pub step: usize,
    pub phase: Phase,
    pub prompts: usize,
    pub wall_s: f64,
    pub stats: RunStats,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tree {
    pub task: String,
    pub problem: String,
    pub nodes: Vec<Node>,
    pub steps: Vec<StepRecord>,
    /// Root to the chosen final node.
    pub path: Vec<usize>,
    pub answer: Option<Check>,
    /// The final vote's candidates, empty where there was none.
    pub ballots: Vec<Ballot>,
    pub ranking: Ranking,
    pub wall_s: f64,
}

impl Tree {
    pub fn new(task: &str, problem: &str) -> Self {
        Tree {
            task: task.to_string(),
            problem: problem.to_string(),
            nodes: vec![Node {
                id: 0,
                parent: None,
                depth: 0,
                thought: String::new(),
                state: String::new(),
                score: None,
                status: Status::Root,
                tokens: 0,
                logprob: 0.0,
                time_s: 0.0,
                finished: false,
                note: None,
            }],
            steps: Vec::new(),
            path: Vec::new(),
            answer: None,
            ballots: Vec::new(),
            ranking: Ranking::default(),
            wall_s: 0.0,
        }
    }

    pub fn add(&mut self, parent: usize, thought: String, state: String, made: Generated) -> usize {
        let id = self.nodes.len();
        let depth = self.nodes[parent].depth + 1;
        self.nodes.push(Node {
            id,
            parent: Some(parent),
            depth,
            thought,
            state,
            score: None,
            status: Status::Unexplored,
            tokens: made.tokens,
            logprob: made.logprob,
            time_s: 0.0,
            finished: false,
            note: None,
        });
        id
    }

    /// Records a thought the task's rules rejected, with the reason.
    pub fn add_invalid(&mut self, parent: usize, thought: String, reason: String) -> usize {
        let state = self.nodes[parent].state.clone();
        let id = self.add(parent, thought, state, Generated::default());
        self.nodes[id].status = Status::Invalid;
        self.nodes[id].note = Some(reason);
        id
    }

    /// Node ids from the root to `id`.
    pub fn path_to(&self, id: usize) -> Vec<usize> {
        let mut path = vec![id];
        while let Some(p) = self.nodes[*path.last().unwrap()].parent {
            path.push(p);
        }
        path.reverse();
        path
    }

    /// Sum of the scores from the root to `id`.
    pub fn cumulative_score(&self, id: usize) -> f64 {
        self.path_to(id)
            .iter()
            .filter_map(|&n| self.nodes[n].score)
            .sum()
    }

    /// How sure the target was of the path from the root to `id`: the
    /// geometric mean of its tokens' probabilities (1 where unknown), the
    /// trace confidence of DeepConf (Fu et al. 2025).
    pub fn path_confidence(&self, id: usize) -> f64 {
        let path = self.path_to(id);
        let tokens: usize = path.iter().map(|&n| self.nodes[n].tokens).sum();
        let logprob: f64 = path.iter().map(|&n| self.nodes[n].logprob).sum();
        (logprob / tokens.max(1) as f64).exp()
    }

    pub fn generated_tokens(&self) -> usize {
        self.steps.iter().map(|s| s.stats.generated_tokens).sum()
    }

    /// What must be equal between two engines at temperature 0: the shape,
    /// thoughts, scores and fates of all nodes, and the answer.
    pub fn signature(&self) -> String {
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                (
                    n.parent,
                    &n.thought,
                    n.score.map(|s| format!("{s:.6}")),
                    n.status,
                    &n.note,
                )
            })
            .collect();
        serde_json::to_string(&(nodes, &self.path, &self.answer)).unwrap_or_default()
    }
}

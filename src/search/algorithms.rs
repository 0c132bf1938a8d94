//! BFS, DFS and beam search over thoughts, and the single-chain baselines
//! they must beat (`chains.rs`). Every generation and evaluation step is one
//! batch request, so the engine sees all its branches at once.
//!
//! A path ends at a state that answers the problem (`Task::is_finished`) or
//! at the most steps; the best finished state wins. Thoughts that break the
//! task's rules are kept in the tree as invalid, and states whose value the
//! rules decide are not sent to the model for evaluation.

use super::llm::{render, Llm};
use super::task::{Chain, SampleSpec, Task};
use super::tree::{Generated, Phase, Samples, Status, StepRecord, Tree};
use crate::choice_enum;
use crate::decode::{Request, Sampling};
use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

choice_enum!(pub Method "method" {
    Bfs = "bfs", Dfs = "dfs", Beam = "beam", Io = "io", Cot = "cot", CotSc = "cot-sc"
});
choice_enum!(pub Generation "generation" {
    Sample = "sample",
    Propose = "propose",
    Enumerate = "enumerate",
});
choice_enum!(pub Evaluation "evaluation" { Value = "value", Vote = "vote", Rollout = "rollout" });
choice_enum!(pub Selection "selection" { Greedy = "greedy", Sample = "sample" });
choice_enum!(pub VoteWeight "vote weight" { Value = "value", Confidence = "confidence" });

#[derive(Clone, Debug, Serialize)]
pub struct SearchConfig {
    pub method: Method,
    pub generation: Generation,
    pub evaluation: Evaluation,
    /// Thoughts generated per expanded state; chains of `cot-sc`.
    pub k: usize,
    /// States kept per step (BFS), beam width (beam).
    pub b: usize,
    /// Most thought steps on a path; `None` uses the task's.
    pub steps: Option<usize>,
    /// Samples of each evaluation prompt.
    pub n_evaluate: usize,
    /// `propose`: samples of each state's propose prompt, whose proposals
    /// are pooled (a small model lists few next steps in one answer), per
    /// step; the last entry holds for the steps after it.
    pub n_propose: Vec<usize>,
    pub selection: Selection,
    /// What a candidate brings to the final vote: its value, or its value
    /// times its path's confidence (`Tree::path_confidence`).
    pub vote_weight: VoteWeight,
    /// DFS: children scoring below this are pruned.
    pub threshold: f64,
    /// DFS: most states to generate.
    pub budget: usize,
    pub sampling: Sampling,
    /// Temperature of the draft model (speculative engines); `None` uses the target's.
    pub draft_temperature: Option<f32>,
    pub seed: u64,
    /// Let the task correct what it can check in generated text and the
    /// model continue from there (GSM8K's calculator; `corrections.rs`).
    pub corrections: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            method: Method::Bfs,
            generation: Generation::Sample,
            evaluation: Evaluation::Value,
            k: 3,
            b: 1,
            steps: None,
            n_evaluate: 1,
            n_propose: vec![1],
            selection: Selection::Greedy,
            vote_weight: VoteWeight::Value,
            threshold: 0.0,
            budget: 100,
            sampling: Sampling {
                temperature: 0.7,
                ..Sampling::default()
            },
            draft_temperature: None,
            seed: 0,
            corrections: true,
        }
    }
}

impl SearchConfig {
    pub fn validate(&self) -> Result<()> {
        anyhow::ensure!(self.k >= 1, "k (thoughts per state) must be at least 1");
        anyhow::ensure!(self.b >= 1, "b (states kept per step) must be at least 1");
        anyhow::ensure!(self.n_evaluate >= 1, "n_evaluate must be at least 1");
        anyhow::ensure!(
            !self.n_propose.is_empty() && self.n_propose.iter().all(|&n| n >= 1),
            "n_propose must be at least 1 at every step"
        );
        anyhow::ensure!(self.steps != Some(0), "steps must be at least 1");
        Ok(())
    }

    /// Samples of each propose prompt at `step` (0-based): the step's count,
    /// else the last one.
    pub fn n_propose_at(&self, step: usize) -> usize {
        let count = self.n_propose.get(step).or(self.n_propose.last());
        count.copied().unwrap_or(1)
    }
}

/// Called after every batch request with the tree so far.
pub type OnStep<'a> = dyn FnMut(&Tree, &StepRecord) + 'a;

/// Runs one search and returns its tree.
pub fn search(
    llm: &mut dyn Llm,
    task: &dyn Task,
    config: &SearchConfig,
    on_step: &mut OnStep,
) -> Result<Tree> {
    config.validate()?;
    let mut s = Searcher {
        llm,
        task,
        config,
        tree: Tree::new(task.name(), task.problem()),
        rng: ChaCha8Rng::seed_from_u64(config.seed),
        requests: 0,
        start: Instant::now(),
        on_step,
        correction_notes: HashMap::new(),
        answer_tally: HashMap::new(),
    };
    let final_node = match config.method {
        Method::Bfs | Method::Beam => s.breadth_first()?,
        Method::Dfs => s.depth_first()?,
        Method::Io => s.chains(Chain::Direct, 1)?,
        Method::Cot => s.chains(Chain::StepByStep, 1)?,
        Method::CotSc => s.chains(Chain::StepByStep, config.k)?,
    };
    let answer = task.check(&s.tree.nodes[final_node].state);
    s.count_answer_choice(answer.correct);
    s.tree.path = s.tree.path_to(final_node);
    s.tree.answer = Some(answer);
    s.tree.wall_s = s.start.elapsed().as_secs_f64();
    Ok(s.tree)
}

pub(super) struct Searcher<'a, 'b> {
    llm: &'a mut dyn Llm,
    pub(super) task: &'a dyn Task,
    config: &'a SearchConfig,
    pub(super) tree: Tree,
    rng: ChaCha8Rng,
    requests: u64,
    start: Instant,
    on_step: &'a mut OnStep<'b>,
    /// What the task corrected, by generated text (`corrections.rs`).
    pub(super) correction_notes: HashMap<String, String>,
    /// Rollout evaluation: how many rollouts and finished states gave each
    /// answer so far (`rollouts.rs`).
    pub(super) answer_tally: HashMap<String, usize>,
}

impl Searcher<'_, '_> {
    fn steps(&self) -> usize {
        self.config.steps.unwrap_or_else(|| self.task.steps())
    }

    pub(super) fn task(&self) -> &dyn Task {
        self.task
    }

    pub(super) fn config(&self) -> &SearchConfig {
        self.config
    }

    /// Sends one batch request: `n` samples of each prompt. Returns the texts
    /// and token counts per prompt.
    pub(super) fn ask(
        &mut self,
        specs: &[SampleSpec],
        n: usize,
        step: usize,
        phase: Phase,
    ) -> Result<Samples> {
        let first = &specs[0];
        let prompts = specs
            .iter()
            .map(|s| render(&*self.llm, s))
            .collect::<Result<Vec<_>>>()?;
        let request = Request {
            prompts,
            n,
            sampling: self.config.sampling.clone(),
            draft_temperature: self.config.draft_temperature,
            max_tokens: specs
                .iter()
                .map(|s| s.max_tokens)
                .max()
                .unwrap_or(first.max_tokens),
            stop: first.stop.clone(),
            // A new seed per request, so repeated prompts give new samples.
            seed: self
                .config
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(self.requests),
        };
        self.requests += 1;
        let t0 = Instant::now();
        let output = self.llm.generate(&request)?;
        let record = StepRecord {
            step,
            phase,
            prompts: specs.len(),
            wall_s: t0.elapsed().as_secs_f64(),
            stats: output.stats,
        };
        let mut out = vec![Vec::new(); specs.len()];
        for c in output.completions {
            let made = Generated {
                tokens: c.tokens.len(),
                logprob: c.logprobs.iter().map(|&l| f64::from(l)).sum(),
            };
            out[c.prompt_index].push((c.text, made));
        }
        (self.on_step)(&self.tree, &record);
        self.tree.steps.push(record);
        Ok(out)
    }

    /// Generates the children of `parents` in one request. Identical new
    /// states are kept once.
    fn expand(&mut self, parents: &[usize], step: usize) -> Result<Vec<usize>> {
        let states: Vec<String> = parents
            .iter()
            .map(|&p| self.tree.nodes[p].state.clone())
            .collect();
        let (specs, n): (Vec<SampleSpec>, usize) = match self.config.generation {
            Generation::Enumerate => return self.enumerate(parents, &states),
            Generation::Sample => (
                states.iter().map(|s| self.task.sample(s, step)).collect(),
                self.config.k,
            ),
            Generation::Propose => (
                states.iter().map(|s| self.task.propose(s, step)).collect(),
                self.config.n_propose_at(step),
            ),
        };
        let t0 = Instant::now();
        let outputs = self.ask(&specs, n, step, Phase::Generate)?;
        let outputs = self.corrected(&specs, outputs, step)?;
        let mut seen = HashSet::new();
        let mut children = Vec::new();
        for ((&parent, state), samples) in parents.iter().zip(&states).zip(outputs) {
            let thoughts = self.thoughts(state, samples);
            children.extend(self.add_children(parent, state, thoughts, &mut seen));
        }
        let share = t0.elapsed().as_secs_f64() / children.len().max(1) as f64;
        for &c in &children {
            self.tree.nodes[c].time_s = share;
        }
        Ok(children)
    }

    /// The children of `parents` as the task lists them, without a model
    /// call; each costs no tokens.
    fn enumerate(&mut self, parents: &[usize], states: &[String]) -> Result<Vec<usize>> {
        let mut seen = HashSet::new();
        let mut children = Vec::new();
        for (&parent, state) in parents.iter().zip(states) {
            let thoughts = self.task.enumerate(state).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} cannot list its next steps (--generate enumerate)",
                    self.task.name()
                )
            })?;
            let thoughts = thoughts
                .into_iter()
                .map(|t| (t, Generated::default()))
                .collect();
            children.extend(self.add_children(parent, state, thoughts, &mut seen));
        }
        Ok(children)
    }

    /// The thoughts in one prompt's samples, with their tokens: each sample
    /// (`sample`), or each proposal of every sample in turn (`propose`),
    /// sharing its sample's tokens.
    fn thoughts(&self, state: &str, samples: Vec<(String, Generated)>) -> Vec<(String, Generated)> {
        match self.config.generation {
            Generation::Sample | Generation::Enumerate => samples,
            Generation::Propose => samples
                .into_iter()
                .flat_map(|(text, made)| {
                    let proposals = self.task.parse_proposals(state, &text);
                    let share = made.share(proposals.len());
                    proposals.into_iter().map(move |p| (p, share))
                })
                .collect(),
        }
    }

    /// Adds the first k valid thoughts as children of `parent`: invalid ones
    /// are recorded with their reason, and a state already made in this step
    /// (`seen`) is kept once.
    fn add_children(
        &mut self,
        parent: usize,
        state: &str,
        thoughts: Vec<(String, Generated)>,
        seen: &mut HashSet<String>,
    ) -> Vec<usize> {
        let mut added = Vec::new();
        for (thought, made) in thoughts {
            if added.len() == self.config.k {
                break;
            }
            let thought = thought.trim().to_string();
            if thought.is_empty() {
                continue;
            }
            let correction = self.note_of(&thought);
            let thought = match self.task.check_thought(state, &thought) {
                Ok(canonical) => canonical,
                Err(reason) => {
                    self.tree.add_invalid(parent, thought, reason);
                    continue;
                }
            };
            let new_state = self.task.extend(state, &thought);
            if !seen.insert(new_state.clone()) {
                continue;
            }
            let id = self.tree.add(parent, thought, new_state.clone(), made);
            self.tree.nodes[id].finished = self.task.is_finished(&new_state);
            self.tree.nodes[id].note = correction;
            added.push(id);
        }
        added
    }

    /// Scores `nodes`: by the task's rules where they decide, the others by
    /// the model in one request.
    fn evaluate(&mut self, nodes: &[usize], step: usize) -> Result<()> {
        let mut asked = Vec::new();
        for &n in nodes {
            match self.task.ruling(&self.tree.nodes[n].state) {
                Some(ruling) => {
                    self.tree.nodes[n].score = Some(ruling.value);
                    self.tree.nodes[n].add_note(ruling.reason);
                }
                None => asked.push(n),
            }
        }
        self.ask_scores(&asked, step)
    }

    /// Scores `nodes` by the model, in one request.
    fn ask_scores(&mut self, nodes: &[usize], step: usize) -> Result<()> {
        if nodes.is_empty() {
            return Ok(());
        }
        let states: Vec<String> = nodes
            .iter()
            .map(|&n| self.tree.nodes[n].state.clone())
            .collect();
        let scores = match self.config.evaluation {
            Evaluation::Value => {
                let specs: Vec<SampleSpec> =
                    states.iter().map(|s| self.task.value(s, step)).collect();
                let outputs = self.ask(&specs, self.config.n_evaluate, step, Phase::Evaluate)?;
                states
                    .iter()
                    .zip(outputs)
                    .map(|(s, o)| {
                        self.task
                            .value_of(s, &o.into_iter().map(|(t, _)| t).collect::<Vec<_>>())
                    })
                    .collect::<Vec<f64>>()
            }
            Evaluation::Vote => {
                let spec = self.task.vote(&states, step);
                let outputs = self.ask(&[spec], self.config.n_evaluate, step, Phase::Evaluate)?;
                let texts: Vec<String> = outputs.into_iter().flatten().map(|(t, _)| t).collect();
                self.task.votes(&states, &texts)
            }
            Evaluation::Rollout => self.rollout_scores(nodes, step)?,
        };
        for (&n, score) in nodes.iter().zip(scores) {
            self.tree.nodes[n].score = Some(score);
        }
        Ok(())
    }

    /// The score BFS and beam rank by: the newest value (BFS) or the sum along
    /// the path (beam).
    pub(super) fn rank_score(&self, id: usize) -> f64 {
        match self.config.method {
            Method::Beam => self.tree.cumulative_score(id),
            _ => self.tree.nodes[id].score.unwrap_or(0.0),
        }
    }

    /// BFS (Tree of Thoughts) and beam search: expand every kept state, score
    /// the children, keep the best b. A child that answers the problem is
    /// not expanded: it becomes a candidate answer, and the b places go to
    /// the open children. The search goes on while an open state is kept (a
    /// model's "The answer is" can come early, for a part of the problem, so
    /// one candidate does not end the search), up to the most steps; then
    /// the candidates vote.
    fn breadth_first(&mut self) -> Result<usize> {
        let mut frontier = vec![0];
        let mut finished: Vec<usize> = Vec::new();
        for step in 0..self.steps() {
            let children = self.expand(&frontier, step)?;
            if children.is_empty() {
                break;
            }
            self.evaluate(&children, step)?;
            let (done, open): (Vec<usize>, Vec<usize>) =
                children.iter().partition(|&&c| self.tree.nodes[c].finished);
            let kept = self.select(&open);
            self.mark_kept(&children, &[done.as_slice(), &kept].concat());
            finished.extend(done);
            if kept.is_empty() {
                break;
            }
            frontier = kept;
        }
        // The best supported answer, else the best of the last frontier
        // (the root if nothing was generated).
        // Rollouts vote beside the finished states.
        let rollouts = self
            .tree
            .nodes
            .iter()
            .filter(|n| n.status == Status::Rollout);
        finished.extend(rollouts.map(|n| n.id));
        Ok(self
            .final_vote(&finished)
            .unwrap_or_else(|| self.best(&frontier)))
    }

    /// Marks `kept` as kept and the other `candidates` as pruned, and counts
    /// the selection in the tree's ranking.
    fn mark_kept(&mut self, candidates: &[usize], kept: &[usize]) {
        for &c in candidates {
            self.tree.nodes[c].status = if kept.contains(&c) {
                Status::Kept
            } else {
                Status::Pruned
            };
        }
        self.count_ranking(candidates, kept);
    }

    fn best(&self, ids: &[usize]) -> usize {
        let mut best = ids[0];
        for &id in ids {
            if self.rank_score(id) > self.rank_score(best) {
                best = id;
            }
        }
        best
    }

    /// The b children to keep: the highest ranked (ties to the earlier), or
    /// sampled in proportion to their scores without replacement.
    fn select(&mut self, children: &[usize]) -> Vec<usize> {
        let b = self.config.b.min(children.len());
        let mut ranked: Vec<(usize, f64)> =
            children.iter().map(|&c| (c, self.rank_score(c))).collect();
        match self.config.selection {
            Selection::Greedy => {
                ranked.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
                ranked.truncate(b);
                ranked.into_iter().map(|(c, _)| c).collect()
            }
            Selection::Sample => {
                let mut kept = Vec::new();
                while kept.len() < b {
                    let total: f64 = ranked.iter().map(|r| r.1.max(0.0)).sum();
                    let i = if total > 0.0 {
                        let mut u = self.rng.gen::<f64>() * total;
                        ranked
                            .iter()
                            .position(|r| {
                                u -= r.1.max(0.0);
                                u < 0.0
                            })
                            .unwrap_or(ranked.len() - 1)
                    } else {
                        self.rng.gen_range(0..ranked.len())
                    };
                    kept.push(ranked.remove(i).0);
                }
                kept.sort_unstable();
                kept
            }
        }
    }

    /// DFS: expand the best child first, prune children below the threshold,
    /// backtrack when a state has no child left; stop at the first state that
    /// answers the problem with a score above zero (children are tried best
    /// first, so it is the best finished sibling), or when the budget of
    /// states is spent, answering with the deepest, best state seen. A state
    /// at the last step that does not answer, or an answer scored zero (a
    /// Game of 24 final number that is not 24), is a dead end: the search
    /// backtracks rather than stop at a wrong plan.
    fn depth_first(&mut self) -> Result<usize> {
        let steps = self.steps();
        let mut best_partial = 0;
        let found = self.dfs(0, 0, steps, &mut best_partial)?;
        Ok(found.unwrap_or(best_partial))
    }

    fn dfs(
        &mut self,
        node: usize,
        step: usize,
        steps: usize,
        best_partial: &mut usize,
    ) -> Result<Option<usize>> {
        let state = &self.tree.nodes[node];
        if state.finished {
            return Ok((state.score.unwrap_or(0.0) > 0.0).then_some(node));
        }
        if step == steps {
            return Ok(None);
        }
        // Nodes other than the root are the generated states.
        if self.tree.nodes.len() > self.config.budget {
            return Ok(None);
        }
        let mut children = self.expand(&[node], step)?;
        self.evaluate(&children, step)?;
        let score = |t: &Tree, c: usize| t.nodes[c].score.unwrap_or(0.0);
        children.sort_by(|&x, &y| {
            score(&self.tree, y)
                .total_cmp(&score(&self.tree, x))
                .then(x.cmp(&y))
        });
        let first = children
            .iter()
            .copied()
            .filter(|&c| score(&self.tree, c) >= self.config.threshold)
            .take(1)
            .collect::<Vec<_>>();
        self.count_ranking(&children, &first);
        for c in children {
            if score(&self.tree, c) < self.config.threshold {
                self.tree.nodes[c].status = Status::Pruned;
                continue;
            }
            self.tree.nodes[c].status = Status::Kept;
            let (d, bd) = (
                self.tree.nodes[c].depth,
                self.tree.nodes[*best_partial].depth,
            );
            if d > bd
                || (d == bd
                    && score(&self.tree, c)
                        > self.tree.nodes[*best_partial].score.unwrap_or(f64::MIN))
            {
                *best_partial = c;
            }
            if let Some(found) = self.dfs(c, step + 1, steps, best_partial)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

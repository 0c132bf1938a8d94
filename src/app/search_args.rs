//! How to search: the search options shared by `solve` and `bench`.

use super::problems::TaskName;
use crate::decode::{Request, Sampling};
use crate::search::algorithms::{
    Evaluation, Generation, Method, SearchConfig, Selection, VoteWeight,
};
use crate::search::task::Layout;
use anyhow::Result;
use clap::Args;

/// How to search, shared by `solve` and `bench`.
#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    /// bfs, dfs, beam, or a baseline: io, cot, cot-sc (default: dfs for
    /// blocksworld, whose goal check lets it backtrack from a wrong plan;
    /// else bfs).
    #[arg(long)]
    pub method: Option<Method>,
    /// Thought generation: sample, propose, or enumerate (the task lists the
    /// valid next steps itself, as RAP's Blocksworld does) (default: propose
    /// for game24, enumerate for blocksworld, else sample).
    #[arg(long)]
    pub generate: Option<Generation>,
    /// State evaluation: value, vote or rollout (default: vote for text,
    /// rollout for gsm8k in the continue layout, else value).
    #[arg(long)]
    pub evaluate: Option<Evaluation>,
    /// Thoughts per expanded state; chains of cot-sc (default: 20 for
    /// game24 and blocksworld, every proposal or action in practice; else 3).
    #[arg(long)]
    pub k: Option<usize>,
    /// States kept per step (BFS) or beam width (default: 5 for game24, 3
    /// for blocksworld, else 1).
    #[arg(long)]
    pub b: Option<usize>,
    /// Thought steps (default: the task's).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Where a state's steps go in the prompts that extend it: separate (a
    /// new user message per call, ToT's layout) or continue (GSM8K and
    /// Blocksworld: the steps as the model's answer so far, and on GSM8K the
    /// last step and every evaluation as a follow-up turn after it, so the
    /// prefix cache reuses the previous calls' prompts and completions).
    /// Default: continue for GSM8K (as accurate and faster, BENCHMARKS.md),
    /// separate for the others.
    #[arg(long)]
    pub layout: Option<Layout>,
    /// Samples per evaluation prompt.
    #[arg(long, default_value_t = 1)]
    pub n_evaluate: usize,
    /// Samples of each propose prompt, their proposals pooled; a list gives
    /// one count per step, the last holding for the steps after it, as in
    /// 3,1 (default: 3 for game24, else 1).
    #[arg(long, value_delimiter = ',')]
    pub n_propose: Option<Vec<usize>>,
    #[arg(long, default_value = "greedy")]
    pub select: Selection,
    /// What a finished state or rollout brings to the final vote: its value,
    /// or its value times the target's confidence in its path (the geometric
    /// mean of its tokens' probabilities).
    #[arg(long, default_value = "value")]
    pub vote_weight: VoteWeight,
    /// DFS: prune children scoring below this.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub threshold: f64,
    /// DFS: most states to generate.
    #[arg(long, default_value_t = 100)]
    pub budget: usize,
    /// Temperature of the draft model (default: the target's).
    #[arg(long, allow_negative_numbers = true)]
    pub draft_temperature: Option<f32>,
    /// Nucleus sampling (default 0.95, with --top-k 40: llama.cpp's
    /// defaults). Untruncated, the default target's long tail at 0.7 puts
    /// stray tokens of other languages into thoughts ("9 * 2 = 18 sữa").
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Top-k sampling; 0 keeps every token.
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Leave generated text as the model wrote it: by default the task
    /// corrects what it can check and the model continues from there (GSM8K:
    /// a wrong calculation gets its right result at the `=`, a calculator).
    #[arg(long)]
    pub no_corrections: bool,
}

/// How wide a task searches unless told.
struct Breadth {
    k: usize,
    b: usize,
    n_propose: Vec<usize>,
}

impl Breadth {
    /// Game of 24 as Tree of Thoughts searches it (every proposal, 5 states
    /// kept per step), pooling three samples of each propose prompt: the
    /// default target lists few steps in one answer (README, accuracy).
    /// Blocksworld takes every valid action the task lists and keeps 3 states.
    fn of(task: TaskName) -> Self {
        match task {
            TaskName::Game24 => Breadth {
                k: 20,
                b: 5,
                n_propose: vec![3],
            },
            // Every valid action (4 blocks allow at most 20); with one state
            // kept a single wrong pick ends a longer plan (README, accuracy).
            TaskName::Blocksworld => Breadth {
                k: 20,
                b: 3,
                n_propose: vec![1],
            },
            _ => Breadth {
                k: 3,
                b: 1,
                n_propose: vec![1],
            },
        }
    }
}

impl SearchArgs {
    /// Creative Writing votes; GSM8K in its continued layout rolls out (the
    /// target's ratings hardly tell a right solution from a wrong one); the
    /// other tasks are valued.
    fn default_evaluation(&self, task: TaskName) -> Evaluation {
        match task {
            TaskName::Text => Evaluation::Vote,
            TaskName::Gsm8k if self.layout(task) == Layout::Continue => Evaluation::Rollout,
            _ => Evaluation::Value,
        }
    }

    /// The prompt layout for `task`: the one asked for, else the task's default.
    pub fn layout(&self, task: TaskName) -> Layout {
        self.layout.unwrap_or(if task == TaskName::Gsm8k {
            Layout::Continue
        } else {
            Layout::Separate
        })
    }

    /// The search settings for `task` at `temperature`, checked.
    pub fn config(&self, task: TaskName, temperature: f32) -> Result<SearchConfig> {
        let breadth = Breadth::of(task);
        let config = SearchConfig {
            method: self.method.unwrap_or(match task {
                TaskName::Blocksworld => Method::Dfs,
                _ => Method::Bfs,
            }),
            generation: self.generate.unwrap_or(match task {
                TaskName::Game24 => Generation::Propose,
                TaskName::Blocksworld => Generation::Enumerate,
                _ => Generation::Sample,
            }),
            evaluation: self.evaluate.unwrap_or(self.default_evaluation(task)),
            k: self.k.unwrap_or(breadth.k),
            b: self.b.unwrap_or(breadth.b),
            steps: self.steps,
            n_evaluate: self.n_evaluate,
            n_propose: self.n_propose.clone().unwrap_or(breadth.n_propose),
            selection: self.select,
            vote_weight: self.vote_weight,
            threshold: self.threshold,
            budget: self.budget,
            sampling: Sampling {
                temperature,
                top_p: self.top_p,
                top_k: self.top_k,
            },
            draft_temperature: self.draft_temperature,
            seed: self.seed,
            corrections: !self.no_corrections,
        };
        config.validate()?;
        Request {
            prompts: vec![String::new()],
            sampling: config.sampling.clone(),
            draft_temperature: config.draft_temperature,
            ..Default::default()
        }
        .validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        search: SearchArgs,
    }

    /// The search settings `seed ARGS` gives `task`.
    fn parsed(args: &[&str], task: TaskName) -> SearchConfig {
        let cli = Cli::try_parse_from([&["seed"], args].concat()).unwrap();
        cli.search.config(task, 0.7).unwrap()
    }

    fn layout(args: &[&str], task: TaskName) -> Layout {
        let cli = Cli::try_parse_from([&["seed"], args].concat()).unwrap();
        cli.search.layout(task)
    }

    #[test]
    fn blocksworld_searches_depth_first_unless_told_otherwise() {
        let method = |args: &[&str], task| parsed(args, task).method;
        assert_eq!(method(&[], TaskName::Blocksworld), Method::Dfs);
        assert_eq!(method(&[], TaskName::Gsm8k), Method::Bfs);
        let bfs = method(&["--method", "bfs"], TaskName::Blocksworld);
        assert_eq!(bfs, Method::Bfs);
    }

    #[test]
    fn game24_and_blocksworld_search_wide_unless_told_otherwise() {
        let config = |args: &[&str], task| {
            let c = parsed(args, task);
            (c.k, c.b, c.n_propose)
        };
        assert_eq!(config(&[], TaskName::Game24), (20, 5, vec![3]));
        assert_eq!(config(&[], TaskName::Gsm8k), (3, 1, vec![1]));
        assert_eq!(
            config(
                &["--k", "4", "--b", "2", "--n-propose", "3,1"],
                TaskName::Game24
            ),
            (4, 2, vec![3, 1])
        );
        assert_eq!(config(&[], TaskName::Blocksworld), (20, 3, vec![1]));
        assert_eq!(
            config(&["--b", "2"], TaskName::Blocksworld),
            (20, 2, vec![1])
        );
        assert_eq!(config(&["--b", "2"], TaskName::Text), (3, 2, vec![1]));
    }

    #[test]
    fn the_last_propose_count_holds_for_the_later_steps() {
        let cli = Cli::try_parse_from(["seed", "--n-propose", "3,2,1"]).unwrap();
        let c = cli.search.config(TaskName::Game24, 0.7).unwrap();
        let counts: Vec<usize> = (0..5).map(|s| c.n_propose_at(s)).collect();
        assert_eq!(counts, [3, 2, 1, 1, 1]);
        let zero = Cli::try_parse_from(["seed", "--n-propose", "3,0"]).unwrap();
        assert!(zero.search.config(TaskName::Game24, 0.7).is_err());
    }

    #[test]
    fn gsm8k_rolls_out_in_its_continued_layout_unless_told_otherwise() {
        let evaluation = |args: &[&str], task| parsed(args, task).evaluation;
        assert_eq!(evaluation(&[], TaskName::Gsm8k), Evaluation::Rollout);
        let separate = ["--layout", "separate"];
        assert_eq!(evaluation(&separate, TaskName::Gsm8k), Evaluation::Value);
        let value = ["--evaluate", "value"];
        assert_eq!(evaluation(&value, TaskName::Gsm8k), Evaluation::Value);
        assert_eq!(evaluation(&[], TaskName::Game24), Evaluation::Value);
        assert_eq!(evaluation(&[], TaskName::Text), Evaluation::Vote);
    }

    #[test]
    fn gsm8k_continues_its_chain_of_thought_unless_told_otherwise() {
        assert_eq!(layout(&[], TaskName::Gsm8k), Layout::Continue);
        assert_eq!(layout(&[], TaskName::Blocksworld), Layout::Separate);
        assert_eq!(
            layout(&["--layout", "separate"], TaskName::Gsm8k),
            Layout::Separate
        );
        assert_eq!(
            layout(&["--layout", "continue"], TaskName::Blocksworld),
            Layout::Continue
        );
    }
}

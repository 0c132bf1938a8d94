//! How to search: the search options shared by `solve` and `bench`.

use super::problems::TaskName;
use crate::decode::{Request, Sampling};
use crate::search::algorithms::{Evaluation, Generation, Method, SearchConfig, Selection};
use crate::search::task::Layout;
use anyhow::Result;
use clap::Args;

/// How to search, shared by `solve` and `bench`.
#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    #[arg(long, default_value = "bfs")]
    pub method: Method,
    /// Thought generation: sample or propose (default: propose for game24, else sample).
    #[arg(long)]
    pub generate: Option<Generation>,
    /// State evaluation: value or vote (default: vote for text, else value).
    #[arg(long)]
    pub evaluate: Option<Evaluation>,
    /// Thoughts per expanded state.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// States kept per step (BFS) or beam width.
    #[arg(long, default_value_t = 1)]
    pub b: usize,
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
    #[arg(long, default_value = "greedy")]
    pub select: Selection,
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
}

impl SearchArgs {
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
        let config = SearchConfig {
            method: self.method,
            generation: self.generate.unwrap_or(if task == TaskName::Game24 {
                Generation::Propose
            } else {
                Generation::Sample
            }),
            evaluation: self.evaluate.unwrap_or(if task == TaskName::Text {
                Evaluation::Vote
            } else {
                Evaluation::Value
            }),
            k: self.k,
            b: self.b,
            steps: self.steps,
            n_evaluate: self.n_evaluate,
            selection: self.select,
            threshold: self.threshold,
            budget: self.budget,
            sampling: Sampling {
                temperature,
                top_p: self.top_p,
                top_k: self.top_k,
            },
            draft_temperature: self.draft_temperature,
            seed: self.seed,
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

    fn layout(args: &[&str], task: TaskName) -> Layout {
        let cli = Cli::try_parse_from([&["seed"], args].concat()).unwrap();
        cli.search.layout(task)
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

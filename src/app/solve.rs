//! `seed solve`: tree-of-thought search on one problem or a range of a dataset.

use super::generate::{peak_memory_mib, write_atomic};
use super::load::{EngineArgs, EngineChoice};
use crate::decode::{Drafter, EngineKind, Sampling, VerifyPolicy};
use crate::search::algorithms::{search, Evaluation, Generation, Method, SearchConfig, Selection};
use crate::search::llm::Llm;
use crate::search::task::Task;
use crate::search::tasks::data::{self, DataDir};
use crate::search::tasks::{game24::Game24, gsm8k::Gsm8k, text::Text};
use crate::search::tree::{Phase, Tree};
use crate::serve::client::RemoteLlm;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskName {
    Gsm8k,
    Game24,
    Text,
    Blocksworld,
}

#[derive(Args, Debug)]
pub struct SolveArgs {
    #[arg(long, value_enum)]
    pub task: TaskName,
    /// A word problem (gsm8k) or the four sentences (text), instead of the dataset.
    #[arg(long)]
    pub question: Option<String>,
    /// The gold answer of --question, to check the result.
    #[arg(long)]
    pub answer: Option<String>,
    /// Four numbers for Game of 24, e.g. "4 5 6 10", instead of the dataset.
    #[arg(long)]
    pub puzzle: Option<String>,
    /// Dataset problems: one index (0) or an inclusive range (900-909).
    #[arg(long)]
    pub index: Option<String>,
    /// The datasets folder (default: $SEED_DATA, ../shared/datasets, or `seed data fetch`'s).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.7, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Folder for each problem's tree (JSON) and its page (HTML).
    #[arg(long, default_value = "seed-out")]
    pub out: PathBuf,
}

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
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SearchArgs {
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
        crate::decode::Request {
            prompts: vec![String::new()],
            sampling: config.sampling.clone(),
            draft_temperature: config.draft_temperature,
            ..Default::default()
        }
        .validate()?;
        Ok(config)
    }
}

/// One problem to solve.
pub struct Problem {
    pub label: String,
    pub task: Box<dyn Task>,
    /// Whether the checker knows the right answer.
    pub checkable: bool,
}

/// `N` or `A-B` given to option `flag`.
pub fn parse_range(flag: &str, s: &str) -> Result<(usize, usize)> {
    let bad = || format!("{flag} {s:?}: expected a number or a range such as 900-909");
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b): (usize, usize) = (
                a.trim().parse().with_context(bad)?,
                b.trim().parse().with_context(bad)?,
            );
            if b < a {
                bail!("{}", bad());
            }
            Ok((a, b))
        }
        None => {
            let i = s.trim().parse().with_context(bad)?;
            Ok((i, i))
        }
    }
}

fn problems(args: &SolveArgs) -> Result<Vec<Problem>> {
    let steps = args.search.steps;
    let given = |label: &str, task: Box<dyn Task>, checkable| {
        Ok(vec![Problem {
            label: label.to_string(),
            task,
            checkable,
        }])
    };
    match (args.task, &args.question, &args.puzzle, &args.index) {
        (TaskName::Gsm8k, Some(q), None, None) => {
            let gold = args.answer.clone().unwrap_or_default();
            given(
                "question",
                Box::new(Gsm8k::new(q, &gold, steps.unwrap_or(4))),
                !gold.is_empty(),
            )
        }
        (TaskName::Game24, None, Some(p), None) => given("puzzle", Box::new(Game24::new(p)?), true),
        (TaskName::Text, Some(q), None, None) => given("input", Box::new(Text::new(q)?), true),
        (_, None, None, Some(range)) => dataset_problems(
            args.task,
            args.data.as_deref(),
            parse_range("--index", range)?,
            steps,
        ),
        (TaskName::Gsm8k, ..) => bail!("give one of --question TEXT or --index N"),
        (TaskName::Game24, ..) => bail!("give one of --puzzle \"4 5 6 10\" or --index N"),
        (TaskName::Text, ..) => bail!("give one of --question \"FOUR SENTENCES\" or --index N"),
        (TaskName::Blocksworld, ..) => {
            bail!("blocksworld problems come from the dataset: give --index N")
        }
    }
}

/// Problems `from..=to` of a task's dataset.
pub fn dataset_problems(
    task: TaskName,
    data: Option<&std::path::Path>,
    (from, to): (usize, usize),
    steps: Option<usize>,
) -> Result<Vec<Problem>> {
    let dir = DataDir::resolve(data);
    (from..=to)
        .map(|i| {
            let problem: Box<dyn Task> = match task {
                TaskName::Gsm8k => {
                    let (q, gold) = data::gsm8k(&dir, i)?;
                    Box::new(Gsm8k::new(&q, &gold, steps.unwrap_or(4)))
                }
                TaskName::Game24 => Box::new(Game24::new(&data::game24(&dir, i)?)?),
                TaskName::Text => Box::new(Text::new(&data::text(&dir, i)?)?),
                TaskName::Blocksworld => Box::new(data::blocksworld(&dir, i)?.task(steps)?),
            };
            Ok(Problem {
                label: i.to_string(),
                task: problem,
                checkable: true,
            })
        })
        .collect()
}

/// `seed solve`'s engine unless `--engine` is given: `seed` with batched
/// verification of n-gram drafts (no draft model, past requests included),
/// adaptive and cost-aware draft lengths was the fastest configuration of
/// `seed bench` on GSM8K and Game of 24 with the default target on a 2-core
/// CPU (README, "Tree-search benchmark"). Options given explicitly keep their
/// values.
fn solve_default(engine: &mut EngineArgs) -> EngineChoice {
    let choice = EngineChoice::Local(EngineKind::Seed);
    engine.choice = Some(choice.clone());
    engine.verify.get_or_insert(VerifyPolicy::Batched);
    engine.drafter.get_or_insert(Drafter::Ngram);
    engine.adaptive_gamma = true;
    engine.cost_aware = true;
    // Past requests are n-gram sources only for n-gram drafters.
    engine.ngram_history |= engine.drafter.is_some_and(|d| d.uses_ngrams());
    choice
}

pub fn run(mut args: SolveArgs) -> Result<()> {
    let chosen = args.engine.choice.is_some();
    let choice = match args.engine.choice.clone() {
        Some(choice) => choice,
        None => solve_default(&mut args.engine),
    };
    // Problems and settings are checked before any model is loaded or fetched.
    let problems = problems(&args)?;
    let config = args.search.config(args.task, args.temperature)?;
    let mut llm: Box<dyn Llm> = match choice {
        EngineChoice::Remote(url) => {
            let api_key = std::env::var("SEED_API_KEY").ok().filter(|k| !k.is_empty());
            let remote = RemoteLlm::connect(&url, api_key)?;
            eprintln!("solving with {} at {url}", remote.model());
            Box::new(remote)
        }
        EngineChoice::Local(_) => {
            let engine = args.engine.build(false)?;
            let why = if chosen {
                ""
            } else {
                " (the default; --engine to change)"
            };
            eprintln!("solving with engine {}{why}", engine.config);
            Box::new(engine)
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut totals = Totals::default();
    for p in &problems {
        let tree = solve_one(llm.as_mut(), p, &config)?;
        let base = args.out.join(format!("{}-{}", p.task.name(), p.label));
        let json = base.with_extension("json");
        write_atomic(&json, &serde_json::to_vec_pretty(&tree)?)?;
        let html = base.with_extension("html");
        write_atomic(&html, super::html::render(&tree).as_bytes())?;
        let check = tree.answer.clone().context("the search gave no answer")?;
        let verdict = match (p.checkable, check.correct) {
            (false, _) => "no gold answer to check",
            (true, true) => "right",
            (true, false) => "wrong",
        };
        println!(
            "{} {}: answer {} ({verdict}); {:.1} s, {} tokens; tree in {}",
            p.task.name(),
            p.label,
            check.answer.as_deref().unwrap_or("none"),
            tree.wall_s,
            tree.generated_tokens(),
            html.display()
        );
        totals.add(&tree, check.correct);
    }
    if problems.len() > 1 {
        totals.print();
    }
    Ok(())
}

fn solve_one(llm: &mut dyn Llm, p: &Problem, config: &SearchConfig) -> Result<Tree> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.set_prefix(format!("{} {}", p.task.name(), p.label));
        Some(bar)
    } else {
        None
    };
    let steps = config.steps.unwrap_or_else(|| p.task.steps());
    let mut on_step = |tree: &Tree, record: &crate::search::tree::StepRecord| {
        if let Some(bar) = &bar {
            let phase = if record.phase == Phase::Generate {
                "generated"
            } else {
                "evaluated"
            };
            bar.set_message(format!(
                "step {}/{steps} {phase}: {} states, {:.1} tokens/s",
                record.step + 1,
                tree.nodes.len(),
                record.stats.tokens_per_s()
            ));
        }
    };
    let tree = search(llm, p.task.as_ref(), config, &mut on_step);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    tree
}

#[derive(Default)]
struct Totals {
    problems: usize,
    right: usize,
    seconds: f64,
    tokens: usize,
}

impl Totals {
    fn add(&mut self, tree: &Tree, right: bool) {
        self.problems += 1;
        self.right += usize::from(right);
        self.seconds += tree.wall_s;
        self.tokens += tree.generated_tokens();
    }

    fn print(&self) {
        let n = self.problems as f64;
        println!(
            "accuracy {}/{} ({:.0}%); time {:.1} s total, {:.1} s per problem; tokens {} total, {:.0} per problem; peak memory {} MiB",
            self.right,
            self.problems,
            100.0 * self.right as f64 / n,
            self.seconds,
            self.seconds / n,
            self.tokens,
            self.tokens as f64 / n,
            peak_memory_mib().map_or("?".into(), |m| m.to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        engine: EngineArgs,
    }

    fn engine_args(args: &[&str]) -> EngineArgs {
        Wrap::try_parse_from(std::iter::once("solve").chain(args.iter().copied()))
            .unwrap()
            .engine
    }

    #[test]
    fn the_default_engine_keeps_options_given_explicitly() {
        let mut e = engine_args(&[]);
        solve_default(&mut e);
        assert_eq!(e.choice, Some(EngineChoice::Local(EngineKind::Seed)));
        assert_eq!(e.verify, Some(VerifyPolicy::Batched));
        assert_eq!(e.drafter, Some(Drafter::Ngram));
        assert!(e.adaptive_gamma && e.cost_aware && e.ngram_history && !e.no_dedup);

        let mut e = engine_args(&["--drafter", "model", "--verify", "fcfs"]);
        solve_default(&mut e);
        assert_eq!(e.verify, Some(VerifyPolicy::Fcfs));
        assert_eq!(e.drafter, Some(Drafter::Model));
        assert!(!e.ngram_history, "the draft model has no history");
    }
}

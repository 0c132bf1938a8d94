//! `seed solve`: tree-of-thought search on one problem or a range of a dataset.

use super::load::{EngineArgs, EngineChoice};
use super::problems::{dataset_problems, parse_range, Problem, TaskName};
use super::report::html;
use super::run_record::{RunRecord, Solved};
use super::search_args::SearchArgs;
use super::util::{peak_memory_mib, write_atomic};
use crate::search::algorithms::{search, SearchConfig};
use crate::search::llm::Llm;
use crate::search::task::Task;
use crate::search::tasks::{
    game24::Game24,
    gsm8k::{self, Gsm8k},
    text::Text,
};
use crate::search::tree::{Phase, Ranking, Tree};
use crate::serve::client::RemoteLlm;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct SolveArgs {
    /// gsm8k, game24, text or blocksworld.
    #[arg(long)]
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
    /// Folder for each problem's tree (JSON) and its page (HTML), and the
    /// run's record of what it solved (run.json).
    #[arg(long, default_value = "seed-out")]
    pub out: PathBuf,
    /// Go on with a run that was stopped: the problems --out's run.json
    /// records as solved with the same settings count from it, not solved again.
    #[arg(long)]
    pub resume: bool,
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
                Box::new(
                    Gsm8k::new(q, &gold, steps.unwrap_or(gsm8k::DEFAULT_STEPS))
                        .with_layout(args.search.layout(args.task)),
                ),
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
            args.search.layout(args.task),
        ),
        (TaskName::Gsm8k, ..) => bail!("give one of --question TEXT or --index N"),
        (TaskName::Game24, ..) => bail!("give one of --puzzle \"4 5 6 10\" or --index N"),
        (TaskName::Text, ..) => bail!("give one of --question \"FOUR SENTENCES\" or --index N"),
        (TaskName::Blocksworld, ..) => {
            bail!("blocksworld problems come from the dataset: give --index N")
        }
    }
}

pub fn run(args: SolveArgs) -> Result<()> {
    // Problems and settings are checked before any model is loaded or fetched.
    let problems = problems(&args)?;
    let config = args.search.config(args.task, args.temperature)?;
    let settings = serde_json::json!({
        "task": args.task,
        "search": config,
        "target": args.engine.models.target,
        "engine": args.engine.choice.as_ref().map(|c| format!("{c:?}")),
    });
    let mut llm: Box<dyn Llm> = match &args.engine.choice {
        Some(EngineChoice::Remote(url)) => {
            let api_key = std::env::var("SEED_API_KEY").ok().filter(|k| !k.is_empty());
            let remote = RemoteLlm::connect(url, api_key)?;
            eprintln!("solving with {} at {url}", remote.model());
            Box::new(remote)
        }
        _ => {
            let engine = args.engine.build(false)?;
            let why = if args.engine.choice.is_some() {
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
    let mut record = RunRecord::open(&args.out, settings, args.resume)?;
    let mut totals = Totals::default();
    for p in &problems {
        let base = args.out.join(format!("{}-{}", p.task.name(), p.label));
        let page = base.with_extension("html");
        let earlier = record
            .find(&p.label, p.task.problem())
            .filter(|_| args.resume);
        let (solved, when) = match earlier {
            Some(solved) => (solved.clone(), "solved before, tree in"),
            None => {
                let solved = solve_and_save(llm.as_mut(), p, &config, &base)?;
                record.add(solved.clone())?;
                (solved, "tree in")
            }
        };
        println!(
            "{} {}: answer {} ({}); {:.1} s, {} tokens; {when} {}",
            p.task.name(),
            p.label,
            solved.answer.as_deref().unwrap_or("none"),
            solved.verdict,
            solved.wall_s,
            solved.tokens,
            page.display()
        );
        totals.add(&solved);
    }
    if problems.len() > 1 {
        totals.print();
    }
    Ok(())
}

/// Solves one problem and writes its tree as `base`.json and `base`.html.
fn solve_and_save(
    llm: &mut dyn Llm,
    p: &Problem,
    config: &SearchConfig,
    base: &Path,
) -> Result<Solved> {
    let tree = solve_one(llm, p, config)?;
    write_atomic(
        &base.with_extension("json"),
        &serde_json::to_vec_pretty(&tree)?,
    )?;
    write_atomic(&base.with_extension("html"), html::render(&tree).as_bytes())?;
    let check = tree.answer.clone().context("the search gave no answer")?;
    let verdict = match (p.checkable, check.correct) {
        (false, _) => "no gold answer to check",
        (true, true) => "right",
        (true, false) => "wrong",
    };
    Ok(Solved {
        label: p.label.clone(),
        problem: p.task.problem().to_string(),
        answer: check.answer,
        verdict: verdict.to_string(),
        right: check.correct,
        wall_s: tree.wall_s,
        tokens: tree.generated_tokens(),
        ranking: tree.ranking,
    })
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
    ranking: Ranking,
}

impl Totals {
    fn add(&mut self, solved: &Solved) {
        self.problems += 1;
        self.right += usize::from(solved.right);
        self.seconds += solved.wall_s;
        self.tokens += solved.tokens;
        self.ranking.add(&solved.ranking);
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
        let r = self.ranking;
        if r.decisions > 0 {
            println!(
                "evaluation kept a state on a right path in {} of {} selections that had one beside a wrong one",
                r.right_kept, r.decisions
            );
        }
        if r.answer_choices > 0 {
            println!(
                "the final answer was right in {} of {} problems whose finished states gave a right and a wrong answer",
                r.right_chosen, r.answer_choices
            );
        }
    }
}

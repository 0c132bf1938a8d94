//! `seed bench`: every engine configuration on the same tree searches, side by
//! side, with an identity check of the trees (at every temperature: every
//! engine returns plain decoding's samples for the same seed).

use super::load::ModelArgs;
use super::preamble::shared_preambles;
use super::problems::{dataset_problems, parse_range, Problem, TaskName};
use super::report::{charts, csv, table, Row};
use super::search_args::SearchArgs;
use super::util::{peak_memory_mib, write_atomic};
use crate::decode::{
    divergences_from, Engine, EngineConfig, EngineKind, Output, Request, RunStats, TraceEvent,
    TreeShape,
};
use crate::model::ChatMessage;
use crate::search::algorithms::{search, SearchConfig};
use crate::search::llm::Llm;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// gsm8k, game24, text or blocksworld.
    #[arg(long)]
    pub task: TaskName,
    /// Dataset problems: one index or an inclusive range, e.g. 0-19 or 900-919.
    #[arg(long)]
    pub problems: String,
    /// The datasets folder (default: $SEED_DATA, ../shared/datasets, or `seed data fetch`'s).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Configurations to compare, comma-separated:
    /// ENGINE[-fcfs|-batched][+pc][+ngram|+ngram-only][+adaptive][+cost][+history][+dedup]
    /// (ENGINE ar, sd, mcsd or seed; +pc keeps prompt prefixes across
    /// requests; +ngram drafts by n-gram lookup first, +ngram-only without
    /// the draft model; +adaptive adapts draft lengths; +cost verifies only
    /// the draft tokens that pay for their rows; +history lets n-gram
    /// lookups search past requests too; +dedup decodes identical greedy
    /// samples once), or `default` (the configuration `solve`, `generate`
    /// and `serve` run without engine options) and `baseline` (the fastest
    /// that does not speculate: ar+pc+dedup).
    #[arg(long, default_value = "ar,baseline,default")]
    pub engines: String,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub models: ModelArgs,
    /// Draft length of `sd` and `seed`.
    #[arg(long, default_value_t = 3)]
    pub gamma: usize,
    /// Draft tree shape of `mcsd` (and of `seed` when given).
    #[arg(long)]
    pub tree: Option<TreeShape>,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Today's kernels instead of exact mode's batch-invariant ones (trees may
    /// then differ at near-ties).
    #[arg(long)]
    pub fast: bool,
    /// Folder for the table (CSV), results (JSON) and charts (SVG).
    #[arg(long, default_value = "seed-bench")]
    pub out: PathBuf,
    /// Also write the per-configuration results to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Start every run with an empty prefix cache. By default each run starts
    /// with the text that every problem's prompts begin with (instructions
    /// and examples) cached, as a long-running `solve` or `serve` has it.
    #[arg(long)]
    pub cold: bool,
}

/// One configuration's name and engine settings.
#[derive(Clone, Debug)]
struct Config {
    name: String,
    engine: EngineConfig,
}

/// The configurations of `--engines`, in the grammar of
/// `EngineConfig`'s names; a name without a draft shape takes `--gamma` and
/// `--tree`.
fn parse_configs(list: &str, gamma: usize, tree: &Option<TreeShape>) -> Result<Vec<Config>> {
    let mut configs: Vec<Config> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let invalid = |e: String| anyhow::anyhow!("--engines {name:?}: {e}");
        let mut engine: EngineConfig = name.parse().map_err(invalid)?;
        if !name.contains('[') {
            engine.gamma = gamma;
            engine.tree = tree.clone();
            engine.check().map_err(invalid)?;
        }
        let engine = traced(engine);
        if configs.iter().any(|c| c.name == name) {
            bail!("--engines names {name:?} twice");
        }
        configs.push(Config {
            name: name.to_string(),
            engine,
        });
    }
    if configs.is_empty() {
        bail!("--engines lists no configuration");
    }
    Ok(configs)
}

/// Passes requests to the engine, adding up their statistics, keeping the
/// trace of the first request with several branches (for the timeline chart)
/// and every request with its output (to explain a differing tree).
struct Recorder<'a> {
    engine: &'a mut Engine,
    stats: RunStats,
    requests: usize,
    timeline: Option<Vec<TraceEvent>>,
    log: Vec<(Request, Output)>,
}

impl Llm for Recorder<'_> {
    fn chat(&self, messages: &[ChatMessage]) -> Result<String> {
        Ok(self.engine.chat(messages)?)
    }

    fn generate(&mut self, request: &Request) -> Result<Output> {
        let out = self.engine.generate(request)?;
        self.stats.add(&out.stats);
        self.requests += 1;
        if self.timeline.is_none() && out.completions.len() > 1 && !out.trace.is_empty() {
            self.timeline = Some(out.trace.clone());
        }
        self.log.push((request.clone(), out.clone()));
        Ok(out)
    }
}

/// One configuration's search of one problem.
struct Run {
    wall_s: f64,
    correct: bool,
    /// The tree's signature, to compare trees.
    signature: String,
    stats: RunStats,
    requests: usize,
    warm_tokens: usize,
    timeline: Option<Vec<TraceEvent>>,
    log: Vec<(Request, Output)>,
}

/// What one configuration did over the problems so far.
#[derive(Default)]
struct Tally {
    wall_s: f64,
    requests: usize,
    problems: usize,
    correct: usize,
    stats: RunStats,
    warm_tokens: usize,
    /// The trace of its first request with several branches.
    timeline: Option<Vec<TraceEvent>>,
    /// Problems whose tree differs from the reference's.
    differing: Vec<String>,
}

impl Tally {
    fn add(&mut self, run: &mut Run) {
        self.wall_s += run.wall_s;
        self.requests += run.requests;
        self.problems += 1;
        self.correct += usize::from(run.correct);
        self.stats.add(&run.stats);
        self.warm_tokens += run.warm_tokens;
        if self.timeline.is_none() {
            self.timeline = run.timeline.take();
        }
    }
}

/// The configurations, run on one engine; `reference` builds the trees the
/// others' are compared with.
struct Bench<'a> {
    engine: Engine,
    configs: &'a [Config],
    search: &'a SearchConfig,
    reference: usize,
    cold: bool,
    bar: ProgressBar,
}

impl Bench<'_> {
    /// Problem by problem, every configuration in turn, so that machine noise
    /// falls on all alike.
    fn run_all(&mut self, problems: &[Problem]) -> Result<Vec<Tally>> {
        let mut tallies: Vec<Tally> = self.configs.iter().map(|_| Tally::default()).collect();
        for (i, p) in problems.iter().enumerate() {
            let preambles = self.preambles(problems, i)?;
            let mut runs = Vec::with_capacity(self.configs.len());
            for (c, tally) in self.configs.iter().zip(&mut tallies) {
                self.bar
                    .set_message(format!("{} {}: {}", p.task.name(), p.label, c.name));
                let mut run = self.search_once(c, p, &preambles)?;
                tally.add(&mut run);
                runs.push(run);
                self.bar.inc(1);
            }
            self.compare_trees(p, &runs, &mut tallies)?;
        }
        self.bar.finish_and_clear();
        Ok(tallies)
    }

    /// The texts problem `i`'s prompts share with another problem's (none
    /// when cold or alone).
    fn preambles(&self, problems: &[Problem], i: usize) -> Result<Vec<String>> {
        let other = if i + 1 < problems.len() {
            i + 1
        } else {
            i.wrapping_sub(1)
        };
        match problems.get(other) {
            Some(q) if !self.cold => {
                shared_preambles(&self.engine, problems[i].task.as_ref(), q.task.as_ref())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn search_once(&mut self, config: &Config, p: &Problem, preambles: &[String]) -> Result<Run> {
        self.engine.config = config.engine.clone();
        self.engine.forget_past_requests();
        let mut warm_tokens = 0;
        let warmed = if config.engine.prefix_cache {
            preambles
        } else {
            &[]
        };
        for preamble in warmed {
            warm_tokens += self.engine.warm_prefix_cache(preamble)?;
        }
        let mut recorder = Recorder {
            engine: &mut self.engine,
            stats: RunStats::default(),
            requests: 0,
            timeline: None,
            log: Vec::new(),
        };
        let start = Instant::now();
        let tree = search(&mut recorder, p.task.as_ref(), self.search, &mut |_, _| {})
            .with_context(|| format!("{} on problem {}", config.name, p.label))?;
        let wall_s = start.elapsed().as_secs_f64();
        Ok(Run {
            wall_s,
            correct: tree.answer.as_ref().is_some_and(|a| a.correct),
            signature: tree.signature(),
            stats: recorder.stats,
            requests: recorder.requests,
            warm_tokens,
            timeline: recorder.timeline,
            log: recorder.log,
        })
    }

    /// Marks the configurations whose tree of `p` differs from the
    /// reference's, and says where their tokens first differ.
    fn compare_trees(&mut self, p: &Problem, runs: &[Run], tallies: &mut [Tally]) -> Result<()> {
        let reference = &runs[self.reference];
        for (i, run) in runs.iter().enumerate() {
            if run.signature == reference.signature {
                continue;
            }
            tallies[i].differing.push(p.label.clone());
            let why = explain(&mut self.engine, &run.log, &reference.log)?;
            self.bar.suspend(|| {
                eprintln!(
                    "{} differs from {} on problem {}: {why}",
                    self.configs[i].name, self.configs[self.reference].name, p.label
                )
            });
        }
        Ok(())
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    // Everything is checked before any model is loaded.
    let configs = parse_configs(&args.engines, args.gamma, &args.tree)?;
    let search_config = args.search.config(args.task, args.temperature)?;
    let problems = dataset_problems(
        args.task,
        args.data.as_deref(),
        parse_range("--problems", &args.problems)?,
        args.search.steps,
        args.search.layout(args.task),
    )?;
    let engine = load_engine(&args, &configs)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut bench = Bench {
        engine,
        configs: &configs,
        search: &search_config,
        reference: configs
            .iter()
            .position(|c| c.engine.kind == EngineKind::Ar)
            .unwrap_or(0),
        cold: args.cold,
        bar: progress_bar(problems.len() * configs.len()),
    };
    let tallies = bench.run_all(&problems)?;
    let rows = rows(&configs, &tallies);
    let reference = &configs[bench.reference].name;
    print!("{}", table::render(&rows, reference));
    let peak = peak_memory_mib().map_or("?".into(), |m| m.to_string());
    println!(
        "{} {} problems, {} kernels, temperature {}; peak memory of the process {peak} MiB",
        problems[0].task.name(),
        problems.len(),
        if args.fast { "fast" } else { "exact" },
        args.temperature
    );
    let warm = rows[0].warm_prompt_tokens;
    match args.cold {
        true => println!("every run started with an empty prefix cache (--cold)"),
        false => println!(
            "every run started with the text all problems' prompts begin with cached \
             ({warm} tokens over the problems, computed untimed; --cold starts empty)"
        ),
    }
    write_reports(&args, &configs, &rows, &tallies)?;
    check_identity(&rows, reference)?;
    println!("identity check: every configuration built the same trees as {reference}");
    Ok(())
}

/// One engine with the models every configuration needs, set up for the first.
fn load_engine(args: &BenchArgs, configs: &[Config]) -> Result<Engine> {
    let need_draft = configs
        .iter()
        .any(|c| c.engine.kind != EngineKind::Ar && c.engine.drafter.uses_model());
    let (target, draft) = args.models.load(need_draft, !args.fast)?;
    Ok(Engine::new(target, draft, configs[0].engine.clone())?)
}

fn progress_bar(len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed} < {eta}]")
            .expect("valid template"),
    );
    bar
}

/// The configuration whose wall time the speedups over `kind` divide: the
/// first without +pc or +dedup, else the first of that kind.
fn speedup_base(configs: &[Config], kind: EngineKind) -> Option<usize> {
    configs
        .iter()
        .position(|c| c.engine.kind == kind && !c.engine.prefix_cache && !c.engine.dedup_greedy)
        .or_else(|| configs.iter().position(|c| c.engine.kind == kind))
}

/// `config` as bench runs it (every configuration records its trace).
fn traced(config: EngineConfig) -> EngineConfig {
    EngineConfig {
        trace: true,
        ..config
    }
}

fn rows(configs: &[Config], tallies: &[Tally]) -> Vec<Row> {
    let wall_of = |kind| speedup_base(configs, kind).map(|i| tallies[i].wall_s);
    let (ar_wall, sd_wall) = (wall_of(EngineKind::Ar), wall_of(EngineKind::Sd));
    let baseline_wall = configs
        .iter()
        .position(|c| c.engine == traced(EngineConfig::baseline()))
        .map(|i| tallies[i].wall_s);
    configs
        .iter()
        .zip(tallies)
        .map(|(c, t)| {
            let s = &t.stats;
            Row {
                config: c.name.clone(),
                engine: c.engine.to_string(),
                wall_s: t.wall_s,
                speedup_vs_ar: ar_wall.map(|w| w / t.wall_s),
                speedup_vs_sd: sd_wall.map(|w| w / t.wall_s),
                speedup_vs_baseline: baseline_wall.map(|w| w / t.wall_s),
                tokens_per_s: s.generated_tokens as f64 / t.wall_s,
                accept_rate: s.accept_rate(),
                accepted_per_target_forward: ratio(s.accepted, s.target_forwards),
                target_forwards_per_token: ratio(s.target_forwards, s.generated_tokens),
                generated_tokens: s.generated_tokens,
                prompt_tokens: s.prompt_tokens,
                prompt_tokens_reused: s.prompt_reused,
                prompt_seams: s.prompt_seams,
                warm_prompt_tokens: t.warm_tokens,
                prompt_s: s.prompt_s,
                prompt_share: s.prompt_s / t.wall_s.max(f64::MIN_POSITIVE),
                requests: t.requests,
                correct: t.correct,
                problems: t.problems,
                identical: t.differing.is_empty(),
                differing: t.differing.clone(),
            }
        })
        .collect()
}

/// bench.json (and --json), bench.csv, speedup.svg and timeline.svg.
fn write_reports(
    args: &BenchArgs,
    configs: &[Config],
    rows: &[Row],
    tallies: &[Tally],
) -> Result<()> {
    let json = serde_json::to_vec_pretty(rows)?;
    write_atomic(&args.out.join("bench.json"), &json)?;
    if let Some(path) = &args.json {
        write_atomic(path, &json)?;
    }
    write_atomic(&args.out.join("bench.csv"), csv::render(rows)?.as_bytes())?;
    let ar = speedup_base(configs, EngineKind::Ar).map_or("ar", |i| &configs[i].name);
    write_atomic(
        &args.out.join("speedup.svg"),
        charts::speedup(rows, ar).as_bytes(),
    )?;
    // The timeline of the fastest speculative configuration's first batch step.
    let best = (0..configs.len())
        .filter(|&i| configs[i].engine.kind != EngineKind::Ar && tallies[i].timeline.is_some())
        .min_by(|&a, &b| rows[a].wall_s.total_cmp(&rows[b].wall_s));
    if let Some(i) = best {
        let events = tallies[i].timeline.as_deref().unwrap_or_default();
        write_atomic(
            &args.out.join("timeline.svg"),
            charts::timeline(&configs[i].name, events).as_bytes(),
        )?;
    }
    println!("results in {}", args.out.display());
    Ok(())
}

/// Where two runs of the same search first produced different tokens, and
/// how near a tie the target's choice was (a near-tie explains fast mode).
fn explain(
    engine: &mut Engine,
    ours: &[(Request, Output)],
    theirs: &[(Request, Output)],
) -> Result<String> {
    for (k, ((request, out), (_, reference))) in ours.iter().zip(theirs).enumerate() {
        let found = divergences_from(engine.target.as_mut(), request, out, reference)?;
        if let Some(d) = found.first() {
            return Ok(format!(
                "request {} prompt {} sample {}: generated token {} differs; {} {:.4}",
                k + 1,
                d.prompt_index,
                d.sample_index,
                d.position,
                if request.sampling.is_greedy() {
                    "target top-two logit gap"
                } else {
                    "noise race margin"
                },
                d.top_two_gap
            ));
        }
    }
    Ok("the requests' tokens agree; the trees differ in how they were used".into())
}

/// Fails, naming every configuration and problem, if a configuration built
/// other trees than the reference.
fn check_identity(results: &[Row], reference: &str) -> Result<()> {
    let differing: Vec<&Row> = results.iter().filter(|r| !r.identical).collect();
    if differing.is_empty() {
        return Ok(());
    }
    for r in &differing {
        eprintln!(
            "IDENTITY CHECK FAILED: {} built other trees than {reference} on problems {}",
            r.config,
            r.differing.join(", ")
        );
    }
    bail!(
        "identity check failed: {} differ from {reference}",
        differing
            .iter()
            .map(|r| r.config.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Drafter, VerifyPolicy};

    #[test]
    fn configuration_names() {
        let c = parse_configs("ar, ar+pc,seed-batched+pc,sd", 3, &None).unwrap();
        assert_eq!(c.len(), 4);
        assert!(!c[0].engine.prefix_cache && c[1].engine.prefix_cache);
        assert_eq!(c[2].engine.kind, EngineKind::Seed);
        assert_eq!(c[2].engine.verify, VerifyPolicy::Batched);
        let c = parse_configs(
            "seed-batched+pc+ngram+adaptive,sd+ngram-only+cost+history",
            3,
            &None,
        )
        .unwrap();
        assert!(!c[0].engine.ngram_history && c[1].engine.ngram_history);
        assert!(c[1].engine.to_string().ends_with("+cost+history"));
        assert_eq!(c[0].engine.drafter, Drafter::NgramModel);
        assert!(c[0].engine.prefix_cache && c[0].engine.adaptive_gamma);
        assert!(!c[0].engine.cost_aware && c[1].engine.cost_aware);
        assert_eq!(c[1].engine.drafter, Drafter::Ngram);
        for bad in [
            "",
            "xx",
            "sd-batched",
            "seed-lifo",
            "ar,ar",
            "seed+cache",
            "mcsd+adaptive",
            "mcsd+cost",
            "ar+history",
            "seed+history",
        ] {
            assert!(parse_configs(bad, 3, &None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identity_check_names_what_differs() {
        let result = |config: &str, differing: &[&str]| Row {
            config: config.into(),
            identical: differing.is_empty(),
            differing: differing.iter().map(|s| s.to_string()).collect(),
            ..Row::default()
        };
        let same = [result("ar", &[]), result("seed+pc", &[])];
        assert!(check_identity(&same, "ar").is_ok());
        let differ = [
            result("ar", &[]),
            result("sd", &["3", "7"]),
            result("seed", &[]),
        ];
        let err = check_identity(&differ, "ar").unwrap_err().to_string();
        assert!(err.contains("sd") && !err.contains("seed"), "{err}");
    }
}

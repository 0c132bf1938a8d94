//! The `seed` command line.

mod bench;
mod data;
mod generate;
pub mod load;
mod loadtest;
mod models;
mod preamble;
mod problems;
mod report;
mod run_record;
mod search_args;
mod serve;
mod solve;
mod util;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "seed",
    version,
    about = "Scheduled speculative decoding for fast tree-search reasoning"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate completions for prompts with any engine.
    Generate(Box<generate::GenerateArgs>),
    /// Solve a reasoning problem by tree-of-thought search.
    Solve(Box<solve::SolveArgs>),
    /// Serve the models over an OpenAI-compatible HTTP API.
    Serve(Box<serve::ServeArgs>),
    /// Load-test an OpenAI-compatible server on this machine.
    Loadtest(Box<loadtest::LoadtestArgs>),
    /// Compare engine configurations on the same tree searches.
    Bench(Box<bench::BenchArgs>),
    /// Install data files.
    Data {
        #[command(subcommand)]
        action: data::DataAction,
    },
    /// Install or list models.
    Models {
        #[command(subcommand)]
        action: models::ModelsAction,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => generate::run(*args),
        Command::Solve(args) => solve::run(*args),
        Command::Bench(args) => bench::run(*args),
        Command::Serve(args) => serve::run(*args),
        Command::Loadtest(args) => loadtest::run(*args),
        Command::Models { action } => models::run(action),
        Command::Data { action } => data::run(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Drafter, EngineConfig, EngineKind, VerifyPolicy};

    /// The engine configuration a command line runs.
    fn engine_of(args: &[&str]) -> EngineConfig {
        let cli = Cli::try_parse_from(std::iter::once("seed").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let engine = match cli.command {
            Command::Generate(a) => a.engine,
            Command::Solve(a) => a.engine,
            Command::Serve(a) => a.engine,
            _ => panic!("{args:?} runs no engine"),
        };
        engine.config(false).unwrap()
    }

    #[test]
    fn solve_generate_and_serve_run_the_one_default_configuration() {
        for args in [
            &["solve", "--task", "gsm8k", "--index", "0"][..],
            &["generate", "hi"],
            &["serve"],
        ] {
            assert_eq!(engine_of(args), EngineConfig::fastest(), "{args:?}");
        }
    }

    #[test]
    fn options_given_explicitly_change_the_default() {
        let c = engine_of(&["generate", "--drafter", "model", "--verify", "fcfs", "hi"]);
        assert_eq!((c.drafter, c.verify), (Drafter::Model, VerifyPolicy::Fcfs));
        assert!(!c.ngram_history, "the draft model has no history");
        assert!(c.adaptive_gamma && c.cost_aware);

        let c = engine_of(&["serve", "--tree", "2,1", "--no-dedup"]);
        assert!(
            !c.adaptive_gamma && !c.cost_aware,
            "a tree has no adaptive length"
        );
        assert!(!c.dedup_greedy && c.ngram_history);

        let c = engine_of(&["generate", "--engine", "seed", "hi"]);
        assert_eq!(
            (c.kind, c.verify, c.drafter),
            (EngineKind::Seed, VerifyPolicy::Fcfs, Drafter::Model)
        );
        assert!(!c.adaptive_gamma && !c.cost_aware && !c.ngram_history);
        assert!(c.prefix_cache && c.dedup_greedy);
        assert_eq!(
            engine_of(&["solve", "--task", "gsm8k", "--engine", "ar"]),
            EngineConfig::baseline()
        );
    }
}

//! The `seed` command line.

mod bench;
mod data;
mod generate;
pub mod load;
mod loadtest;
mod models;
mod problems;
mod report;
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

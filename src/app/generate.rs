//! `seed generate`: completions for prompts with any engine.

use super::load::EngineArgs;
use super::util::{peak_memory_mib, write_atomic};
use crate::decode::{find_divergences, Divergence, Output, Request, Sampling};
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Prompts (each one is a separate request prompt).
    pub prompts: Vec<String>,
    /// Read prompts from a file, one per line.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Samples per prompt.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Temperature of the draft model (default: the target's).
    #[arg(long, allow_negative_numbers = true)]
    pub draft_temperature: Option<f32>,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Stop string (repeat for several).
    #[arg(long)]
    pub stop: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Send prompts as they are, without the chat template.
    #[arg(long)]
    pub raw: bool,
    /// Print one JSON object per completion a line.
    #[arg(long)]
    pub json: bool,
    /// Write every draft and verify event to this JSON file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Also decode with `ar` and, where a completion differs, report how near
    /// a tie the target's choice was at the first differing token (its
    /// top-two logit gap at temperature 0, the noise race's margin above).
    #[arg(long)]
    pub check_divergence: bool,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let mut prompts = args.prompts.clone();
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading prompts from {}", file.display()))?;
        prompts.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    let request = Request {
        prompts,
        n: args.n,
        sampling: Sampling {
            temperature: args.temperature,
            top_p: args.top_p,
            top_k: args.top_k,
        },
        draft_temperature: args.draft_temperature,
        max_tokens: args.max_tokens,
        stop: args.stop.clone(),
        seed: args.seed,
    };
    // Bad requests fail before any model is loaded or fetched.
    request.validate()?;
    let mut engine = args.engine.build(args.trace.is_some())?;
    let mut request = request;
    if !args.raw {
        request.prompts = request
            .prompts
            .iter()
            .map(|p| engine.chat_prompt(p))
            .collect::<Result<_, _>>()?;
    }
    let output = engine.generate(&request)?;
    if let Some(path) = &args.trace {
        write_atomic(path, &serde_json::to_vec_pretty(&output.trace)?)?;
    }
    print_output(&output, args.json)?;
    if args.check_divergence {
        let found = find_divergences(&mut engine, &request, &output)?;
        report_divergences(&found, &output, request.sampling.is_greedy());
    }
    Ok(())
}

fn report_divergences(found: &[Divergence], output: &Output, greedy: bool) {
    eprintln!(
        "divergence check: {} of {} completions differ from ar",
        found.len(),
        output.completions.len()
    );
    for d in found {
        eprintln!(
            "  prompt {} sample {}: first difference at generated token {} (ar {:?}, {} {:?}); {} {:.4}",
            d.prompt_index,
            d.sample_index,
            d.position,
            d.ar_token,
            output.stats.engine,
            d.engine_token,
            if greedy { "target top-two logit gap" } else { "noise race margin" },
            d.top_two_gap
        );
    }
}

fn print_output(output: &Output, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for c in &output.completions {
        if json {
            serde_json::to_writer(&mut out, c)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "--- prompt {} sample {} ({:?}, {} tokens)",
                c.prompt_index,
                c.sample_index,
                c.finish_reason,
                c.tokens.len()
            )?;
            writeln!(out, "{}", c.text)?;
        }
    }
    out.flush()?;
    drop(out);
    let s = &output.stats;
    eprintln!(
        "{}: {} tokens in {:.2} s ({:.1} tokens/s); accepted {}/{} drafted ({:.0}%); {} target and {} draft forwards; peak memory {} MiB",
        s.engine,
        s.generated_tokens,
        s.wall_s,
        s.tokens_per_s(),
        s.accepted,
        s.drafted,
        100.0 * s.accept_rate(),
        s.target_forwards,
        s.draft_forwards,
        peak_memory_mib().map_or("?".into(), |m| m.to_string())
    );
    Ok(())
}

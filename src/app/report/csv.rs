//! `seed bench`'s `bench.csv`: one record per row, numbers rounded as the
//! table reads them.

use super::row::Row;
use anyhow::Result;
use serde::Serialize;

/// A row as written: fixed decimals, an empty cell for a missing speedup.
#[derive(Serialize)]
struct Record<'a> {
    config: &'a str,
    engine: &'a str,
    wall_s: String,
    speedup_vs_ar: String,
    speedup_vs_sd: String,
    speedup_vs_baseline: String,
    tokens_per_s: String,
    accept_rate: String,
    accepted_per_target_forward: String,
    target_forwards_per_token: String,
    generated_tokens: usize,
    prompt_tokens: usize,
    prompt_tokens_reused: usize,
    prompt_seams: usize,
    prompt_s: String,
    prompt_share: String,
    requests: usize,
    correct: usize,
    problems: usize,
    identical: bool,
}

impl<'a> Record<'a> {
    fn of(r: &'a Row) -> Self {
        let speedup = |x: Option<f64>| x.map_or(String::new(), |x| format!("{x:.4}"));
        Record {
            config: &r.config,
            engine: &r.engine,
            wall_s: format!("{:.3}", r.wall_s),
            speedup_vs_ar: speedup(r.speedup_vs_ar),
            speedup_vs_sd: speedup(r.speedup_vs_sd),
            speedup_vs_baseline: speedup(r.speedup_vs_baseline),
            tokens_per_s: format!("{:.3}", r.tokens_per_s),
            accept_rate: format!("{:.4}", r.accept_rate),
            accepted_per_target_forward: format!("{:.4}", r.accepted_per_target_forward),
            target_forwards_per_token: format!("{:.4}", r.target_forwards_per_token),
            generated_tokens: r.generated_tokens,
            prompt_tokens: r.prompt_tokens,
            prompt_tokens_reused: r.prompt_tokens_reused,
            prompt_seams: r.prompt_seams,
            prompt_s: format!("{:.3}", r.prompt_s),
            prompt_share: format!("{:.4}", r.prompt_share),
            requests: r.requests,
            correct: r.correct,
            problems: r.problems,
            identical: r.identical,
        }
    }
}

/// The header (the record's field names), then one line per row.
pub fn render(rows: &[Row]) -> Result<String> {
    let mut out = ::csv::Writer::from_writer(Vec::new());
    for r in rows {
        out.serialize(Record::of(r))?;
    }
    Ok(String::from_utf8(out.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_values() {
        let row = Row {
            config: "seed+pc".into(),
            engine: "seed-fcfs[3]".into(),
            wall_s: 12.34567,
            speedup_vs_ar: Some(1.5),
            speedup_vs_sd: None,
            speedup_vs_baseline: Some(1.25),
            tokens_per_s: 20.0,
            accept_rate: 0.123456,
            accepted_per_target_forward: 1.0,
            target_forwards_per_token: 0.5,
            generated_tokens: 300,
            prompt_tokens: 40,
            prompt_tokens_reused: 10,
            prompt_seams: 2,
            warm_prompt_tokens: 0,
            prompt_s: 0.25,
            prompt_share: 0.25 / 12.34567,
            requests: 7,
            correct: 1,
            problems: 2,
            identical: true,
            differing: vec![],
        };
        assert_eq!(
            render(&[row]).unwrap(),
            "config,engine,wall_s,speedup_vs_ar,speedup_vs_sd,speedup_vs_baseline,tokens_per_s,accept_rate,accepted_per_target_forward,target_forwards_per_token,generated_tokens,prompt_tokens,prompt_tokens_reused,prompt_seams,prompt_s,prompt_share,requests,correct,problems,identical\n\
             seed+pc,seed-fcfs[3],12.346,1.5000,,1.2500,20.000,0.1235,1.0000,0.5000,300,40,10,2,0.250,0.0203,7,1,2,true\n"
        );
    }
}

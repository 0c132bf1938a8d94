//! `seed bench`'s table on stdout.

use super::row::Row;
use std::fmt::Write as _;

fn fmt_speedup(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.2}x"))
}

/// One line per row; `reference` names the row the others' trees are compared with.
pub fn render(rows: &[Row], reference: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>15} {:>5} {:>6} {:>9}",
        "config",
        "wall s",
        "prompt s",
        "prompt %",
        "vs ar",
        "vs sd",
        "vs base",
        "tok/s",
        "accept",
        "acc/fwd",
        "fwd/tok",
        "prompt reused",
        "seams",
        "right",
        "same tree"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<18} {:>8.1} {:>8.1} {:>7.0}% {:>7} {:>7} {:>7} {:>7.1} {:>6.0}% {:>8.2} {:>9.3} {:>15} {:>5} {:>6} {:>9}",
            r.config,
            r.wall_s,
            r.prompt_s,
            100.0 * r.prompt_share,
            fmt_speedup(r.speedup_vs_ar),
            fmt_speedup(r.speedup_vs_sd),
            fmt_speedup(r.speedup_vs_baseline),
            r.tokens_per_s,
            100.0 * r.accept_rate,
            r.accepted_per_target_forward,
            r.target_forwards_per_token,
            format!("{}/{}", r.prompt_tokens_reused, r.prompt_tokens),
            r.prompt_seams,
            format!("{}/{}", r.correct, r.problems),
            if r.config == reference {
                "ref"
            } else if r.identical {
                "yes"
            } else {
                "NO"
            }
        );
    }
    out
}

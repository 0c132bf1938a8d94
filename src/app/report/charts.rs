//! SVG charts of `seed bench`: speedups, and the schedule of one batch step.

use super::row::Row;
use crate::decode::{EventKind, TraceEvent};
use std::fmt::Write as _;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Estimated width of a label at the charts' font size (12 px sans-serif).
const CHAR_PX: f64 = 7.0;

/// Horizontal bars of each row's speedup over `reference` (the row whose
/// wall time `speedup_vs_ar` divides), with a line at 1x. The label column
/// grows to fit the longest name.
pub fn speedup(results: &[Row], reference: &str) -> String {
    let longest = results.iter().map(|r| r.config.chars().count()).max();
    let left = (CHAR_PX * longest.unwrap_or(0) as f64 + 18.0).max(170.0);
    let (width, row) = (420.0, 26.0);
    let max = results
        .iter()
        .filter_map(|r| r.speedup_vs_ar)
        .fold(1.0f64, f64::max)
        * 1.15;
    let height = 50.0 + row * results.len() as f64;
    let x = |v: f64| left + width * v / max;
    let mut svg = svg_open(left + width + 60.0, height);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="18" font-weight="bold">Speedup over {} (wall time)</text>"#,
        escape(reference)
    );
    for (i, r) in results.iter().enumerate() {
        let y = 32.0 + row * i as f64;
        let v = r.speedup_vs_ar.unwrap_or(0.0);
        let color = if r.identical { "#4a7ebb" } else { "#c0504d" };
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{:.1}" height="{}" fill="{color}"/><text x="{:.1}" y="{}">{:.2}x</text>"#,
            left - 8.0,
            y + 14.0,
            escape(&r.config),
            x(v) - left,
            row - 8.0,
            x(v) + 4.0,
            y + 14.0,
            v
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{0:.1}" x2="{0:.1}" y1="26" y2="{1}" stroke="#333" stroke-dasharray="4 3"/><text x="{0:.1}" y="{2}" text-anchor="middle">1x</text>"##,
        x(1.0),
        height - 14.0,
        height - 2.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Draft and verify events of every branch on a time axis, one lane per
/// branch (as in the SeeD paper's scheduling figure).
pub fn timeline(config: &str, events: &[TraceEvent]) -> String {
    let lanes = events.iter().map(|e| e.branch + 1).max().unwrap_or(0);
    let t0 = events
        .iter()
        .map(|e| e.start_s)
        .fold(f64::INFINITY, f64::min);
    let t1 = events.iter().map(|e| e.end_s).fold(0.0f64, f64::max);
    let span = (t1 - t0).max(1e-9);
    let (left, width, lane) = (80.0, 900.0, 22.0);
    let height = 70.0 + lane * lanes as f64;
    let x = |t: f64| left + width * (t - t0) / span;
    let mut svg = svg_open(left + width + 20.0, height);
    let _ = writeln!(
        svg,
        r##"<text x="10" y="18" font-weight="bold">{}: first batch step, {:.2} s</text><rect x="{}" y="8" width="12" height="12" fill="#4a7ebb"/><text x="{}" y="18">draft</text><rect x="{}" y="8" width="12" height="12" fill="#e08a2e"/><text x="{}" y="18">verify</text>"##,
        escape(config),
        span,
        left + width - 150.0,
        left + width - 134.0,
        left + width - 80.0,
        left + width - 64.0
    );
    for b in 0..lanes {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">branch {b}</text>"#,
            left - 6.0,
            44.0 + lane * b as f64
        );
    }
    for e in events {
        let color = match e.kind {
            EventKind::Draft => "#4a7ebb",
            EventKind::Verify => "#e08a2e",
        };
        let y = 30.0 + lane * e.branch as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{:.2}" y="{y}" width="{:.2}" height="{}" fill="{color}" stroke="white" stroke-width="0.5"><title>round {} {:?}: {} tokens</title></rect>"#,
            x(e.start_s),
            (x(e.end_s) - x(e.start_s)).max(0.5),
            lane - 6.0,
            e.round,
            e.kind,
            e.tokens
        );
    }
    let axis_y = 34.0 + lane * lanes as f64;
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" x2="{}" y1="{axis_y}" y2="{axis_y}" stroke="#333"/><text x="{left}" y="{}">0 s</text><text x="{}" y="{}" text-anchor="end">{:.2} s</text>"##,
        left + width,
        axis_y + 16.0,
        left + width,
        axis_y + 16.0,
        span
    );
    svg.push_str("</svg>\n");
    svg
}

/// The opening tag of a chart of the given size.
fn svg_open(width: f64, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number after `name="` in the first tag that has it.
    fn attribute(tag: &str, name: &str) -> f64 {
        let at = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let rest = &tag[at..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn speedup_labels_fit_and_the_title_names_the_reference() {
        let long = "seed-batched+pc+ngram-only+adaptive+cost+history+dedup";
        let rows: Vec<Row> = ["ar+pc", long]
            .iter()
            .map(|c| Row {
                config: c.to_string(),
                speedup_vs_ar: Some(2.0),
                ..Row::default()
            })
            .collect();
        let svg = speedup(&rows, "ar+pc");
        assert!(svg.contains("Speedup over ar+pc (wall time)"), "{svg}");
        let width = attribute(&svg, "width");
        let label = svg.lines().find(|l| l.contains(long)).unwrap();
        // Right-anchored at x: the text starts its estimated width before.
        let x = attribute(label, "x");
        let start = x - CHAR_PX * long.len() as f64;
        assert!(
            start >= 0.0 && x <= width,
            "label from {start} to {x}, width {width}"
        );
        // Short names keep the old layout.
        let short = speedup(&rows[..1], "ar");
        assert!(short.contains("Speedup over ar (wall time)"));
        assert!(short.contains(r#"<text x="162" y="46" text-anchor="end">ar+pc</text>"#));
    }
}

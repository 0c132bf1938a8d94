//! Renders a search tree as one self-contained HTML page.

use crate::search::tree::{Status, Tree};
use std::fmt::Write;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
ul.tree,ul.tree ul{list-style:none;padding-left:1.4em;border-left:1px dashed #bbb}
.node{margin:.35em 0;padding:.4em .6em;border:1px solid #ddd;border-radius:6px;background:#fafafa}
.node.pruned{opacity:.55}.node.rollout{opacity:.7;border-style:dashed}.node.unexplored{opacity:.35;border-style:dotted}
.node.invalid{opacity:.55;background:#fee;border-color:#e99}.note{font-size:.8em;color:#a33}
.node.chosen{border:2px solid #2a7;background:#efe}
.meta{font-size:.8em;color:#666}.score{font-weight:bold;color:#246}
pre{white-space:pre-wrap;margin:.2em 0;font-family:ui-monospace,monospace;font-size:.9em}
.ok{color:#2a7}.bad{color:#c33}table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left}";

pub fn render(tree: &Tree) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>seed: {task}</title><style>{STYLE}</style></head><body>\
         <h1>{task}</h1><pre>{problem}</pre>",
        task = escape(&tree.task),
        problem = escape(&tree.problem)
    );
    if let Some(a) = &tree.answer {
        let (class, verdict) = if a.correct {
            ("ok", "right")
        } else {
            ("bad", "wrong")
        };
        let _ = write!(
            html,
            "<p>Answer: <b>{}</b> <span class=\"{class}\">({verdict})</span></p>",
            escape(a.answer.as_deref().unwrap_or("none"))
        );
    }
    let _ = write!(
        html,
        "<p class=\"meta\">{} nodes, {} generated tokens, {:.1} s. The chosen path is green; faded nodes were pruned, dotted ones never evaluated.</p>",
        tree.nodes.len(),
        tree.generated_tokens(),
        tree.wall_s
    );
    html.push_str("<ul class=\"tree\">");
    render_node(tree, 0, &mut html);
    html.push_str("</ul><h2>Steps</h2><table><tr><th>step</th><th>phase</th><th>prompts</th><th>tokens</th><th>time</th><th>engine</th><th>accepted</th></tr>");
    for s in &tree.steps {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{:.2} s</td><td>{}</td><td>{}/{}</td></tr>",
            s.step,
            s.phase,
            s.prompts,
            s.stats.generated_tokens,
            s.wall_s,
            escape(&s.stats.engine),
            s.stats.accepted,
            s.stats.drafted
        );
    }
    html.push_str("</table></body></html>\n");
    html
}

fn render_node(tree: &Tree, id: usize, html: &mut String) {
    let node = &tree.nodes[id];
    let mut class = match node.status {
        Status::Root | Status::Kept => "node".to_string(),
        Status::Pruned => "node pruned".to_string(),
        Status::Unexplored => "node unexplored".to_string(),
        Status::Invalid => "node invalid".to_string(),
        Status::Rollout => "node rollout".to_string(),
    };
    if tree.path.contains(&id) {
        class += " chosen";
    }
    let score = node.score.map_or(String::new(), |s| {
        format!("<span class=\"score\">{s:.2}</span> ")
    });
    let text = if id == 0 {
        "(root)".to_string()
    } else {
        escape(&node.thought)
    };
    let finished = if node.finished { " · finished" } else { "" };
    let note = node.note.as_deref().map_or(String::new(), |n| {
        format!("<div class=\"note\">{}</div>", escape(n))
    });
    let _ = write!(
        html,
        "<li><div class=\"{class}\">{score}<span class=\"meta\">#{id} · {:?}{finished} · {} tokens · {:.2} s</span>{note}<pre>{text}</pre></div>",
        node.status, node.tokens, node.time_s
    );
    let children: Vec<usize> = tree
        .nodes
        .iter()
        .filter(|n| n.parent == Some(id))
        .map(|n| n.id)
        .collect();
    if !children.is_empty() {
        html.push_str("<ul>");
        for c in children {
            render_node(tree, c, html);
        }
        html.push_str("</ul>");
    }
    html.push_str("</li>");
}

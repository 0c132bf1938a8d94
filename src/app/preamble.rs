//! The prompt text every problem of a task begins with (its instructions and
//! examples), found as what two problems' root prompts have in common, so that
//! a benchmark can start each problem as a long-running `solve` or `serve`
//! does: with that text already in the prefix cache.

use crate::search::llm::{render, Llm};
use crate::search::task::Task;
use anyhow::Result;

/// The prompts a search renders at its root: samples, proposals and the value
/// asked of a state (the root's, standing for every state's).
fn root_prompts(llm: &dyn Llm, task: &dyn Task) -> Result<Vec<String>> {
    let specs = [task.sample("", 0), task.propose("", 0), task.value("", 0)];
    specs.iter().map(|spec| render(llm, spec)).collect()
}

/// What `a` and `b` begin with alike, cut after its last line break, so that
/// the text ends where a prompt's tokens do not merge across the cut.
fn shared_lines<'s>(a: &'s str, b: &str) -> &'s str {
    let common = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    let common = &a[..common];
    common.rfind('\n').map_or("", |end| &common[..=end])
}

/// The distinct texts that the root prompts of `task` and of `other` (another
/// problem of the same task) begin with alike, longest first.
pub fn shared_preambles(llm: &dyn Llm, task: &dyn Task, other: &dyn Task) -> Result<Vec<String>> {
    let (mine, theirs) = (root_prompts(llm, task)?, root_prompts(llm, other)?);
    let mut preambles: Vec<String> = mine
        .iter()
        .zip(&theirs)
        .map(|(a, b)| shared_lines(a, b).to_string())
        .filter(|p| !p.is_empty())
        .collect();
    preambles.sort_by_key(|p| std::cmp::Reverse(p.len()));
    // A preamble that begins another is cached with it.
    let mut kept: Vec<String> = Vec::new();
    for p in preambles {
        if !kept.iter().any(|k| k.starts_with(&p)) {
            kept.push(p);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::llm::ScriptedLlm;
    use crate::search::task::Layout;
    use crate::search::tasks::gsm8k::Gsm8k;

    #[test]
    fn preambles_hold_the_instructions_and_not_the_question() {
        for layout in [Layout::Separate, Layout::Continue] {
            let a = Gsm8k::new("How many eggs does Ann have?", "#### 9", 4).with_layout(layout);
            let b = Gsm8k::new("How far did Bo walk?", "#### 3", 4).with_layout(layout);
            let preambles = shared_preambles(&ScriptedLlm::default(), &a, &b).unwrap();
            assert!(!preambles.is_empty(), "{layout:?}");
            for p in &preambles {
                assert!(p.ends_with('\n') && p.len() > 100, "{layout:?}: {p:?}");
                assert!(!p.contains("eggs") && !p.contains("Bo walk"), "{p:?}");
            }
            let prompts = root_prompts(&ScriptedLlm::default(), &a).unwrap();
            assert!(preambles
                .iter()
                .all(|p| prompts.iter().any(|q| q.starts_with(p))));
        }
    }

    #[test]
    fn shared_lines_end_at_the_last_common_line_break() {
        assert_eq!(
            shared_lines("intro\nQ: one\n", "intro\nQ: two\n"),
            "intro\n"
        );
        assert_eq!(shared_lines("a\nb\nc", "a\nb\nc"), "a\nb\n");
        assert_eq!(shared_lines("abc", "abd"), "");
        assert_eq!(shared_lines("é\nx", "é\ny"), "é\n");
    }
}

//! The reasoning tasks: prompts, parsers and checkers.
//!
//! Prompts live in `prompts/<task>/*.txt` and are compiled in with
//! `include_str!`; [`render`] fills their `{name}` placeholders.
//!
//! Step numbers passed to a [`Task`](crate::search::task::Task) count the
//! thoughts already in the state: 0 at the root, `steps() - 1` for the last one.

pub mod blocksworld;
mod calc;
pub mod data;
pub mod game24;
pub mod gsm8k;
pub mod text;

/// The Tree-of-Thoughts vote instruction, shared by every task's `vote`.
const VOTE_PROMPT: &str = include_str!("../../../prompts/text/vote.txt");

/// A state as the model's answer so far, ready for its next line.
pub fn answer_so_far(state: &str) -> String {
    match state.trim() {
        "" => String::new(),
        steps => format!("{steps}\n"),
    }
}

/// Fills `{name}` placeholders in one pass, so braces inside the values are
/// never expanded again; unknown placeholders (ToT's literal `{s}`) stay as they are.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let hit = vars
            .iter()
            .find(|(name, _)| after.starts_with(name) && after[name.len()..].starts_with('}'));
        match hit {
            Some((name, value)) => {
                out.push_str(value);
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// ToT's vote prompt: the instruction, then each state as "Choice i:".
pub fn vote_prompt(instruction: &str, states: &[String]) -> String {
    let mut prompt = format!("{VOTE_PROMPT}\nInstruction:\n{}\n\n", instruction.trim());
    for (i, state) in states.iter().enumerate() {
        prompt.push_str(&format!("Choice {}:\n{}\n", i + 1, state));
    }
    prompt
}

/// Counts votes: each output votes for the id after its last "best choice is";
/// outputs without one, or with an id outside 1..=n, vote for nobody.
pub fn parse_votes(outputs: &[String], n: usize) -> Vec<f64> {
    let mut votes = vec![0.0; n];
    for output in outputs {
        let lower = output.to_lowercase();
        let Some(at) = lower.rfind("best choice is") else {
            continue;
        };
        let id = first_integer(&lower[at + "best choice is".len()..]);
        if let Some(slot) = id
            .and_then(|id| id.checked_sub(1))
            .and_then(|i| votes.get_mut(i))
        {
            *slot += 1.0;
        }
    }
    votes
}

/// The first run of ASCII digits in `text`, as a number.
pub(crate) fn first_integer(text: &str) -> Option<usize> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Numbers written in `text`, in order: `1,234` is 1234, `$5` is 5, `2.50` is
/// 2.5, `-3` is negative unless the minus follows a digit or letter
/// (`10-5` is 10 and 5), and a sentence's final period is not a decimal point.
pub fn numbers_in(text: &str) -> Vec<f64> {
    let chars: Vec<char> = text.chars().collect();
    let digit_at = |i: usize| chars.get(i).is_some_and(|c| c.is_ascii_digit());
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let sign_ok = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == ')');
        let (negative, start) = if c == '-' && sign_ok && digit_at(i + 1) {
            (true, i + 1)
        } else if c == '-' && sign_ok && chars.get(i + 1) == Some(&'$') && digit_at(i + 2) {
            (true, i + 2)
        } else if c.is_ascii_digit() {
            (false, i)
        } else {
            i += 1;
            continue;
        };
        let mut j = start;
        let mut s = String::new();
        while j < chars.len() {
            if chars[j].is_ascii_digit() {
                s.push(chars[j]);
                j += 1;
            } else if chars[j] == ','
                && (1..=3).all(|k| digit_at(j + k))
                && !digit_at(j + 4)
                && !s.contains('.')
            {
                // A thousands separator: exactly three digits follow.
                j += 1;
            } else if chars[j] == '.' && digit_at(j + 1) && !s.contains('.') {
                s.push('.');
                j += 1;
            } else {
                break;
            }
        }
        if let Ok(v) = s.parse::<f64>() {
            out.push(if negative { -v } else { v });
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_only_known_placeholders() {
        assert_eq!(
            render("a {x} b {s} {y}{x}", &[("x", "1"), ("y", "{x}")]),
            "a 1 b {s} {x}1"
        );
        assert_eq!(render("{", &[("x", "1")]), "{");
        assert_eq!(render("{x", &[("x", "1")]), "{x");
    }

    #[test]
    fn votes_come_from_the_last_best_choice() {
        let outs: Vec<String> = [
            "Choice 1 is weak.\nThe best choice is 2",
            "The best choice is 1. Hmm, no: the best choice is 3.",
            "I like choice 2.",
            "The best choice is 9",
            "The best choice is {s}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(parse_votes(&outs, 3), vec![0.0, 1.0, 1.0]);
        assert_eq!(parse_votes(&outs, 0), Vec::<f64>::new());
    }

    #[test]
    fn vote_prompt_lists_choices() {
        let p = vote_prompt("do it", &["a".into(), "b".into()]);
        assert!(p.contains("The best choice is {s}"));
        assert!(p.contains("Instruction:\ndo it\n"));
        assert!(p.ends_with("Choice 1:\na\nChoice 2:\nb\n"));
    }

    #[test]
    fn numbers_are_read_like_answers() {
        assert_eq!(numbers_in("costs $1,234.50 in total."), vec![1234.5]);
        assert_eq!(numbers_in("is -3 or -$5"), vec![-3.0, -5.0]);
        assert_eq!(numbers_in("10-5=5."), vec![10.0, 5.0, 5.0]);
        assert_eq!(
            numbers_in("1,2 and 1,2345 and 2.75.15"),
            vec![1.0, 2.0, 1.0, 2345.0, 2.75, 15.0]
        );
        assert_eq!(numbers_in("none"), Vec::<f64>::new());
        assert_eq!(numbers_in("x2 (8)"), vec![2.0, 8.0]);
    }
}

//! N-gram drafts: the tokens that followed the context's last few tokens
//! where they occurred before (prompt lookup), in the branch's own prompt
//! and text or in its sibling branches'. Free to produce, and verified like
//! any draft, so the output is the target's.
//!
//! Beyond the request, a [`History`] keeps the ends of recent requests'
//! prompts with their completions: a tree search sends many calls whose
//! prompts end alike and whose answers follow the same patterns (llama.cpp's
//! lookup decoding keeps such a cache across generations, SuffixDecoding a
//! suffix tree of past outputs). There the longest match of the context wins.

use crate::model::Token;
use std::collections::VecDeque;

/// Longest and shortest suffix of the context looked up (longest first).
pub(crate) const MAX_N: usize = 4;
const MIN_N: usize = 2;

/// What a lookup found: the tokens that followed a suffix of the context.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Found {
    /// Length of the context suffix that matched (0: nothing found).
    pub key: usize,
    pub tokens: Vec<Token>,
}

/// Up to `len` tokens that followed the longest suffix of `context` (of
/// `MAX_N` down to `MIN_N` tokens) at its latest earlier occurrence, in
/// `context` itself first, then in `others` in order; empty if none occurs.
pub(crate) fn lookup(context: &[Token], others: &[&[Token]], len: usize) -> Found {
    if len == 0 {
        return Found::default();
    }
    for n in (MIN_N..=MAX_N).rev() {
        let Some(key) = context.len().checked_sub(n).map(|at| &context[at..]) else {
            continue;
        };
        for source in std::iter::once(context).chain(others.iter().copied()) {
            // Only occurrences followed by at least one token (in `context`
            // this excludes the suffix itself).
            let last_start = source.len().saturating_sub(n + 1);
            let found = (0..=last_start)
                .rev()
                .find(|&i| source.len() > i + n && &source[i..i + n] == key);
            if let Some(i) = found {
                let tokens = source[i + n..].iter().take(len).copied().collect();
                let key = common_suffix(&source[..i + n], context);
                return Found { key, tokens };
            }
        }
    }
    Found::default()
}

/// How many tokens `a` and `b` end with alike, up to `MAX_KEY`.
fn common_suffix(a: &[Token], b: &[Token]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take(MAX_KEY)
        .take_while(|(x, y)| x == y)
        .count()
}

/// Requests remembered by a [`History`].
const HISTORY_ENTRIES: usize = 64;
/// Prompt tokens kept per request, before its completion: enough to tell
/// apart prompts that end with the same instructions.
const HISTORY_PROMPT_TAIL: usize = 64;
/// Longest context suffix a match is measured by (and a history lookup
/// compares).
const MAX_KEY: usize = 32;

/// The ends of recent requests' prompts, each followed by its completion (and
/// the end token that closed it, so that a lookup can draft the end too).
#[derive(Debug, Default)]
pub(crate) struct History {
    /// Newest first.
    entries: VecDeque<Vec<Token>>,
}

impl History {
    pub fn record(&mut self, prompt: &[Token], generated: &[Token], end: Option<Token>) {
        let tail = &prompt[prompt.len().saturating_sub(HISTORY_PROMPT_TAIL)..];
        let entry: Vec<Token> = tail.iter().chain(generated).chain(&end).copied().collect();
        self.entries.push_front(entry);
        self.entries.truncate(HISTORY_ENTRIES);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Up to `len` tokens that followed the longest suffix of `context`
    /// found in the history, if that suffix is at least `min_key` tokens long
    /// (at equal lengths the newest entry, then its latest place, wins).
    pub fn lookup(&self, context: &[Token], min_key: usize, len: usize) -> Found {
        let Some(&last) = context.last().filter(|_| len > 0) else {
            return Found::default();
        };
        let mut best: Option<(usize, &[Token])> = None;
        for entry in &self.entries {
            // A match must be followed by at least one token.
            for end in (0..entry.len().saturating_sub(1)).rev() {
                if entry[end] != last {
                    continue;
                }
                let key = common_suffix(&entry[..=end], context);
                if key >= min_key.max(MIN_N) && best.is_none_or(|(b, _)| key > b) {
                    best = Some((key, &entry[end + 1..]));
                }
            }
        }
        best.map_or_else(Found::default, |(key, rest)| Found {
            key,
            tokens: rest.iter().take(len).copied().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{lookup, History};

    #[test]
    fn continues_the_latest_earlier_occurrence() {
        // "5 6" occurs at 1 and 5; the latest earlier one (5) is followed by 9.
        let context = [1, 5, 6, 7, 2, 5, 6, 9, 3, 5, 6];
        assert_eq!(lookup(&context, &[], 2).tokens, vec![9, 3]);
        assert_eq!(lookup(&context, &[], 10).tokens, vec![9, 3, 5, 6]);
        assert_eq!(lookup(&context, &[], 0).tokens, Vec::<u32>::new());
    }

    #[test]
    fn prefers_longer_matches_then_own_text_then_siblings() {
        let context = [8, 1, 2, 3, 4, 1, 2, 3];
        // "1 2 3" occurs earlier in its own text (then 4) and in the sibling's
        // (then 7): its own text comes first.
        let sibling = [9, 3, 1, 2, 3, 7, 7];
        assert_eq!(lookup(&context, &[&sibling], 2).tokens, vec![4, 1]);
        // A sibling holding the 4-gram "4 1 2 3" beats both.
        let longer = [4, 1, 2, 3, 6];
        assert_eq!(lookup(&context, &[&longer], 1).tokens, vec![6]);
        assert_eq!(lookup(&context, &[&longer], 1).key, 4);
        assert_eq!(lookup(&context, &[&sibling], 2).key, 3);
        // A match is measured beyond the 4-gram it was found by.
        let repeated = [7, 8, 1, 2, 3, 4, 5, 9, 8, 1, 2, 3, 4, 5];
        assert_eq!(
            lookup(&repeated, &[], 1),
            super::Found {
                key: 6,
                tokens: vec![9]
            }
        );
        // Nothing in its own text: the sibling's.
        assert_eq!(lookup(&[5, 1, 2], &[&sibling], 3).tokens, vec![3, 7, 7]);
    }

    #[test]
    fn no_match_and_short_contexts() {
        assert!(lookup(&[1, 2, 3, 4], &[&[5, 6, 7]], 3).tokens.is_empty());
        assert!(
            lookup(&[1], &[&[1, 2]], 3).tokens.is_empty(),
            "1-grams are too weak"
        );
        assert!(lookup(&[], &[], 3).tokens.is_empty());
    }

    #[test]
    fn history_drafts_what_followed_the_longest_match() {
        let mut history = History::default();
        // Two requests whose prompts end alike ("7 8 9"), then a third.
        history.record(&[1, 2, 7, 8, 9], &[20, 21], Some(0));
        history.record(&[3, 4, 7, 8, 9], &[30, 31], None);
        history.record(&[5, 6], &[40], None);
        // "2 7 8 9" matches the oldest entry longer than "7 8 9" the newer one.
        assert_eq!(history.lookup(&[2, 7, 8, 9], 2, 5).tokens, vec![20, 21, 0]);
        assert_eq!(history.lookup(&[2, 7, 8, 9], 2, 5).key, 4);
        // At equal length the newest entry wins.
        assert_eq!(history.lookup(&[5, 7, 8, 9], 2, 1).tokens, vec![30]);
        // Inside a completion; no match shorter than asked.
        assert_eq!(history.lookup(&[9, 30], 2, 5).tokens, vec![31]);
        assert!(history.lookup(&[9, 30], 3, 5).tokens.is_empty());
        // A match at an entry's end has nothing to draft.
        assert!(history.lookup(&[30, 31], 2, 5).tokens.is_empty());
        assert!(history.lookup(&[], 2, 5).tokens.is_empty());
        history.clear();
        assert!(history.lookup(&[2, 7, 8, 9], 2, 5).tokens.is_empty());
    }

    #[test]
    fn history_keeps_the_newest_entries_and_prompt_ends() {
        let mut history = History::default();
        let long_prompt: Vec<u32> = (1000..1000 + 2 * super::HISTORY_PROMPT_TAIL as u32).collect();
        history.record(&long_prompt, &[7], None);
        // The prompt's start is forgotten, its end kept.
        assert!(history.lookup(&[1000, 1001], 2, 1).tokens.is_empty());
        let end = &long_prompt[long_prompt.len() - 2..];
        assert_eq!(history.lookup(end, 2, 3).tokens, vec![7]);
        for i in 0..super::HISTORY_ENTRIES as u32 {
            history.record(&[1, 2], &[100 + i], None);
        }
        // The oldest entry has left; the newest answers.
        assert!(history.lookup(end, 2, 1).tokens.is_empty());
        assert_eq!(
            history.lookup(&[1, 2], 2, 1).tokens,
            vec![100 + super::HISTORY_ENTRIES as u32 - 1]
        );
    }
}

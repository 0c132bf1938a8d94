//! N-gram drafts: the tokens that followed the context's last few tokens
//! where they occurred before (prompt lookup), in the branch's own prompt
//! and text or in its sibling branches'. Free to produce, and verified like
//! any draft, so the output is the target's.

use crate::model::Token;

/// Longest and shortest suffix of the context looked up (longest first).
const MAX_N: usize = 4;
const MIN_N: usize = 2;

/// Up to `len` tokens that followed the longest suffix of `context` (of
/// `MAX_N` down to `MIN_N` tokens) at its latest earlier occurrence, in
/// `context` itself first, then in `others` in order; empty if none occurs.
pub(crate) fn lookup(context: &[Token], others: &[&[Token]], len: usize) -> Vec<Token> {
    if len == 0 {
        return Vec::new();
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
                return source[i + n..].iter().take(len).copied().collect();
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn continues_the_latest_earlier_occurrence() {
        // "5 6" occurs at 1 and 5; the latest earlier one (5) is followed by 9.
        let context = [1, 5, 6, 7, 2, 5, 6, 9, 3, 5, 6];
        assert_eq!(lookup(&context, &[], 2), vec![9, 3]);
        assert_eq!(lookup(&context, &[], 10), vec![9, 3, 5, 6]);
        assert_eq!(lookup(&context, &[], 0), Vec::<u32>::new());
    }

    #[test]
    fn prefers_longer_matches_then_own_text_then_siblings() {
        let context = [8, 1, 2, 3, 4, 1, 2, 3];
        // "1 2 3" occurs earlier in its own text (then 4) and in the sibling's
        // (then 7): its own text comes first.
        let sibling = [9, 3, 1, 2, 3, 7, 7];
        assert_eq!(lookup(&context, &[&sibling], 2), vec![4, 1]);
        // A sibling holding the 4-gram "4 1 2 3" beats both.
        let longer = [4, 1, 2, 3, 6];
        assert_eq!(lookup(&context, &[&longer], 1), vec![6]);
        // Nothing in its own text: the sibling's.
        assert_eq!(lookup(&[5, 1, 2], &[&sibling], 3), vec![3, 7, 7]);
    }

    #[test]
    fn no_match_and_short_contexts() {
        assert!(lookup(&[1, 2, 3, 4], &[&[5, 6, 7]], 3).is_empty());
        assert!(
            lookup(&[1], &[&[1, 2]], 3).is_empty(),
            "1-grams are too weak"
        );
        assert!(lookup(&[], &[], 3).is_empty());
    }
}

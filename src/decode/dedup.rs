//! Greedy deduplication: at temperature 0 a request's identical samples
//! (same prompt tokens) are decoded once and the others copy the completion.

use super::output::{BranchStats, Completion};
use crate::model::Token;
use std::collections::HashMap;

/// A sample that is not decoded: it copies the completion of the branch
/// with choice index `of` (same prompt, greedy).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Twin {
    pub of: usize,
    /// Its own choice index (prompt-major) and place in the request.
    pub choice: usize,
    pub prompt_index: usize,
    pub sample_index: usize,
}

impl Twin {
    /// Its completion: the leader's tokens, none of the leader's work.
    pub fn copy(&self, leader: &Completion) -> Completion {
        Completion {
            prompt_index: self.prompt_index,
            sample_index: self.sample_index,
            stats: BranchStats::default(),
            ..leader.clone()
        }
    }
}

/// Which prompts are decoded, with how many samples each, and which samples
/// copy another's completion instead.
pub(crate) struct SamplePlan {
    /// Indices of the prompts decoded, in order.
    pub leaders: Vec<usize>,
    /// Samples decoded per leading prompt.
    pub samples: usize,
    pub twins: Vec<Twin>,
}

impl SamplePlan {
    /// Every sample decoded, or with `greedy` one sample of each distinct
    /// prompt: at temperature 0 the others would be the same tokens.
    pub fn new(prompts: &[Vec<Token>], n: usize, greedy: bool) -> Self {
        if !greedy {
            return SamplePlan {
                leaders: (0..prompts.len()).collect(),
                samples: n,
                twins: Vec::new(),
            };
        }
        let mut first: HashMap<&[Token], usize> = HashMap::new();
        let (mut leaders, mut twins) = (Vec::new(), Vec::new());
        for (p, prompt) in prompts.iter().enumerate() {
            let leader = *first.entry(prompt).or_insert_with(|| {
                leaders.push(p);
                p
            });
            for s in 0..n {
                if (p, s) != (leader, 0) {
                    twins.push(Twin {
                        of: leader * n,
                        choice: p * n + s,
                        prompt_index: p,
                        sample_index: s,
                    });
                }
            }
        }
        SamplePlan {
            leaders,
            samples: 1,
            twins,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greedy_plan_decodes_each_distinct_prompt_once() {
        let prompts = vec![vec![1, 2], vec![3], vec![1, 2]];
        let plan = SamplePlan::new(&prompts, 2, true);
        assert_eq!((plan.leaders.as_slice(), plan.samples), (&[0, 1][..], 1));
        let twins: Vec<_> = plan
            .twins
            .iter()
            .map(|t| (t.of, t.choice, t.prompt_index, t.sample_index))
            .collect();
        assert_eq!(
            twins,
            [(0, 1, 0, 1), (2, 3, 1, 1), (0, 4, 2, 0), (0, 5, 2, 1)]
        );

        let all = SamplePlan::new(&prompts, 2, false);
        assert_eq!((all.leaders.as_slice(), all.samples), (&[0, 1, 2][..], 2));
        assert!(all.twins.is_empty());
    }
}

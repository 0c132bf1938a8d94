//! Admission: a request tokenized once, what it needs of the batch (KV
//! cells, branches), and the batch's capacity that requests are admitted
//! against. `generate` (and so `solve` and `bench`) and `serve` all admit
//! through here.

use super::config::{EngineConfig, EngineKind};
use super::error::{DecodeError, Result};
use super::request::Request;
use crate::model::Token;

/// Share of the KV cache the prefix cache may keep between requests.
pub(crate) const PREFIX_CACHE_SHARE: f64 = 0.5;

/// A validated request with its prompts' tokens.
#[derive(Clone, Debug)]
pub struct Tokenized {
    pub request: Request,
    pub prompts: Vec<Vec<Token>>,
}

impl Tokenized {
    /// Validates `request` and tokenizes its prompts with the target's
    /// tokenizer `tokenize` (lengths are checked on admission).
    pub fn new(
        request: Request,
        tokenize: impl Fn(&str) -> crate::model::Result<Vec<Token>>,
    ) -> Result<Self> {
        request.validate()?;
        let prompts = request
            .prompts
            .iter()
            .map(|p| tokenize(p))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Tokenized { request, prompts })
    }

    /// Every prompt holds a token and fits the context with room for one more.
    pub fn check_lengths(&self, context: usize) -> Result<()> {
        for (index, tokens) in self.prompts.iter().enumerate() {
            if tokens.is_empty() {
                return Err(DecodeError::Invalid(format!("prompt {index} is empty")));
            }
            if tokens.len() >= context {
                return Err(DecodeError::PromptTooLong {
                    index,
                    tokens: tokens.len(),
                    context,
                });
            }
        }
        Ok(())
    }
}

/// What a request may take of the batch at most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub branches: usize,
    /// KV cells: its prompts, and for each sample `max_tokens` plus its
    /// draft tree's side nodes (see [`tree_cells`]).
    pub cells: usize,
}

impl Needs {
    pub fn of(t: &Tokenized, config: &EngineConfig) -> Self {
        let r = &t.request;
        let tree = tree_cells(config);
        let cells = t
            .prompts
            .iter()
            .map(|p| p.len() + r.n * (r.max_tokens + tree))
            .sum();
        Needs {
            branches: r.prompts.len() * r.n,
            cells,
        }
    }
}

/// Cells a sample's draft tree takes beyond the tokens it may generate: a
/// draft is never deeper than the tokens left (`Branch::room`), so a chain
/// fits in `max_tokens`, but a tree writes a cell for every node off its
/// deepest path.
fn tree_cells(config: &EngineConfig) -> usize {
    if config.kind == EngineKind::Ar {
        return 0;
    }
    let shape = config.shape();
    let nodes: usize = (1..=shape.depth())
        .map(|level| shape.0[..level].iter().product::<usize>())
        .sum();
    nodes - shape.depth()
}

/// The batch's room: KV cells (the context, less the prefix cache's share)
/// and branches, and what the requests in it have taken.
#[derive(Clone, Debug)]
pub struct Capacity {
    pub cells: usize,
    pub branches: usize,
    taken: Needs,
}

impl Capacity {
    pub fn new(context: usize, prefix_cache: bool, branches: usize) -> Self {
        let share = if prefix_cache {
            PREFIX_CACHE_SHARE
        } else {
            0.0
        };
        Capacity {
            cells: (context as f64 * (1.0 - share)) as usize,
            branches,
            taken: Needs::default(),
        }
    }

    /// Whether `needs` fits beside what is taken.
    pub fn fits(&self, needs: &Needs) -> bool {
        self.taken.branches + needs.branches <= self.branches
            && self.taken.cells + needs.cells <= self.cells
    }

    pub fn take(&mut self, needs: &Needs) {
        self.taken.branches += needs.branches;
        self.taken.cells += needs.cells;
    }

    pub fn give_back(&mut self, needs: &Needs) {
        self.taken.branches -= needs.branches;
        self.taken.cells -= needs.cells;
    }

    pub fn is_empty(&self) -> bool {
        self.taken == Needs::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TreeShape;

    #[test]
    fn needs_count_prompts_samples_and_drafts() {
        let t = Tokenized {
            request: Request {
                prompts: vec!["a".into(), "b".into()],
                n: 3,
                max_tokens: 10,
                ..Request::default()
            },
            prompts: vec![vec![1; 5], vec![2; 7]],
        };
        let mut config = EngineConfig {
            kind: EngineKind::Ar,
            ..EngineConfig::default()
        };
        let plain = Needs::of(&t, &config);
        assert_eq!(
            plain,
            Needs {
                branches: 6,
                cells: 5 + 7 + 2 * 3 * 10
            }
        );
        // A chain is never deeper than the tokens left to generate.
        config.kind = EngineKind::Seed;
        assert_eq!(Needs::of(&t, &config), plain);
        // Tree [2, 2]: 2 + 4 nodes, of which 2 on the deepest path.
        config.tree = Some(TreeShape(vec![2, 2]));
        assert_eq!(Needs::of(&t, &config).cells, 5 + 7 + 2 * 3 * (10 + 4));

        let mut room = Capacity::new(200, true, 8);
        assert_eq!(room.cells, 100);
        assert!(room.fits(&plain));
        room.take(&plain);
        assert!(!room.fits(&Needs {
            branches: 3,
            cells: 1
        }));
        room.give_back(&plain);
        assert!(room.is_empty());
    }
}

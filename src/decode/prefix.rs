//! Prefix cache: KV of token prefixes kept across requests.
//!
//! Tree-search prompts repeat long prefixes: every generation and evaluation
//! prompt of a problem starts with the same instructions and examples, and the
//! prompts of one step share the question and the steps so far. The cache is a
//! radix tree over prompt tokens (as in SGLang's RadixAttention); each node
//! owns a model sequence holding exactly the tokens from the root to the end
//! of its edge, and child sequences are forks of their parent's, so a prefix's
//! KV cells exist once. A request's prompts are inserted first and only the
//! tokens no node holds yet are computed, level by level, one batched forward
//! per level. Nodes are evicted least recently used under a budget of cells.
//!
//! Finished branches are kept too (`insert_completion`, as SGLang keeps
//! finished requests): a branch's prompt and generated tokens become a path
//! whose last node forks the branch's sequence, so the next step's prompt,
//! which begins with them, computes only what follows.
//!
//! Freeing cells between cached ones would let later tokens fill the holes
//! ahead of older tokens of their sequence, which changes attention's
//! summation order (see `model::llama`; measured: logits off by 0.55 on
//! SmolLM2 for a prompt extending a completion whose siblings' cells were
//! freed). So on a model that lays cells out in order (llama.cpp)
//! dropped tokens' cells are freed only while nothing is cached
//! ([`PrefixCache::may_reclaim`]), and eviction empties the whole cache, by
//! the cells placed since the KV cache was last empty, then frees every cell
//! once no sequence is left; a batch-invariant model's cache empties too.
//! Elsewhere nodes are evicted least recently used under a budget of cells.

use super::error::Result;
use super::faults;
use super::owned::OwnedSeqs;
use crate::model::{BatchToken, Model, SeqId, Token};

/// Whether freed cells could take later tokens ahead of older ones of their
/// sequence: a backend that lays cells out in order counts the cells it
/// placed (see the module comment).
fn keeps_cell_order(model: &dyn Model) -> bool {
    model.cells_placed().is_some()
}

/// Most tokens of one prompt-processing forward.
const PREFILL_CHUNK: usize = 1024;

const ROOT: usize = 0;

#[derive(Debug)]
struct Node {
    /// The edge: tokens after the parent's.
    tokens: Vec<Token>,
    /// Position of `tokens[0]` (the parent's depth).
    start: usize,
    parent: usize,
    children: Vec<usize>,
    /// Holds positions `0..start + tokens.len()`; `None` until computed.
    seq: Option<SeqId>,
    last_used: u64,
    /// The edge holds a finished branch's tokens past what the tree held.
    completion: bool,
}

/// How far a prompt's tokens run along the tree.
struct Match {
    /// Tokens already computed.
    tokens: usize,
    /// The match stops inside a kept completion's edge.
    inside_completion: bool,
}

/// What one [`PrefixCache::prefill`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefillStats {
    /// Prompt tokens found in the cache.
    pub reused: usize,
    /// Prompt tokens computed (each shared prefix once).
    pub computed: usize,
    /// Prompts that left a kept completion part way and went on: a seam,
    /// where the text was re-tokenized differently, or a step cut short.
    pub seams: usize,
}

#[derive(Debug)]
pub struct PrefixCache {
    /// Arena; freed slots are `None`. Slot 0 is the root (no tokens, no sequence).
    nodes: Vec<Option<Node>>,
    /// Most cells the cached tokens may hold after an eviction.
    budget: usize,
    /// Most nodes (each holds a model sequence).
    max_nodes: usize,
    clock: u64,
}

impl PrefixCache {
    pub fn new(budget: usize, max_nodes: usize) -> Self {
        let root = Node {
            tokens: Vec::new(),
            start: 0,
            parent: ROOT,
            children: Vec::new(),
            seq: None,
            last_used: 0,
            completion: false,
        };
        PrefixCache {
            nodes: vec![Some(root)],
            budget,
            max_nodes: max_nodes.max(1),
            clock: 0,
        }
    }

    fn node(&self, id: usize) -> &Node {
        self.nodes[id].as_ref().expect("live node")
    }

    fn node_mut(&mut self, id: usize) -> &mut Node {
        self.nodes[id].as_mut().expect("live node")
    }

    /// Cells held by cached tokens (each shared prefix counted once).
    pub fn cells(&self) -> usize {
        self.nodes.iter().flatten().map(|n| n.tokens.len()).sum()
    }

    /// Cached nodes, the root excluded.
    pub fn len(&self) -> usize {
        self.nodes.iter().flatten().count() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns a new sequence holding each prompt's tokens (the caller owns and
    /// releases them), computing only what the cache does not hold, and keeps
    /// the prompts cached.
    pub fn prefill(
        &mut self,
        model: &mut dyn Model,
        prompts: &[&[Token]],
    ) -> Result<(Vec<SeqId>, PrefillStats)> {
        self.clock += 1;
        let total: usize = prompts.iter().map(|p| p.len()).sum();
        // Matching marks the nodes this call uses, so that eviction spares them.
        let cached_before: usize = prompts.iter().map(|p| self.matched(p).tokens).sum();
        let new_cells = total - cached_before;
        self.evict(model, new_cells, prompts.len())?;
        let mut stats = PrefillStats::default();
        let mut ends = Vec::with_capacity(prompts.len());
        for p in prompts {
            let m = self.matched(p);
            stats.reused += m.tokens;
            stats.seams += usize::from(m.inside_completion && m.tokens < p.len());
            ends.push(self.insert(model, p)?);
        }
        stats.computed = match self.materialize(model) {
            Ok(computed) => computed,
            Err(e) => {
                self.drop_uncomputed();
                return Err(e);
            }
        };
        let mut seqs = OwnedSeqs::new(model);
        for id in ends {
            match self.node(id).seq {
                Some(seq) => seqs.fork(seq)?,
                None => seqs.create()?, // the root: an empty prompt prefix
            };
        }
        Ok((seqs.keep(), stats))
    }

    /// Keeps a finished branch's tokens (its prompt and generated text), so
    /// that a later prompt beginning with them reuses their KV: `seq` holds
    /// exactly `tokens`, and the new leaf forks it, so nothing is computed.
    /// Returns the tokens added (0 when the tree held them all, or when they
    /// do not fit the budget beside what this call must keep).
    pub fn insert_completion(
        &mut self,
        model: &mut dyn Model,
        tokens: &[Token],
        seq: SeqId,
    ) -> Result<usize> {
        if model.seq_len(seq)? < tokens.len() {
            return Err(crate::model::ModelError::BadPosition {
                seq,
                pos: tokens.len(),
                len: model.seq_len(seq)?,
            }
            .into());
        }
        self.clock += 1;
        let new_cells = tokens.len() - self.matched(tokens).tokens;
        if new_cells == 0 {
            return Ok(0);
        }
        // Where cell order is kept the cache empties only on admission, where
        // that can free every cell (see `evict`).
        if !keeps_cell_order(model) {
            self.evict(model, new_cells, 1)?;
        }
        if !self.fits(model, new_cells, 1) {
            return Ok(0);
        }
        let leaf = self.insert(model, tokens)?;
        let node = self.node(leaf);
        if node.seq.is_none() {
            // Its edge is this completion's tail: the branch's cells hold it.
            let fork = model.fork(seq)?;
            model.truncate(fork, node.start + node.tokens.len())?;
            let leaf = self.node_mut(leaf);
            leaf.seq = Some(fork);
            leaf.completion = true;
        }
        Ok(new_cells)
    }

    /// Drops every cached node.
    pub fn clear(&mut self, model: &mut dyn Model) {
        for id in 1..self.nodes.len() {
            if let Some(node) = self.nodes[id].take() {
                if let Some(seq) = node.seq {
                    model.release(seq);
                }
            }
        }
        self.node_mut(ROOT).children.clear();
    }

    /// How far `prompt` runs along computed nodes; marks the nodes holding
    /// it as used now.
    fn matched(&mut self, prompt: &[Token]) -> Match {
        let mut at = ROOT;
        let mut depth = 0;
        loop {
            self.node_mut(at).last_used = self.clock;
            let stop = |tokens, inside_completion| Match {
                tokens,
                inside_completion,
            };
            let Some(&child) = self
                .node(at)
                .children
                .iter()
                .find(|&&c| prompt.get(depth) == self.node(c).tokens.first())
            else {
                return stop(depth, false);
            };
            let node = self.node(child);
            if node.seq.is_none() {
                return stop(depth, false);
            }
            let common = common_prefix(&node.tokens, &prompt[depth..]);
            depth += common;
            if common < node.tokens.len() {
                return stop(depth, node.completion);
            }
            at = child;
        }
    }

    /// Adds `prompt` to the tree (new nodes not yet computed) and returns the
    /// node that ends where it ends.
    fn insert(&mut self, model: &mut dyn Model, prompt: &[Token]) -> Result<usize> {
        let clock = self.clock;
        let mut at = ROOT;
        let mut depth = 0;
        while depth < prompt.len() {
            self.node_mut(at).last_used = clock;
            let next = self
                .node(at)
                .children
                .iter()
                .copied()
                .find(|&c| self.node(c).tokens[0] == prompt[depth]);
            let Some(child) = next else {
                let leaf = self.add(at, prompt[depth..].to_vec(), depth);
                self.node_mut(leaf).last_used = clock;
                return Ok(leaf);
            };
            let common = common_prefix(&self.node(child).tokens, &prompt[depth..]);
            at = if common < self.node(child).tokens.len() {
                self.split(model, child, common)?
            } else {
                child
            };
            depth += common;
        }
        self.node_mut(at).last_used = clock;
        Ok(at)
    }

    fn add(&mut self, parent: usize, tokens: Vec<Token>, start: usize) -> usize {
        let node = Node {
            tokens,
            start,
            parent,
            children: Vec::new(),
            seq: None,
            last_used: self.clock,
            completion: false,
        };
        let id = match self.nodes.iter().position(Option::is_none) {
            Some(free) => {
                self.nodes[free] = Some(node);
                free
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.node_mut(parent).children.push(id);
        id
    }

    /// Cuts node `id`'s edge after `keep` tokens: a new parent takes the first
    /// part; `id` keeps the rest, its children and its sequence, so that ids
    /// handed out for this call's prompts stay valid. Returns the new parent.
    fn split(&mut self, model: &mut dyn Model, id: usize, keep: usize) -> Result<usize> {
        let node = self.node_mut(id);
        let rest = node.tokens.split_off(keep);
        let head = std::mem::replace(&mut node.tokens, rest);
        let (parent, start, seq, last_used) = (node.parent, node.start, node.seq, node.last_used);
        let completion = node.completion;
        let upper = self.add(parent, head, start);
        self.node_mut(parent).children.retain(|&c| c != id);
        let upper_node = self.node_mut(upper);
        upper_node.children.push(id);
        upper_node.last_used = last_used;
        upper_node.completion = completion;
        let node = self.node_mut(id);
        node.parent = upper;
        node.start = start + keep;
        if let Some(seq) = seq {
            let prefix = model.fork(seq)?;
            model.truncate(prefix, start + keep)?;
            self.node_mut(upper).seq = Some(prefix);
        }
        Ok(upper)
    }

    /// Computes every node without a sequence, parents first, one batched
    /// forward per tree level. Returns the tokens computed.
    fn materialize(&mut self, model: &mut dyn Model) -> Result<usize> {
        let mut computed = 0;
        loop {
            let ready: Vec<usize> = (1..self.nodes.len())
                .filter(|&id| {
                    self.nodes[id].as_ref().is_some_and(|n| {
                        n.seq.is_none() && (n.parent == ROOT || self.node(n.parent).seq.is_some())
                    })
                })
                .collect();
            if ready.is_empty() {
                return Ok(computed);
            }
            let mut batch = Vec::new();
            // A node holds its sequence only once its forward has run.
            let mut seqs = OwnedSeqs::new(model);
            for &id in &ready {
                let seq = match self.node(self.node(id).parent).seq {
                    Some(p) => seqs.fork(p)?,
                    None => seqs.create()?,
                };
                let node = self.node(id);
                for (i, &token) in node.tokens.iter().enumerate() {
                    batch.push(BatchToken {
                        token,
                        pos: node.start + i,
                        seqs: vec![seq],
                        logits: false,
                    });
                }
            }
            computed += batch.len();
            for chunk in batch.chunks(PREFILL_CHUNK) {
                faults::forward(seqs.model(), chunk, faults::PREFILL_FORWARD)?;
            }
            for (&id, seq) in ready.iter().zip(seqs.keep()) {
                self.node_mut(id).seq = Some(seq);
            }
        }
    }

    /// Drops the nodes a failed forward left without KV (all below one
    /// computed or uncomputed node are uncomputed too).
    fn drop_uncomputed(&mut self) {
        for id in 1..self.nodes.len() {
            let uncomputed = self.nodes[id].as_ref().is_some_and(|n| n.seq.is_none());
            if !uncomputed {
                continue;
            }
            let node = self.nodes[id].take().expect("live node");
            if let Some(Some(parent)) = self.nodes.get_mut(node.parent) {
                parent.children.retain(|&c| c != id);
            }
        }
    }

    /// Whether dropped tokens' cells may be freed now: always where cell
    /// order is not kept, else only while nothing is cached.
    pub fn may_reclaim(&self, model: &dyn Model) -> bool {
        self.is_empty() || !keeps_cell_order(model)
    }

    /// Whether `new_cells` more cells and `new_nodes` more nodes fit: a split
    /// and a leaf per prompt at most. Where the model counts them, the cells
    /// are those placed since the KV cache was last empty (see `evict`).
    fn fits(&self, model: &dyn Model, new_cells: usize, new_nodes: usize) -> bool {
        let held = self.cells().max(model.cells_placed().unwrap_or(0));
        held + new_cells <= self.budget && self.len() + 2 * new_nodes <= self.max_nodes
    }

    /// Makes room for `new_cells` more cells and `new_nodes` more nodes by
    /// dropping nodes not used by the current call, least recently used
    /// leaves first. Where cell order is kept, drops every node instead and,
    /// once no sequence is left, frees every cell (see the module comment).
    fn evict(&mut self, model: &mut dyn Model, new_cells: usize, new_nodes: usize) -> Result<()> {
        if self.fits(model, new_cells, new_nodes) {
            return Ok(());
        }
        if keeps_cell_order(model) || model.batch_invariant() {
            self.clear(model);
            if model.live_sequences() == Some(0) {
                model.reclaim();
            }
            return Ok(());
        }
        while !self.fits(model, new_cells, new_nodes) {
            let victim = (1..self.nodes.len())
                .filter(|&id| {
                    self.nodes[id]
                        .as_ref()
                        .is_some_and(|n| n.children.is_empty() && n.last_used < self.clock)
                })
                .min_by_key(|&id| self.node(id).last_used);
            let Some(id) = victim else { break };
            let node = self.nodes[id].take().expect("live node");
            if let Some(seq) = node.seq {
                model.release(seq);
            }
            self.node_mut(node.parent).children.retain(|&c| c != id);
        }
        Ok(())
    }
}

fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tiny::{TinyConfig, TinyLm};

    fn tiny() -> TinyLm {
        TinyLm::new(TinyConfig::target())
    }

    /// Logits after `prompt` then `next`, from a sequence the cache returned.
    fn next_logits(model: &mut TinyLm, seq: SeqId, next: Token) -> Vec<f32> {
        let pos = model.seq_len(seq).unwrap();
        model
            .forward(&[BatchToken {
                token: next,
                pos,
                seqs: vec![seq],
                logits: true,
            }])
            .unwrap();
        model.logits(0).to_vec()
    }

    fn fresh_logits(prompt: &[Token], next: Token) -> Vec<f32> {
        let mut model = tiny();
        let mut cache = PrefixCache::new(1 << 20, 64);
        let (seqs, _) = cache.prefill(&mut model, &[prompt]).unwrap();
        next_logits(&mut model, seqs[0], next)
    }

    #[test]
    fn second_request_reuses_the_whole_prompt() {
        let mut model = tiny();
        let mut cache = PrefixCache::new(1 << 20, 64);
        let p: Vec<Token> = (1..12).collect();
        let (a, first) = cache.prefill(&mut model, &[&p]).unwrap();
        assert_eq!(
            first,
            PrefillStats {
                reused: 0,
                computed: 11,
                seams: 0
            }
        );
        model.release(a[0]);
        let (b, second) = cache.prefill(&mut model, &[&p]).unwrap();
        assert_eq!(
            second,
            PrefillStats {
                reused: 11,
                computed: 0,
                seams: 0
            }
        );
        assert_eq!(model.seq_len(b[0]).unwrap(), 11);
        assert_eq!(next_logits(&mut model, b[0], 3), fresh_logits(&p, 3));
    }

    #[test]
    fn shared_prefix_is_computed_once_and_split() {
        let mut model = tiny();
        let mut cache = PrefixCache::new(1 << 20, 64);
        let a: Vec<Token> = vec![1, 2, 3, 4, 5, 6];
        let b: Vec<Token> = vec![1, 2, 3, 7, 8];
        // Both new in one request: the common prefix is computed once.
        let (seqs, stats) = cache.prefill(&mut model, &[&a, &b]).unwrap();
        assert_eq!(
            stats,
            PrefillStats {
                reused: 0,
                computed: 3 + 3 + 2,
                seams: 0
            }
        );
        assert_eq!(cache.cells(), 8);
        assert_eq!(next_logits(&mut model, seqs[0], 9), fresh_logits(&a, 9));
        assert_eq!(next_logits(&mut model, seqs[1], 9), fresh_logits(&b, 9));
        // A later prompt matching into the middle of an edge splits it.
        let c: Vec<Token> = vec![1, 2, 3, 4, 10];
        let (seqs, stats) = cache.prefill(&mut model, &[&c]).unwrap();
        assert_eq!(
            stats,
            PrefillStats {
                reused: 4,
                computed: 1,
                seams: 0
            }
        );
        assert_eq!(cache.cells(), 9);
        assert_eq!(next_logits(&mut model, seqs[0], 9), fresh_logits(&c, 9));
        // A prompt that is a prefix of a cached one ends on a node.
        let d: Vec<Token> = vec![1, 2, 3];
        let (seqs, stats) = cache.prefill(&mut model, &[&d]).unwrap();
        assert_eq!(
            stats,
            PrefillStats {
                reused: 3,
                computed: 0,
                seams: 0
            }
        );
        assert_eq!(model.seq_len(seqs[0]).unwrap(), 3);
        assert_eq!(next_logits(&mut model, seqs[0], 9), fresh_logits(&d, 9));
    }

    #[test]
    fn forks_are_independent_of_the_cache() {
        let mut model = tiny();
        let mut cache = PrefixCache::new(1 << 20, 64);
        let p: Vec<Token> = vec![4, 5, 6, 7];
        let (seqs, _) = cache.prefill(&mut model, &[&p, &p]).unwrap();
        assert_ne!(seqs[0], seqs[1]);
        // Extending and truncating a returned fork leaves the cache intact.
        next_logits(&mut model, seqs[0], 1);
        model.truncate(seqs[0], 2).unwrap();
        model.release(seqs[1]);
        let (again, stats) = cache.prefill(&mut model, &[&p]).unwrap();
        assert_eq!(stats.reused, 4);
        assert_eq!(next_logits(&mut model, again[0], 2), fresh_logits(&p, 2));
    }

    /// A branch after `prompt`: the cache's sequence extended by `generated`
    /// one token per forward, as decoding does.
    fn decode_branch(
        model: &mut dyn Model,
        cache: &mut PrefixCache,
        prompt: &[Token],
        generated: &[Token],
    ) -> SeqId {
        let (seqs, _) = cache.prefill(model, &[prompt]).unwrap();
        for (i, &token) in generated.iter().enumerate() {
            model
                .forward(&[BatchToken {
                    token,
                    pos: prompt.len() + i,
                    seqs: vec![seqs[0]],
                    logits: true,
                }])
                .unwrap();
        }
        seqs[0]
    }

    #[test]
    fn a_completion_is_reused_by_a_prompt_that_extends_it() {
        let mut model = tiny();
        let mut cache = PrefixCache::new(1 << 20, 64);
        let prompt: Vec<Token> = vec![1, 2, 3, 4];
        let generated: Vec<Token> = vec![9, 8, 7, 6, 5];
        let seq = decode_branch(&mut model, &mut cache, &prompt, &generated);
        let whole: Vec<Token> = [prompt.clone(), generated.clone()].concat();
        assert_eq!(cache.insert_completion(&mut model, &whole, seq).unwrap(), 5);
        model.release(seq);
        assert_eq!(cache.cells(), 9);
        // Kept again: nothing new.
        let seq = decode_branch(&mut model, &mut cache, &prompt, &generated);
        assert_eq!(cache.insert_completion(&mut model, &whole, seq).unwrap(), 0);
        model.release(seq);
        // The next step's prompt: the completion and more.
        let next: Vec<Token> = [whole.clone(), vec![11, 12]].concat();
        let (seqs, stats) = cache.prefill(&mut model, &[&next]).unwrap();
        assert_eq!(
            stats,
            PrefillStats {
                reused: 9,
                computed: 2,
                seams: 0
            }
        );
        assert_eq!(next_logits(&mut model, seqs[0], 3), fresh_logits(&next, 3));
    }

    #[test]
    fn a_prompt_that_leaves_a_completion_part_way_reuses_it_up_to_there() {
        let mut model = tiny();
        let mut cache = PrefixCache::new(1 << 20, 64);
        let prompt: Vec<Token> = vec![1, 2, 3];
        let generated: Vec<Token> = vec![20, 21, 22, 13];
        let seq = decode_branch(&mut model, &mut cache, &prompt, &generated);
        let whole: Vec<Token> = [prompt.clone(), generated].concat();
        cache.insert_completion(&mut model, &whole, seq).unwrap();
        model.release(seq);
        // Text re-tokenized differently from token 5 on (a seam).
        let other: Vec<Token> = vec![1, 2, 3, 20, 21, 5, 6];
        let (seqs, stats) = cache.prefill(&mut model, &[&other]).unwrap();
        assert_eq!(
            stats,
            PrefillStats {
                reused: 5,
                computed: 2,
                seams: 1
            }
        );
        assert_eq!(next_logits(&mut model, seqs[0], 4), fresh_logits(&other, 4));
        // The completion is still whole after the split.
        let (seqs, stats) = cache.prefill(&mut model, &[&whole]).unwrap();
        assert_eq!((stats.reused, stats.seams), (7, 0));
        assert_eq!(next_logits(&mut model, seqs[0], 4), fresh_logits(&whole, 4));
    }

    #[test]
    fn forks_of_a_completion_and_its_branch_are_independent() {
        let mut model = tiny();
        let mut cache = PrefixCache::new(1 << 20, 64);
        let prompt: Vec<Token> = vec![5, 6];
        let seq = decode_branch(&mut model, &mut cache, &prompt, &[7, 8, 9]);
        cache
            .insert_completion(&mut model, &[5, 6, 7, 8, 9], seq)
            .unwrap();
        // The branch goes on (and is cut back) after it was kept.
        next_logits(&mut model, seq, 10);
        model.truncate(seq, 3).unwrap();
        let (seqs, stats) = cache.prefill(&mut model, &[&[5, 6, 7, 8, 9]]).unwrap();
        assert_eq!(stats.reused, 5);
        assert_eq!(model.seq_len(seqs[0]).unwrap(), 5);
        assert_eq!(
            next_logits(&mut model, seqs[0], 1),
            fresh_logits(&[5, 6, 7, 8, 9], 1)
        );
    }

    /// TinyLm is batch-invariant; this wrapper is not, to test LRU eviction.
    struct Lru(TinyLm);

    impl Model for Lru {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn vocab_size(&self) -> usize {
            self.0.vocab_size()
        }
        fn context_size(&self) -> usize {
            self.0.context_size()
        }
        fn create(&mut self) -> crate::model::Result<SeqId> {
            self.0.create()
        }
        fn fork(&mut self, src: SeqId) -> crate::model::Result<SeqId> {
            self.0.fork(src)
        }
        fn truncate(&mut self, seq: SeqId, len: usize) -> crate::model::Result<()> {
            self.0.truncate(seq, len)
        }
        fn release(&mut self, seq: SeqId) {
            self.0.release(seq)
        }
        fn seq_len(&self, seq: SeqId) -> crate::model::Result<usize> {
            self.0.seq_len(seq)
        }
        fn forward(&mut self, batch: &[BatchToken]) -> crate::model::Result<()> {
            self.0.forward(batch)
        }
        fn logits(&self, row: usize) -> &[f32] {
            self.0.logits(row)
        }
        fn tokenize(&self, text: &str, add_bos: bool) -> crate::model::Result<Vec<Token>> {
            self.0.tokenize(text, add_bos)
        }
        fn token_bytes(&self, token: Token) -> Vec<u8> {
            self.0.token_bytes(token)
        }
        fn is_end(&self, token: Token) -> bool {
            self.0.is_end(token)
        }
        fn chat_prompt(&self, user: &str) -> crate::model::Result<String> {
            self.0.chat_prompt(user)
        }
    }

    #[test]
    fn least_recently_used_leaf_is_evicted_under_the_budget() {
        let mut model = Lru(tiny());
        let mut cache = PrefixCache::new(10, 64);
        let a: Vec<Token> = vec![1, 2, 3, 4];
        let b: Vec<Token> = vec![1, 2, 5, 6];
        let c: Vec<Token> = vec![1, 2, 7, 8];
        for p in [&a, &b] {
            let (s, _) = cache.prefill(&mut model, &[p]).unwrap();
            model.release(s[0]);
        }
        assert_eq!(cache.cells(), 6);
        // Touch `a`, so `b` is the least recently used leaf.
        let (s, stats) = cache.prefill(&mut model, &[&a]).unwrap();
        assert_eq!(stats.reused, 4);
        model.release(s[0]);
        // [1 2 | 3 4 | 5 6] + [7 8] = 8 cells fits; a fourth leaf does not.
        let (s, _) = cache.prefill(&mut model, &[&c]).unwrap();
        model.release(s[0]);
        assert_eq!(cache.cells(), 8);
        let d: Vec<Token> = vec![9, 10, 11];
        let (s, _) = cache.prefill(&mut model, &[&d]).unwrap();
        model.release(s[0]);
        assert!(cache.cells() <= 10, "{} cells", cache.cells());
        // `b` went first; `a` (used later) is still there.
        assert_eq!(cache.prefill(&mut model, &[&a]).unwrap().1.reused, 4);
        assert_eq!(cache.prefill(&mut model, &[&b]).unwrap().1.reused, 2);
    }

    #[test]
    fn completions_are_evicted_least_recently_used_under_the_budget() {
        let mut model = Lru(tiny());
        let mut cache = PrefixCache::new(11, 64);
        let prompt: Vec<Token> = vec![1, 2, 3];
        let mut kept = Vec::new();
        for first in [10, 14, 18] {
            let generated: Vec<Token> = vec![first, first + 1, first + 2];
            let seq = decode_branch(&mut model, &mut cache, &prompt, &generated);
            let whole: Vec<Token> = [prompt.clone(), generated].concat();
            kept.push(cache.insert_completion(&mut model, &whole, seq).unwrap());
            model.release(seq);
            assert!(cache.cells() <= 11, "{} cells", cache.cells());
        }
        // 3 + 3 + 3 cells, then the first completion makes room for the third.
        assert_eq!(kept, [3, 3, 3]);
        assert_eq!(
            cache
                .prefill(&mut model, &[&[1, 2, 3, 10, 11, 12]])
                .unwrap()
                .1
                .reused,
            3
        );
        assert_eq!(
            cache
                .prefill(&mut model, &[&[1, 2, 3, 18, 19, 20]])
                .unwrap()
                .1
                .reused,
            6
        );
    }

    #[test]
    fn batch_invariant_model_empties_the_cache_to_evict() {
        let mut model = tiny();
        let mut cache = PrefixCache::new(6, 64);
        let a: Vec<Token> = vec![1, 2, 3, 4];
        let (s, _) = cache.prefill(&mut model, &[&a]).unwrap();
        model.release(s[0]);
        let b: Vec<Token> = vec![1, 2, 5, 6];
        let (_, stats) = cache.prefill(&mut model, &[&b]).unwrap();
        // 4 + 2 cells fit the budget of 6: kept and shared.
        assert_eq!(stats.reused, 2);
        let c: Vec<Token> = vec![1, 2, 7, 8];
        let (_, stats) = cache.prefill(&mut model, &[&c]).unwrap();
        assert_eq!(
            stats,
            PrefillStats {
                reused: 0,
                computed: 4,
                seams: 0
            }
        );
        assert_eq!(cache.cells(), 4);
    }
}

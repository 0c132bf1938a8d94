//! Sequences made for one operation and owned until kept: on every path out
//! that does not keep them (an error's `?` included) they are released.

use crate::model::{Model, Result, SeqId};

pub(crate) struct OwnedSeqs<'m, 'a> {
    model: &'m mut (dyn Model + 'a),
    seqs: Vec<SeqId>,
}

impl<'m, 'a> OwnedSeqs<'m, 'a> {
    pub fn new(model: &'m mut (dyn Model + 'a)) -> Self {
        OwnedSeqs {
            model,
            seqs: Vec::new(),
        }
    }

    /// Takes ownership of sequences made elsewhere.
    pub fn adopt(&mut self, seqs: &[SeqId]) {
        self.seqs.extend_from_slice(seqs);
    }

    pub fn create(&mut self) -> Result<SeqId> {
        let seq = self.model.create()?;
        self.seqs.push(seq);
        Ok(seq)
    }

    pub fn fork(&mut self, src: SeqId) -> Result<SeqId> {
        let seq = self.model.fork(src)?;
        self.seqs.push(seq);
        Ok(seq)
    }

    /// The model, for the forwards that fill the sequences.
    pub fn model(&mut self) -> &mut dyn Model {
        &mut *self.model
    }

    /// Keeps every sequence owned: the caller is their owner now.
    pub fn keep(mut self) -> Vec<SeqId> {
        std::mem::take(&mut self.seqs)
    }
}

impl Drop for OwnedSeqs<'_, '_> {
    fn drop(&mut self) {
        for &seq in &self.seqs {
            self.model.release(seq);
        }
    }
}

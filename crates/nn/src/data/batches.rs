//! Seeded, reshuffled-every-epoch mini-batch sampling.

use super::DataError;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Yields, epoch after epoch, a fresh random permutation of `0..n` cut into
/// batches of `batch_size` (the last batch keeps the remainder, as PyTorch's
/// `DataLoader` with `drop_last=False`). The same seed gives the same
/// sequence of epochs.
#[derive(Clone, Debug)]
pub struct BatchSampler {
    n: usize,
    batch_size: usize,
    rng: ChaCha8Rng,
    epoch: usize,
}

impl BatchSampler {
    /// A sampler over `n` examples with the given batch size and seed.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Result<Self, DataError> {
        if n == 0 {
            return Err(DataError::InvalidSampler {
                detail: "no examples to sample from".into(),
            });
        }
        if batch_size == 0 {
            return Err(DataError::InvalidSampler {
                detail: "batch size must be at least 1".into(),
            });
        }
        Ok(Self {
            n,
            batch_size,
            rng: ChaCha8Rng::seed_from_u64(seed),
            epoch: 0,
        })
    }

    /// Number of batches per epoch (the partial last batch counts).
    pub fn batches_per_epoch(&self) -> usize {
        self.n.div_ceil(self.batch_size)
    }

    /// Epochs produced so far.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// Shuffle again and return the next epoch's batches of indices.
    pub fn next_epoch(&mut self) -> Vec<Vec<usize>> {
        let mut perm: Vec<usize> = (0..self.n).collect();
        perm.shuffle(&mut self.rng);
        self.epoch += 1;
        perm.chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }
}

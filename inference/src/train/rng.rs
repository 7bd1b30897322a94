//! The trainer's random numbers: SplitMix64 (Steele, Lea and Flood, "Fast splittable
//! pseudorandom number generators", 2014), written here rather than taken from `rand` so that
//! the stream is fixed by this file alone: the same seed gives the same adapter bytes whatever
//! version of a dependency is compiled in, and a checkpoint never has to store generator state
//! (every stream is re-derived from the seed and a purpose tag).

/// What a stream is for; each purpose gets an independent stream from the same seed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    /// The Kaiming-uniform initial values of every `lora_A`.
    Init,
    /// Which examples are held out.
    Split,
    /// The order of the training examples in one epoch.
    Epoch(u64),
    /// The random projection of one factor's gradients (its index in factor order).
    Projection(u64),
}

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl SplitMix64 {
    /// The generator for `purpose` under `seed`.
    pub(crate) fn new(seed: u64, purpose: Stream) -> Self {
        let tag = match purpose {
            Stream::Init => 1,
            Stream::Split => 2,
            Stream::Epoch(epoch) => 3 + epoch,
            // Epochs stay far below 2^63, so the two never share a tag.
            Stream::Projection(factor) => (1 << 63) | factor,
        };
        // Two scrambled words, so neighbouring seeds and tags start far apart.
        let mut mixer = Self { state: seed };
        let high = mixer.next_u64();
        let mut mixer = Self {
            state: high ^ tag.wrapping_mul(GOLDEN_GAMMA),
        };
        Self {
            state: mixer.next_u64(),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 24 bits (every value exactly representable).
    pub(crate) fn next_unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `0..bound` (`bound > 0`), by Lemire's multiply-shift with rejection.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Fisher–Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_fixed_and_independent() {
        let mut a = SplitMix64::new(7, Stream::Init);
        let mut b = SplitMix64::new(7, Stream::Init);
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
        let mut other = SplitMix64::new(7, Stream::Epoch(0));
        assert_ne!(first[0], other.next_u64());
        // SplitMix64's published first output for state 0 after one increment.
        let mut reference = SplitMix64 { state: 0 };
        assert_eq!(reference.next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn below_and_shuffle_stay_in_range_and_permute() {
        let mut rng = SplitMix64::new(1, Stream::Split);
        assert!((0..1000).all(|_| rng.below(3) < 3));
        let mut items: Vec<usize> = (0..50).collect();
        rng.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(items, sorted);
        let unit = rng.next_unit_f32();
        assert!((0.0..1.0).contains(&unit));
    }
}

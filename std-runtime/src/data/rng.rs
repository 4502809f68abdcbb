//! A small deterministic pseudo-random number generator for shuffles and splits.

/// SplitMix64, the generator of Steele, Lea and Flood ("Fast splittable pseudorandom number
/// generators", OOPSLA 2014), as used to seed `xoshiro`.
///
/// Its state is one `u64` that advances by the constant `0x9E37_79B9_7F4A_7C15` on every draw;
/// each output is that state passed through a 64-bit finalizer (two xor-shift-multiply rounds).
/// It uses only wrapping 64-bit integer arithmetic, so a given seed gives the same sequence on
/// every platform, compiler and build profile: splits and epoch orders are reproducible
/// everywhere. It is fast and passes BigCrush, but it is **not** cryptographically secure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function (a bijective 64-bit mixer).
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator whose first state is `seed` (every seed, including 0, is fine).
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator for the independent sub-stream `stream` of `seed`.
    ///
    /// Used to give each purpose (the split, each class of a stratified split, each epoch) its
    /// own sequence: the state is `mix(seed) ^ mix(stream + GAMMA)`, so nearby seeds and nearby
    /// streams give unrelated sequences.
    pub const fn stream(seed: u64, stream: u64) -> Self {
        SplitMix64::new(mix(seed) ^ mix(stream.wrapping_add(GAMMA)))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A uniformly distributed integer in `0..n` (0 when `n` is 0), without modulo bias
    /// (Lemire's multiply-and-reject method).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniformly distributed `f64` in `[0, 1)` (53 random bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Shuffles `items` in place (Fisher–Yates, from the back), uniformly over all orders.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            // `below(i + 1) <= i`, so the cast back to usize is lossless.
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

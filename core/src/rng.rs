//! A small seeded PRNG that gives the same stream on every target.

/// PCG32 (XSH-RR, 64-bit state): tiny, fast on 32-bit MCUs, and identical everywhere.
///
/// Used by initializers, dropout and shuffling; the same seed gives the same weights on a
/// laptop and on a Cortex-M0.
///
/// ```
/// use microfit_core::rng::Rng;
/// let mut a = Rng::new(42);
/// let mut b = Rng::new(42);
/// assert_eq!(a.next_u32(), b.next_u32());
/// let u = a.next_f32();
/// assert!((0.0..1.0).contains(&u));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rng {
    state: u64,
    inc: u64,
}

const MUL: u64 = 6_364_136_223_846_793_005;

impl Rng {
    /// A generator seeded with `seed` (stream 0xda3e39cb94b95bdb).
    pub const fn new(seed: u64) -> Self {
        let inc = (0xda3e_39cb_94b9_5bdb_u64 << 1) | 1;
        let mut state = 0u64.wrapping_mul(MUL).wrapping_add(inc);
        state = state.wrapping_add(seed);
        state = state.wrapping_mul(MUL).wrapping_add(inc);
        Rng { state, inc }
    }

    /// The generator's whole state, `[state, increment]`: saved in a checkpoint, it lets a
    /// resumed run draw the very numbers an uninterrupted one would ([`Rng::from_parts`]).
    ///
    /// ```
    /// use microfit_core::rng::Rng;
    /// let mut a = Rng::new(7);
    /// a.next_u32();
    /// let mut b = Rng::from_parts(a.to_parts());
    /// assert_eq!(a.next_u32(), b.next_u32());
    /// ```
    pub const fn to_parts(&self) -> [u64; 2] {
        [self.state, self.inc]
    }

    /// The generator whose state is `parts` ([`Rng::to_parts`]); the increment is made odd,
    /// as a PCG stream requires.
    pub const fn from_parts(parts: [u64; 2]) -> Self {
        Rng {
            state: parts[0],
            inc: parts[1] | 1,
        }
    }

    /// A new, independent generator drawn from this one (two draws): its state and its stream
    /// come from the draws, so it does not repeat this generator's numbers. A dropout or noise
    /// layer without its own seed takes its stream from the model's generator this way the
    /// first time it draws, so each layer draws from its own stream, sample after sample,
    /// whatever the tile size.
    ///
    /// ```
    /// use microfit_core::rng::Rng;
    /// let mut a = Rng::new(3);
    /// let mut b = Rng::new(3);
    /// assert_eq!(a.split(), b.split());
    /// assert_ne!(a.split().next_u32(), a.next_u32());
    /// ```
    pub fn split(&mut self) -> Rng {
        let seed = u64::from(self.next_u32());
        let stream = u64::from(self.next_u32());
        let inc = (stream << 1) | 1;
        let mut state = inc;
        state = state.wrapping_add(seed);
        state = state.wrapping_mul(MUL).wrapping_add(inc);
        Rng { state, inc }
    }

    /// The next 32 random bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(MUL).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in `[0, 1)` with 24 random bits (every value exactly representable).
    #[inline]
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Uniform integer in `0..n` (`n > 0`; returns 0 for `n == 0`), without modulo bias.
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let r = self.next_u32();
            if r >= threshold {
                return r % n;
            }
        }
    }

    /// Standard normal sample (Box–Muller with libm).
    pub fn normal(&mut self) -> f32 {
        let mut u1 = self.next_f32();
        if u1 <= 0.0 {
            u1 = 1.0 / 16_777_216.0;
        }
        let u2 = self.next_f32();
        let r = libm::sqrtf(-2.0 * libm::logf(u1));
        r * libm::cosf(2.0 * core::f32::consts::PI * u2)
    }

    /// Fisher–Yates shuffle of `order` (a caller-provided index buffer, so no allocation).
    ///
    /// ```
    /// use microfit_core::rng::Rng;
    /// let mut order = [0u32, 1, 2, 3, 4];
    /// Rng::new(1).shuffle(&mut order);
    /// let mut sorted = order;
    /// sorted.sort();
    /// assert_eq!(sorted, [0, 1, 2, 3, 4]);
    /// ```
    pub fn shuffle<T>(&mut self, order: &mut [T]) {
        let n = order.len();
        for i in (1..n).rev() {
            let j = self.below((i + 1) as u32) as usize;
            order.swap(i, j);
        }
    }
}

/// What a network keeps for its layers' random draws: a [`Rng`], or nothing ([`NoRng`]).
///
/// Each layer names its slot ([`crate::Layer::Rng`]): `NoRng` for a layer that never draws
/// (Dense, the convolutions, pooling, ...), `Rng` for a dropout or noise layer; a tuple keeps
/// a generator when any of its members does ([`RngSlot::Join`]). A
/// [`Network`](crate::Network) holds its layers' slot, so a model that never draws keeps no
/// generator (16 bytes of a microcontroller's RAM, and the 8-byte alignment they bring).
///
/// ```
/// use microfit_core::prelude::*;
/// use microfit_core::rng::NoRng;
/// type Mlp = (Dense<4, 8>, Dense<8, 2>);
/// type WithDropout = (Dense<4, 8>, Dropout<[f32; 8]>, Dense<8, 2>);
/// assert_eq!(core::mem::size_of::<<Mlp as Layer>::Rng>(), 0);
/// let net = Network::<WithDropout>::new(
///     (Dense::new(Activation::Relu), Dropout::new(0.5), Dense::new(Activation::Softmax)),
///     3,
/// )?;
/// let _generator: &Rng = net.rng(); // split by the dropout layer the first time it draws
/// let _nothing: &NoRng = Network::<Mlp>::new((Dense::new(Activation::Relu), Dense::new(Activation::Softmax)), 3)?.rng();
/// # Ok::<(), microfit_core::Error>(())
/// ```
pub trait RngSlot: Clone + core::fmt::Debug {
    /// The slot of a model holding both `Self`'s layers and `R`'s: a generator when either
    /// keeps one.
    type Join<R: RngSlot>: RngSlot;

    /// The slot from the generator `rng` (the model's, after its layers' initialization):
    /// kept, or dropped.
    fn keep(rng: Rng) -> Self;

    /// The generator, when the slot keeps one.
    fn get_mut(&mut self) -> Option<&mut Rng>;
}

/// The slot of a model none of whose layers draws random numbers: no generator, no bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoRng;

impl RngSlot for NoRng {
    type Join<R: RngSlot> = R;

    #[inline(always)]
    fn keep(_rng: Rng) -> Self {
        NoRng
    }

    #[inline(always)]
    fn get_mut(&mut self) -> Option<&mut Rng> {
        None
    }
}

impl RngSlot for Rng {
    type Join<R: RngSlot> = Rng;

    #[inline(always)]
    fn keep(rng: Rng) -> Self {
        rng
    }

    #[inline(always)]
    fn get_mut(&mut self) -> Option<&mut Rng> {
        Some(self)
    }
}

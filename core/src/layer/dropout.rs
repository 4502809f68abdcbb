//! `Dropout(rate, seed)`: Keras' inverted dropout, the other regularizer users reach for.
//!
//! * **Training** (`ForwardCtx::training`): each value is kept with probability `1 − rate`
//!   and scaled: `y = x · 1/(1 − rate)` if `u ≥ rate` else `0`, with `u` uniform in `[0, 1)`
//!   (TensorFlow's `keep = random >= rate`); `∂L/∂x = ∂L/∂y · 1/(1 − rate)` on kept values, 0
//!   elsewhere.
//! * **Inference**: the identity (and so is `rate = 0`).
//!
//! Random numbers come from the seeded, `no_std` [`Rng`] (PCG32), one `next_f32` per value in
//! row-major order, sample after sample, from the layer's own generator: seeded with `seed`
//! when one is set, else split from the model's generator (seeded by `Network::new`'s seed,
//! after the initializers' draws) the first time the layer draws. Each dropout layer has its
//! own stream, so the masks do not depend on how many samples a tile holds. The same seed gives
//! the same masks on every target, and the typed and the run-time models draw the same numbers.
//!
//! **Memory**: the mask is not stored. The state (`DropoutState`, 40 bytes) keeps a copy of
//! the generator from before the sample's draws, and backward draws the same numbers again.
//!
//! ```
//! use microfit_core::prelude::*;
//! let d = Dropout::<[f32; 4]>::new(0.5);
//! let mut net = Network::new(d, 7)?;
//! // Inference: identity.
//! assert_eq!(net.predict(&[1.0, 2.0, 3.0, 4.0]), &[1.0, 2.0, 3.0, 4.0]);
//! assert!(Dropout::<[f32; 4]>::try_new(1.0).is_err());
//! # Ok::<(), microfit_core::Error>(())
//! ```

use core::marker::PhantomData;

use super::{BackwardCtx, ForwardCtx, Layer, PlainCache};
use crate::backend::Backend;
use crate::error::{Error, check_unit_interval};
use crate::rng::Rng;
use crate::tensor::{Tensor, Zeroed};

/// Dropout settings, shared by the typed [`Dropout`] and models built at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DropoutConfig {
    /// Fraction of the values dropped, in `[0, 1)`.
    pub rate: f32,
    /// The layer's own seed; `None` draws from the model's generator.
    pub seed: Option<u64>,
}

impl DropoutConfig {
    /// `Dropout(rate)` drawing from the model's generator (unchecked).
    pub(crate) const fn with(rate: f32) -> Self {
        DropoutConfig { rate, seed: None }
    }

    /// Checks `0 ≤ rate < 1`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] otherwise (NaN included).
    pub fn validate(&self) -> Result<(), Error> {
        check_unit_interval("rate", self.rate).map(|_| ())
    }

    /// `1 / (1 − rate)` in `f32`.
    pub fn scale(&self) -> f32 {
        1.0 / (1.0 - self.rate)
    }
}

/// What a dropout layer keeps between calls: its own generator (when seeded) and, for the
/// last forward pass, whether it was active and the generator state before its draws.
#[derive(Debug, Clone, PartialEq)]
pub struct DropoutState {
    own: Rng,
    seeded: bool,
    mask: Rng,
    active: bool,
}

impl DropoutState {
    /// A fresh state (the layer's own generator is seeded on first use).
    pub const fn new() -> Self {
        DropoutState {
            own: Rng::new(0),
            seeded: false,
            mask: Rng::new(0),
            active: false,
        }
    }
}

impl DropoutState {
    /// The layer's own generator once it has drawn (`None` before): saved in a checkpoint so
    /// that a resumed run draws the very masks an uninterrupted one would.
    pub fn generator(&self) -> Option<[u64; 2]> {
        self.seeded.then(|| self.own.to_parts())
    }

    /// Restores what [`DropoutState::generator`] returned.
    pub fn set_generator(&mut self, g: Option<[u64; 2]>) {
        match g {
            Some(parts) => {
                self.own = Rng::from_parts(parts);
                self.seeded = true;
            }
            None => self.seeded = false,
        }
    }

    /// The start of a forward pass: records whether the layer is `active` and, when it is,
    /// returns its own generator — seeded with `seed` when given, else split from the model's
    /// generator `rng` the first time (`Rng::new(0)` without one) — after keeping a copy for
    /// [`DropoutState::replay`].
    #[inline]
    pub(crate) fn begin(
        &mut self,
        active: bool,
        seed: Option<u64>,
        rng: Option<&mut Rng>,
    ) -> Option<&mut Rng> {
        self.active = active;
        if !active {
            return None;
        }
        if !self.seeded {
            self.own = match (seed, rng) {
                (Some(seed), _) => Rng::new(seed),
                (None, Some(rng)) => rng.split(),
                (None, None) => Rng::new(0),
            };
            self.seeded = true;
        }
        self.mask = self.own.clone();
        Some(&mut self.own)
    }

    /// The generator as it was before the last forward pass's draws (`None` when that pass was
    /// inactive): the backward pass draws the same numbers again instead of storing a mask.
    #[inline]
    pub(crate) fn replay(&self) -> Option<Rng> {
        self.active.then(|| self.mask.clone())
    }
}

impl Default for DropoutState {
    fn default() -> Self {
        Self::new()
    }
}

impl Zeroed for DropoutState {
    const FLOATS: usize = 0;
    fn zeroed() -> Self {
        Self::new()
    }
}

/// Forward pass of the rows `x` (a tile of samples, flat; `y` the same length). In training
/// with `rate > 0`, each value is kept with probability `1 − rate` and scaled by `1/(1 − rate)`,
/// drawing one number per value in row-major order from the layer's own generator: seeded with
/// `cfg.seed` when given, else split from the model's generator `rng` ([`Rng::split`]) the first
/// time (`Rng::new(0)` when `rng` is `None`) — so each dropout layer has its own stream and the
/// masks do not depend on the tile size.
/// Otherwise a copy. `state` keeps the generator from before the draws for [`backward`].
pub fn forward(
    cfg: &DropoutConfig,
    state: &mut DropoutState,
    x: &[f32],
    y: &mut [f32],
    training: bool,
    rng: Option<&mut Rng>,
) {
    let Some(rng) = state.begin(training && cfg.rate > 0.0, cfg.seed, rng) else {
        for (yv, &xv) in y.iter_mut().zip(x) {
            *yv = xv;
        }
        return;
    };
    let (rate, scale) = (cfg.rate, cfg.scale());
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = if rng.next_f32() >= rate {
            xv * scale
        } else {
            0.0
        };
    }
}

/// Backward pass of the last forward sample: **writes** `dx` (`d` scaled on kept values, 0 on
/// dropped ones; `d` itself when the forward pass was inactive).
///
/// ```
/// use microfit_core::layer::dropout::{backward, forward, DropoutConfig, DropoutState};
/// use microfit_core::rng::Rng;
/// let cfg = DropoutConfig { rate: 0.5, seed: None };
/// let mut st = DropoutState::new();
/// let mut y = [0.0; 8];
/// forward(&cfg, &mut st, &[1.0; 8], &mut y, true, Some(&mut Rng::new(4)));
/// let mut dx = [0.0; 8];
/// backward(&cfg, &st, &[1.0; 8], &mut dx);
/// assert_eq!(dx, y); // ∂(Σ y)/∂x is the mask times the scale, like y for x = 1
/// ```
pub fn backward(cfg: &DropoutConfig, state: &DropoutState, d: &[f32], dx: &mut [f32]) {
    let Some(mut rng) = state.replay() else {
        for (o, &v) in dx.iter_mut().zip(d) {
            *o = v;
        }
        return;
    };
    let (rate, scale) = (cfg.rate, cfg.scale());
    for (o, &v) in dx.iter_mut().zip(d) {
        *o = if rng.next_f32() >= rate {
            v * scale
        } else {
            0.0
        };
    }
}

super::noise::noise_layer!(
    /// Keras `Dropout(rate, seed)` over a tensor `T` (input and output have the same type):
    /// inverted dropout in training, the identity at inference.
    Dropout,
    DropoutConfig,
    "dropout",
    rate,
    rate_ok,
    forward,
    backward
);

/// `0 ≤ rate < 1` (Keras' range for the dropout rates), usable in a `const`.
pub(crate) const fn rate_ok(r: f32) -> bool {
    r >= 0.0 && r < 1.0
}

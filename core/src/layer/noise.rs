//! Keras' regularization layers besides `Dropout`: noise in training, the identity at
//! inference, and `ActivityRegularization`.
//!
//! | Keras | here | training (each value, or each channel for spatial dropout) |
//! |---|---|---|
//! | `GaussianNoise(stddev, seed)` | [`GaussianNoise`] | `y = x + stddev·n`, `n ~ N(0, 1)` |
//! | `GaussianDropout(rate, seed)` | [`GaussianDropout`] | `y = x · (s·n + 1)`, `s = sqrt(rate / (1 − rate))`: `N(1, rate/(1−rate))` |
//! | `AlphaDropout(rate, seed)` | [`AlphaDropout`] | `y = a·x + b` if `u ≥ rate`, else `a·α' + b`: keeps SELU's mean and variance |
//! | `SpatialDropout1D/2D/3D(rate, seed)` | [`SpatialDropout1D`], [`SpatialDropout2D`], [`SpatialDropout3D`] | whole channels: `y = x/(1 − rate)` if the channel's `u ≥ rate`, else 0 |
//! | `ActivityRegularization(l1, l2)` | [`ActivityRegularization`] | `y = x`; activity penalty `l1·Σ|y| + l2·Σy²` (÷ batch) |
//!
//! `α' = −1.6732632423543772 · 1.0507009873554805` (SELU's `−α·λ`),
//! `a = ((1 − rate)(1 + rate·α'²))^(−1/2)`, `b = −a·α'·rate`: Keras' constants in double
//! precision, then float32, as Keras computes them.
//!
//! **Random numbers.** As for [`Dropout`](super::dropout::Dropout): each layer draws from its
//! own generator — seeded with its `seed`, else split from the model's generator the first
//! time it draws — in sample order (per value in row-major order; spatial dropout: one draw per
//! channel per sample), so the noise does not depend on how many samples a tile holds; the
//! same seed gives the same noise on every target and in both front doors. `n` is
//! [`Rng::normal`] (Box–Muller over `libm`, the same bits everywhere), `u` is
//! [`Rng::next_f32`]. The state ([`NoiseState`]) keeps a copy of the generator from before a
//! tile's draws and the backward pass draws the same numbers again: no mask is stored. Its
//! generator is part of a checkpoint ([`DropoutState::generator`]).
//!
//! **Inference** (and `rate = 0`, `stddev = 0`): the identity, as in Keras. TensorFlow's own
//! random numbers cannot be reproduced; the laws above are tested statistically
//! (`core/tests/noise_laws.rs`).
//!
//! ```
//! use microfit_core::prelude::*;
//! use microfit_core::layer::noise::GaussianNoise;
//! let mut net = Network::new(GaussianNoise::<[f32; 3]>::new(0.1).seed(7), 0)?;
//! assert_eq!(net.predict(&[1.0, 2.0, 3.0]), &[1.0, 2.0, 3.0]); // identity at inference
//! # Ok::<(), microfit_core::Error>(())
//! ```

use core::marker::PhantomData;

use super::dropout::{DropoutConfig, DropoutState, rate_ok};
use super::{BackwardCtx, ForwardCtx, Layer, PlainCache};
use crate::backend::Backend;
use crate::error::Error;
use crate::math::keras_decimal;
use crate::regularizer::{Reg, Regularizer};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// What a noise layer keeps between calls: its own generator and, for the last forward pass,
/// whether it was active and the generator from before its draws (the dropout layer's state).
pub type NoiseState = DropoutState;

/// `GaussianNoise` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GaussianNoiseConfig {
    /// Standard deviation of the added noise, in `[0, 1]` (Keras' range).
    pub stddev: f32,
    /// The layer's own seed; `None` draws from the model's generator.
    pub seed: Option<u64>,
}

impl GaussianNoiseConfig {
    /// Checks `0 ≤ stddev ≤ 1` (Keras rejects other values).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] otherwise (NaN included).
    pub fn validate(&self) -> Result<(), Error> {
        if (0.0..=1.0).contains(&self.stddev) {
            Ok(())
        } else {
            Err(Error::InvalidHyperparameter {
                name: "stddev",
                reason: crate::error::Reason::UnitInterval,
            })
        }
    }
}

/// Identity (and the backward pass of a layer whose gradient is the identity).
#[inline]
fn copy(x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v;
    }
}

/// `GaussianNoise` forward pass over the rows `x` (a tile, flat; `y` the same length): in
/// training with `stddev > 0`, `y = x + stddev·n` with one normal draw per value; otherwise a
/// copy. Its backward pass is the identity.
pub fn gaussian_noise_forward(
    cfg: &GaussianNoiseConfig,
    state: &mut NoiseState,
    x: &[f32],
    y: &mut [f32],
    training: bool,
    rng: Option<&mut Rng>,
) {
    let Some(rng) = state.begin(training && cfg.stddev > 0.0, cfg.seed, rng) else {
        return copy(x, y);
    };
    for (o, &v) in y.iter_mut().zip(x) {
        // TensorFlow's `normal(mean=0, stddev)`: `n·stddev + 0`, then added.
        *o = v + (rng.normal() * cfg.stddev + 0.0);
    }
}

/// `sqrt(rate / (1 − rate))` as Keras computes it (Python doubles, then float32).
fn gaussian_dropout_stddev(rate: f32) -> f32 {
    let r = keras_decimal(rate);
    libm::sqrt(r / (1.0 - r)) as f32
}

/// `GaussianDropout` forward pass: in training with `rate > 0`, `y = x·(s·n + 1)` with one
/// normal draw per value, `s = sqrt(rate/(1 − rate))`; otherwise a copy.
pub fn gaussian_dropout_forward(
    cfg: &DropoutConfig,
    state: &mut NoiseState,
    x: &[f32],
    y: &mut [f32],
    training: bool,
    rng: Option<&mut Rng>,
) {
    let Some(rng) = state.begin(training && cfg.rate > 0.0, cfg.seed, rng) else {
        return copy(x, y);
    };
    let s = gaussian_dropout_stddev(cfg.rate);
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v * (rng.normal() * s + 1.0);
    }
}

/// `GaussianDropout` backward pass: **writes** `dx = d·(s·n + 1)` with the forward pass's
/// draws (`d` when it was inactive).
pub fn gaussian_dropout_backward(
    cfg: &DropoutConfig,
    state: &NoiseState,
    d: &[f32],
    dx: &mut [f32],
) {
    let Some(mut rng) = state.replay() else {
        return copy(d, dx);
    };
    let s = gaussian_dropout_stddev(cfg.rate);
    for (o, &v) in dx.iter_mut().zip(d) {
        *o = v * (rng.normal() * s + 1.0);
    }
}

/// SELU's `α`.
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's `λ`.
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// `AlphaDropout`'s `(α', a, b)` for `rate`, in float32 from Keras' double-precision
/// expressions: `α' = −α·λ`, `a = ((1 − rate)(1 + rate·α'²))^(−0.5)`, `b = −a·α'·rate`.
///
/// ```
/// use microfit_core::layer::noise::alpha_dropout_affine;
/// let (alpha_p, a, b) = alpha_dropout_affine(0.1);
/// assert_eq!(alpha_p, -1.758_099_3);
/// // Keras (Python doubles, then float32) for rate 0.1:
/// assert_eq!((a, b), (0.921_284_5, 0.161_970_97));
/// ```
pub fn alpha_dropout_affine(rate: f32) -> (f32, f32, f32) {
    let r = keras_decimal(rate);
    let alpha_p = -SELU_ALPHA * SELU_SCALE;
    let a = libm::pow((1.0 - r) * (1.0 + r * (alpha_p * alpha_p)), -0.5);
    let b = -a * alpha_p * r;
    (alpha_p as f32, a as f32, b as f32)
}

/// `AlphaDropout` forward pass: in training with `rate > 0`, one uniform `u` per value, kept
/// when `u ≥ rate`: `y = a·x + b` if kept, `a·α' + b` if dropped; otherwise a copy.
pub fn alpha_dropout_forward(
    cfg: &DropoutConfig,
    state: &mut NoiseState,
    x: &[f32],
    y: &mut [f32],
    training: bool,
    rng: Option<&mut Rng>,
) {
    let Some(rng) = state.begin(training && cfg.rate > 0.0, cfg.seed, rng) else {
        return copy(x, y);
    };
    let (alpha_p, a, b) = alpha_dropout_affine(cfg.rate);
    for (o, &v) in y.iter_mut().zip(x) {
        let kept = if rng.next_f32() >= cfg.rate {
            v
        } else {
            alpha_p
        };
        *o = a * kept + b;
    }
}

/// `AlphaDropout` backward pass: **writes** `dx = a·d` on kept values, 0 on dropped ones (`d`
/// when the forward pass was inactive).
pub fn alpha_dropout_backward(cfg: &DropoutConfig, state: &NoiseState, d: &[f32], dx: &mut [f32]) {
    let Some(mut rng) = state.replay() else {
        return copy(d, dx);
    };
    let (_, a, _) = alpha_dropout_affine(cfg.rate);
    for (o, &v) in dx.iter_mut().zip(d) {
        *o = if rng.next_f32() >= cfg.rate {
            a * v
        } else {
            0.0
        };
    }
}

/// The spatial-dropout mask of one sample applied to `x → y` (rows of `channels` values, the
/// channels last): one uniform per channel, kept (`· 1/(1 − rate)`) when `≥ rate`.
#[inline]
fn spatial_row(rng: &mut Rng, cfg: &DropoutConfig, channels: usize, x: &[f32], y: &mut [f32]) {
    const BLOCK: usize = 64;
    let (rate, scale) = (cfg.rate, cfg.scale());
    // The channels' draws, a block of channels at a time (no allocation): the generator is
    // copied at the block's start and run again for each position.
    let mut c0 = 0;
    while c0 < channels {
        let width = (channels - c0).min(BLOCK);
        let mut keep = [false; BLOCK];
        for k in keep.iter_mut().take(width) {
            *k = rng.next_f32() >= rate;
        }
        for (xr, yr) in x.chunks(channels).zip(y.chunks_mut(channels)) {
            let (xs, ys) = (xr.get(c0..c0 + width), yr.get_mut(c0..c0 + width));
            if let (Some(xs), Some(ys)) = (xs, ys) {
                for ((o, &v), &k) in ys.iter_mut().zip(xs).zip(&keep) {
                    *o = if k { v * scale } else { 0.0 };
                }
            }
        }
        c0 += width;
    }
}

/// `SpatialDropout1D/2D/3D` forward pass over the rows `x` (a tile of samples of `len` values
/// each, channels last, `channels` per position): in training with `rate > 0`, per sample one
/// uniform per channel, the channel kept (all its positions `· 1/(1 − rate)`) when `≥ rate`,
/// else zeroed; otherwise a copy.
#[allow(clippy::too_many_arguments)]
pub fn spatial_dropout_forward(
    cfg: &DropoutConfig,
    (len, channels): (usize, usize),
    state: &mut NoiseState,
    x: &[f32],
    y: &mut [f32],
    training: bool,
    rng: Option<&mut Rng>,
) {
    let Some(rng) = state.begin(training && cfg.rate > 0.0, cfg.seed, rng) else {
        return copy(x, y);
    };
    let (len, channels) = (len.max(1), channels.max(1));
    for (xs, ys) in x.chunks(len).zip(y.chunks_mut(len)) {
        spatial_row(rng, cfg, channels, xs, ys);
    }
}

/// `SpatialDropout` backward pass: **writes** `dx` with the forward pass's channel masks (`d`
/// when it was inactive).
pub fn spatial_dropout_backward(
    cfg: &DropoutConfig,
    (len, channels): (usize, usize),
    state: &NoiseState,
    d: &[f32],
    dx: &mut [f32],
) {
    let Some(mut rng) = state.replay() else {
        return copy(d, dx);
    };
    let (len, channels) = (len.max(1), channels.max(1));
    for (ds, xs) in d.chunks(len).zip(dx.chunks_mut(len)) {
        spatial_row(&mut rng, cfg, channels, ds, xs);
    }
}

/// `ActivityRegularization` forward pass: `y = x`, and each sample's penalty `reg(y)`
/// (undivided) into `ctx.penalties` when given.
pub fn activity_regularization_forward(
    reg: &Reg,
    width: usize,
    x: &[f32],
    y: &mut [f32],
    ctx: &mut ForwardCtx<'_>,
) {
    copy(x, y);
    super::activity_penalties(Some(reg), y, width, width, ctx);
}

/// `ActivityRegularization` backward pass: **writes** `dx = d + ∂reg(y)/∂y · inv_batch`, row by
/// row (`y` the forward pass's outputs, rows of `width`).
pub fn activity_regularization_backward(
    reg: &Reg,
    width: usize,
    y: &[f32],
    d: &[f32],
    dx: &mut [f32],
    inv_batch: f32,
) {
    copy(d, dx);
    let w = width.max(1);
    for (yr, gr) in y.chunks_exact(w).zip(dx.chunks_exact_mut(w)) {
        reg.add_grad(yr, w, gr, inv_batch);
    }
}

/// The builder methods and the `Layer` impl shared by the typed noise layers over a tensor
/// `T` — `Dropout` included (`layer::dropout`): `$cfg` is the config type, `$fwd`/`$bwd` the
/// forward and backward functions.
macro_rules! noise_layer {
    ($(#[$doc:meta])* $name:ident, $cfg:ty, $kind:literal, $param:ident, $check:expr, $fwd:path, $bwd:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $name<T> {
            /// Settings (Keras' arguments).
            pub config: $cfg,
            _t: PhantomData<T>,
        }

        impl<T> $name<T> {
            /// The layer, drawing from the model's generator. For a checked version use `try_new`.
            ///
            /// # Panics
            /// If the value is out of Keras' range (at compile time when used in a `const`).
            pub const fn new($param: f32) -> Self {
                assert!($check($param), concat!(stringify!($name), ": value out of range"));
                $name {
                    config: <$cfg>::with($param),
                    _t: PhantomData,
                }
            }

            /// The layer, checked.
            ///
            /// # Errors
            /// [`Error::InvalidHyperparameter`] for a value out of Keras' range.
            pub fn try_new($param: f32) -> Result<Self, Error> {
                let config = <$cfg>::with($param);
                config.validate()?;
                Ok($name {
                    config,
                    _t: PhantomData,
                })
            }

            /// Gives the layer its own generator seeded with `seed` (Keras `seed=`).
            pub const fn seed(mut self, seed: u64) -> Self {
                self.config.seed = Some(seed);
                self
            }
        }

        impl<T: Tensor> Layer for $name<T> {
            type Input = T;
            type Output = T;
            type Cache<const TILE: usize> = PlainCache<T, $crate::layer::dropout::DropoutState, TILE>;
            type Rng = Rng;
            super::plain_layer_methods!($kind);

            fn init(&self, _p: &mut (), _rng: &mut Rng) {}

            #[inline]
            fn forward<B: Backend, const TILE: usize>(
                &self,
                _p: &(),
                x: &[T],
                cache: &mut Self::Cache<TILE>,
                ctx: &mut ForwardCtx<'_>,
            ) {
                $fwd(
                    &self.config,
                    &mut cache.state,
                    T::flat(x),
                    cache.out.y.flat_mut(),
                    ctx.training,
                    ctx.rng.as_deref_mut(),
                );
            }

            #[inline]
            fn backward<B: Backend, const TILE: usize>(
                &self,
                _p: &(),
                _g: &mut (),
                _x: &[T],
                cache: &mut Self::Cache<TILE>,
                dx: Option<&mut [T]>,
                _ctx: &BackwardCtx,
            ) {
                if let Some(dx) = dx {
                    let bwd = $bwd;
                    bwd(&self.config, &cache.state, cache.out.dy.flat(), T::flat_mut(dx));
                }
            }
        }
    };
}
pub(crate) use noise_layer;

impl GaussianNoiseConfig {
    const fn with(stddev: f32) -> Self {
        GaussianNoiseConfig { stddev, seed: None }
    }
}

const fn stddev_ok(s: f32) -> bool {
    s >= 0.0 && s <= 1.0
}

noise_layer!(
    /// Keras `GaussianNoise(stddev, seed)` over a tensor `T`: `x + N(0, stddev²)` in training,
    /// the identity at inference.
    GaussianNoise,
    GaussianNoiseConfig,
    "gaussian_noise",
    stddev,
    stddev_ok,
    gaussian_noise_forward,
    |_: &GaussianNoiseConfig, _: &NoiseState, d: &[f32], dx: &mut [f32]| copy(d, dx)
);

noise_layer!(
    /// Keras `GaussianDropout(rate, seed)` over a tensor `T`: `x · N(1, rate/(1 − rate))` in
    /// training, the identity at inference.
    GaussianDropout,
    DropoutConfig,
    "gaussian_dropout",
    rate,
    rate_ok,
    gaussian_dropout_forward,
    gaussian_dropout_backward
);

noise_layer!(
    /// Keras `AlphaDropout(rate, seed)` over a tensor `T` (for SELU networks): dropped values
    /// set to SELU's negative saturation, then an affine map that keeps the mean and variance.
    AlphaDropout,
    DropoutConfig,
    "alpha_dropout",
    rate,
    rate_ok,
    alpha_dropout_forward,
    alpha_dropout_backward
);

/// The typed spatial dropout layers: the same code, input types of rank 2, 3 and 4.
macro_rules! spatial_dropout_layer {
    ($(#[$doc:meta])* $name:ident, $kind:literal, [$($d:ident),+], $t:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $name<$(const $d: usize),+, const C: usize> {
            /// Rate and seed.
            pub config: DropoutConfig,
        }

        impl<$(const $d: usize),+, const C: usize> $name<$($d),+, C> {
            /// The layer, drawing from the model's generator. For a checked version use
            /// `try_new`.
            ///
            /// # Panics
            /// If `rate` is not in `[0, 1)` (at compile time when used in a `const`).
            pub const fn new(rate: f32) -> Self {
                assert!(rate_ok(rate), "SpatialDropout rate must be in [0, 1)");
                $name {
                    config: DropoutConfig::with(rate),
                }
            }

            /// The layer, checked.
            ///
            /// # Errors
            /// [`Error::InvalidHyperparameter`] if `rate` is not in `[0, 1)`.
            pub fn try_new(rate: f32) -> Result<Self, Error> {
                let config = DropoutConfig::with(rate);
                config.validate()?;
                Ok($name { config })
            }

            /// Gives the layer its own generator seeded with `seed` (Keras `seed=`).
            pub const fn seed(mut self, seed: u64) -> Self {
                self.config.seed = Some(seed);
                self
            }
        }

        impl<$(const $d: usize),+, const C: usize> Layer for $name<$($d),+, C> {
            type Input = $t;
            type Output = $t;
            type Cache<const TILE: usize> = PlainCache<$t, NoiseState, TILE>;
            type Rng = Rng;
            super::plain_layer_methods!($kind);

            fn init(&self, _p: &mut (), _rng: &mut Rng) {}

            #[inline]
            fn forward<B: Backend, const TILE: usize>(
                &self,
                _p: &(),
                x: &[$t],
                cache: &mut Self::Cache<TILE>,
                ctx: &mut ForwardCtx<'_>,
            ) {
                spatial_dropout_forward(
                    &self.config,
                    (<$t as Tensor>::LEN, C),
                    &mut cache.state,
                    <$t as Tensor>::flat(x),
                    cache.out.y.flat_mut(),
                    ctx.training,
                    ctx.rng.as_deref_mut(),
                );
            }

            #[inline]
            fn backward<B: Backend, const TILE: usize>(
                &self,
                _p: &(),
                _g: &mut (),
                _x: &[$t],
                cache: &mut Self::Cache<TILE>,
                dx: Option<&mut [$t]>,
                _ctx: &BackwardCtx,
            ) {
                if let Some(dx) = dx {
                    spatial_dropout_backward(
                        &self.config,
                        (<$t as Tensor>::LEN, C),
                        &cache.state,
                        cache.out.dy.flat(),
                        <$t as Tensor>::flat_mut(dx),
                    );
                }
            }
        }
    };
}

spatial_dropout_layer!(
    /// Keras `SpatialDropout1D(rate, seed)` on `(steps S, channels C)`: drops whole channels
    /// (every step of a channel together), kept ones scaled by `1/(1 − rate)`.
    SpatialDropout1D,
    "spatial_dropout1d",
    [S],
    [[f32; C]; S]
);

spatial_dropout_layer!(
    /// Keras `SpatialDropout2D(rate, seed)` on `(H, W, C)` (channels last): drops whole feature
    /// maps, kept ones scaled by `1/(1 − rate)`.
    SpatialDropout2D,
    "spatial_dropout2d",
    [H, W],
    [[[f32; C]; W]; H]
);

spatial_dropout_layer!(
    /// Keras `SpatialDropout3D(rate, seed)` on `(D, H, W, C)` (channels last): drops whole
    /// feature volumes, kept ones scaled by `1/(1 − rate)`.
    SpatialDropout3D,
    "spatial_dropout3d",
    [D, H, W],
    [[[[f32; C]; W]; H]; D]
);

/// Keras `ActivityRegularization(l1, l2)` over a tensor `T`: the identity, whose output gets
/// the activity penalty `L1L2(l1, l2)` (divided by the batch size, like every activity
/// penalty in Keras ≥ 3.14).
///
/// ```
/// use microfit_core::prelude::*;
/// use microfit_core::layer::noise::ActivityRegularization;
/// let layer = ActivityRegularization::<[f32; 4]>::new(0.01, 0.02);
/// assert!(layer.has_activity_regularizer());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivityRegularization<T> {
    /// `L1L2(l1, l2)` (Keras' own regularizer: a zero factor skips its term).
    pub regularizer: Reg,
    _t: PhantomData<T>,
}

impl<T> ActivityRegularization<T> {
    /// `ActivityRegularization(l1, l2)`. For a checked version use
    /// [`ActivityRegularization::try_new`].
    ///
    /// # Panics
    /// If a factor is negative or not finite (at compile time when used in a `const`).
    pub const fn new(l1: f32, l2: f32) -> Self {
        ActivityRegularization {
            regularizer: Reg::l1l2(l1, l2),
            _t: PhantomData,
        }
    }

    /// Checked `ActivityRegularization(l1, l2)`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a negative or non-finite factor.
    pub fn try_new(l1: f32, l2: f32) -> Result<Self, Error> {
        Ok(ActivityRegularization {
            regularizer: Reg::try_l1l2(l1, l2)?,
            _t: PhantomData,
        })
    }
}

impl<T: Tensor> Layer for ActivityRegularization<T> {
    type Input = T;
    type Output = T;
    type Cache<const TILE: usize> = PlainCache<T, (), TILE>;
    type Rng = crate::rng::NoRng;
    super::plain_layer_methods!(@common "activity_regularization");

    fn init(&self, _p: &mut (), _rng: &mut Rng) {}

    #[inline]
    fn forward<B: Backend, const TILE: usize>(
        &self,
        _p: &(),
        x: &[T],
        cache: &mut Self::Cache<TILE>,
        ctx: &mut ForwardCtx<'_>,
    ) {
        let n = x.len().min(TILE);
        activity_regularization_forward(
            &self.regularizer,
            T::LEN,
            T::flat(&x[..n]),
            T::flat_mut(&mut cache.out.y.0[..n]),
            ctx,
        );
    }

    #[inline]
    fn backward<B: Backend, const TILE: usize>(
        &self,
        _p: &(),
        _g: &mut (),
        x: &[T],
        cache: &mut Self::Cache<TILE>,
        dx: Option<&mut [T]>,
        ctx: &BackwardCtx,
    ) {
        if let Some(dx) = dx {
            let n = x.len().min(TILE).min(dx.len());
            activity_regularization_backward(
                &self.regularizer,
                T::LEN,
                T::flat(&cache.out.y.0[..n]),
                T::flat(&cache.out.dy.0[..n]),
                T::flat_mut(&mut dx[..n]),
                ctx.inv_batch,
            );
        }
    }

    fn has_activity_regularizer(&self) -> bool {
        true
    }
}

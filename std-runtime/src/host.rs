//! [`Host`]: the core's training engine on this machine's best vector unit, chosen at run time.
//!
//! A plain `cargo build --release` targets the x86-64 baseline (SSE2). The core's kernels are
//! written so that a compiler allowed wider vectors runs them faster with the very same bits
//! (no fused multiply-add, no reordered sum: see `microfit_core::kernels`). [`Host`] is a
//! [`Backend`] whose bulk kernels are those same core functions, compiled two more times —
//! for AVX2 and for AVX-512 — and picked once per process from what the CPU reports
//! (`is_x86_feature_detected!`). Everything else (the trainer, the layers, the loss) is the
//! core's code, so typed networks, the run-time `Sequential`, the CLI and the benchmark all
//! train through it.
//!
//! Its scalar math is bit-identical to the core's portable backend too: `f32::sqrt` is the
//! correctly rounded IEEE square root (like `libm::sqrtf`), and `exp`/`ln` are libm's
//! algorithms written without branches (`microfit_core::kernels::exp`, checked on all 2³²
//! inputs), so loops over them vectorize.
//!
//! Levels ([`level`]): `MICROFIT_SIMD=baseline|avx2|avx512` caps the level (for measurements
//! and for the tests that compare levels); it never raises it above what the CPU has. On other
//! architectures (aarch64: NEON is part of the baseline) [`Host`] is the portable code compiled
//! for the target.
//!
//! # Safety
//! This module is the only `unsafe` code of the runtime: calling a `#[target_feature]`
//! function. Each call happens after the features it enables were detected on the running CPU
//! ([`level`] never reports a level whose features are missing).
//!
//! ```
//! use microfit::core::prelude::*;
//! use microfit::host::Host;
//! type M = (Dense<4, 8>, Dense<8, 3>);
//! let layers: M = (Dense::new(Activation::Relu), Dense::new(Activation::Softmax));
//! let net = Network::<M, 16>::new_tiled(layers, 1)?;
//! let opt = Adam::new(0.01, &net.params)?;
//! let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
//! let mut t = Trainer::<_, _, Host>::with_backend(net, opt, loss);
//! let x = [0.1f32, 0.2, 0.3, 0.4, -0.1, 0.0, 0.5, 1.0];
//! let data = Samples::new(&x, 4, Targets::Classes(&[0, 2]))?;
//! assert!(t.fit_epoch(&data, 2, None)?.loss.is_finite());
//! # Ok::<(), microfit::core::Error>(())
//! ```
#![allow(unsafe_code)]

use std::sync::OnceLock;

/// Calls `$f::<K>($args)` for the `K` in `1..=16` equal to `$k`.
macro_rules! by_k {
    ($k:expr, $f:ident($($arg:expr),*)) => {
        match $k {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            7 => $f::<7>($($arg),*),
            8 => $f::<8>($($arg),*),
            9 => $f::<9>($($arg),*),
            10 => $f::<10>($($arg),*),
            11 => $f::<11>($($arg),*),
            12 => $f::<12>($($arg),*),
            13 => $f::<13>($($arg),*),
            14 => $f::<14>($($arg),*),
            15 => $f::<15>($($arg),*),
            _ => $f::<16>($($arg),*),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod gemm_x86;
mod small;

use microfit_core::backend::Backend;
use microfit_core::kernels;
use microfit_core::kernels::gemm::{MatMul, MatMulAtAcc, MatMulBt};
use microfit_core::optim::adam::Update;

/// The vector extensions the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The target's baseline (SSE2 on x86-64, NEON on aarch64).
    Baseline,
    /// AVX2 (+ FMA, BMI1/2: x86-64-v3). FMA is allowed but never used: Rust does not fuse.
    Avx2,
    /// AVX-512 F/BW/DQ/VL on top of AVX2 (x86-64-v4).
    Avx512,
}

impl Level {
    /// Its name (`"baseline"`, `"avx2"`, `"avx512"`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

/// What the running CPU supports.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let v3 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("bmi1")
            && is_x86_feature_detected!("bmi2")
            && is_x86_feature_detected!("lzcnt")
            && is_x86_feature_detected!("popcnt");
        let v4 = v3
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl");
        if v4 {
            return Level::Avx512;
        }
        if v3 {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// The level [`Host`] runs at: [`detected`], capped by `MICROFIT_SIMD` when set. Fixed for the
/// life of the process (read once).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var("MICROFIT_SIMD").as_deref() {
            Ok("baseline") | Ok("sse2") => Level::Baseline,
            Ok("avx2") => Level::Avx2,
            _ => Level::Avx512,
        };
        detected().min(cap)
    })
}

/// How a [`HostAt`] picks its level.
pub trait Choice: 'static {
    /// The level to run at (never above [`detected`]).
    fn level() -> Level;
}

/// [`level`]: the best the CPU has, capped by `MICROFIT_SIMD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Best;

impl Choice for Best {
    #[inline]
    fn level() -> Level {
        level()
    }
}

/// At most the level `L` (0 baseline, 1 AVX2, 2 AVX-512), and never above [`detected`]: the
/// tests compare the levels in one process with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AtMost<const L: u8>;

impl<const L: u8> Choice for AtMost<L> {
    #[inline]
    fn level() -> Level {
        static DETECTED: OnceLock<Level> = OnceLock::new();
        let cap = match L {
            0 => Level::Baseline,
            1 => Level::Avx2,
            _ => Level::Avx512,
        };
        (*DETECTED.get_or_init(detected)).min(cap)
    }
}

/// A [`Backend`] whose bulk kernels run at the level `C` chooses (see the
/// [module docs](self)); the same bits as `microfit_core::backend::Portable` at every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostAt<C>(core::marker::PhantomData<fn() -> C>);

/// The runtime's backend: the best vector extension of the running CPU ([`level`]).
pub type Host = HostAt<Best>;

/// Defines a `Backend` method whose body runs at the process's [`level`]: the body compiled
/// three times (baseline, AVX2, AVX-512), the right one called. A method may give its own
/// AVX-512 body (`avx512 { … }` after the body): hand-written kernels ([`gemm_x86`]).
macro_rules! dispatched {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block $(avx512 $body512:block)?)+) => {
        $(
            #[inline]
            fn $name($($arg: $ty),*) $(-> $ret)? {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
                    fn avx2($($arg: $ty),*) $(-> $ret)? $body
                    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
                    fn avx512($($arg: $ty),*) $(-> $ret)? { dispatched!(@pick $body $($body512)?) }
                    match C::level() {
                        // SAFETY: `level` reports AVX-512 only when the CPU has every feature
                        // `avx512` enables.
                        Level::Avx512 => return unsafe { avx512($($arg),*) },
                        // SAFETY: likewise for AVX2 and the features of `avx2`.
                        Level::Avx2 => return unsafe { avx2($($arg),*) },
                        Level::Baseline => {}
                    }
                }
                $body
            }
        )+
    };
    (@pick $body:block) => { $body };
    (@pick $body:block $body512:block) => { $body512 };
}

impl<C: Choice> Backend for HostAt<C> {
    /// The update loops' square roots and divisions leave room for the L2 penalties' squares.
    const FOLD_SUM_SQ: bool = true;

    #[inline(always)]
    fn sqrt(x: f32) -> f32 {
        x.sqrt()
    }

    #[inline(always)]
    fn exp(x: f32) -> f32 {
        kernels::exp::exp(x)
    }

    #[inline(always)]
    fn ln(x: f32) -> f32 {
        kernels::exp::ln(x)
    }

    dispatched! {
        fn exp_slice(v: &mut [f32]) {
            for x in v {
                *x = kernels::exp::exp(*x);
            }
        }

        fn ln_slice(v: &mut [f32]) {
            for x in v {
                *x = kernels::exp::ln(*x);
            }
        }

        fn matmul(m: MatMul<'_>) {
            small::matmul(m);
        } avx512 {
            gemm_x86::matmul(m);
        }

        fn matmul_bt(m: MatMulBt<'_>) {
            kernels::gemm::matmul_bt(m);
        } avx512 {
            gemm_x86::matmul_bt(m);
        }

        fn matmul_at_acc(m: MatMulAtAcc<'_>) {
            small::matmul_at_acc(m);
        } avx512 {
            gemm_x86::matmul_at_acc(m);
        }

        fn sum_sq(v: &[f32]) -> f32 {
            kernels::reduce::sum_sq(v)
        }

        // The updates that return `Σw²`: the core's loops (the update block by block, then the
        // block's squares), compiled for the level.
        fn adam_update_sq(u: Update<'_>) -> f32 {
            microfit_core::optim::adam::update_sq::<Host>(u)
        }

        fn momentum_update_sq(w: &mut [f32], g: &[f32], m: &mut [f32], lr: f32, mu: f32, nesterov: bool) -> f32 {
            microfit_core::optim::sgd::momentum_update_sq(w, g, m, lr, mu, nesterov)
        }

        fn sgd_update_sq(w: &mut [f32], g: &[f32], lr: f32) -> f32 {
            microfit_core::optim::sgd::sgd_update_sq(w, g, lr)
        }

        fn sum_abs(v: &[f32]) -> f32 {
            kernels::reduce::sum_abs(v)
        }

        fn l2_grad(w: &[f32], g: &mut [f32], l2: f32, scale: f32) {
            microfit_core::regularizer::l2_add_grad(w, g, l2, scale);
        }

        fn all_finite(v: &[f32]) -> bool {
            microfit_core::math::all_finite_inline(v)
        }

        fn adam_update(u: Update<'_>) {
            // The scalar math is the same at every level: `Host`'s.
            microfit_core::optim::adam::update::<Host>(u);
        }

        fn momentum_update(w: &mut [f32], g: &[f32], m: &mut [f32], lr: f32, mu: f32, nesterov: bool) {
            microfit_core::optim::sgd::momentum_update(w, g, m, lr, mu, nesterov);
        }

        fn sgd_update(w: &mut [f32], g: &[f32], lr: f32) {
            microfit_core::optim::sgd::sgd_update(w, g, lr);
        }
    }
}

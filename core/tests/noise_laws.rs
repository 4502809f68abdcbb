//! The training-time laws of the noise layers, tested statistically with fixed seeds — Keras'
//! draws come from TensorFlow's generator and cannot be reproduced, their laws can:
//!
//! | layer | law checked |
//! |---|---|
//! | `GaussianNoise(σ)` | `y − x`: mean 0, variance `σ²`, kurtosis 3 (normal, not uniform) |
//! | `GaussianDropout(rate)` | `y / x`: mean 1, variance `rate/(1 − rate)`, kurtosis 3 |
//! | `AlphaDropout(rate)` | on SELU-distributed inputs (mean 0, variance 1): the same mean and variance after; a fraction `rate` of the values at SELU's saturation `a·α' + b` |
//! | `SpatialDropout1D/2D/3D(rate)` | every position of a channel of a sample kept or dropped together; kept values `x/(1 − rate)`; a fraction `rate` of the channels dropped |
//!
//! Bounds are 5 standard errors of each statistic for the sample size (N = 200,000 values): a
//! correct law fails with probability below 1e-6 per statistic, and with the fixed seeds the
//! outcome is the same on every run. Each check is also run on a deliberately wrong law (a
//! uniform noise of the right variance, `rate` instead of `rate/(1 − rate)`, no affine
//! correction, an element-wise mask) and must reject it.

use microfit_core::layer::dropout::{DropoutConfig, DropoutState};
use microfit_core::layer::noise::{
    GaussianNoiseConfig, alpha_dropout_affine, alpha_dropout_forward, gaussian_dropout_forward,
    gaussian_noise_forward, spatial_dropout_forward,
};
use microfit_core::prelude::*;

const N: usize = 200_000;

/// Mean, variance and kurtosis (in f64).
fn moments(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
    (mean, var, m4 / (var * var))
}

/// A normal law `N(mean, var)`: the sample's mean within 5 standard errors (`sqrt(var/N)`),
/// its variance within 5 of `var·sqrt(2/N)`, its kurtosis within 5 of `sqrt(24/N)` of 3.
fn check_normal(v: &[f64], mean: f64, var: f64) -> Result<(), String> {
    let n = v.len() as f64;
    let (m, s2, k) = moments(v);
    if (m - mean).abs() > 5.0 * (var / n).sqrt() {
        return Err(format!("mean {m} vs {mean}"));
    }
    if (s2 - var).abs() > 5.0 * var * (2.0 / n).sqrt() {
        return Err(format!("variance {s2} vs {var}"));
    }
    if (k - 3.0).abs() > 5.0 * (24.0 / n).sqrt() {
        return Err(format!("kurtosis {k} vs 3 (not a normal law)"));
    }
    Ok(())
}

/// A fraction `p` among `n` trials, within 5 binomial standard errors.
fn check_fraction(hits: usize, n: usize, p: f64) -> Result<(), String> {
    let f = hits as f64 / n as f64;
    let se = (p * (1.0 - p) / n as f64).sqrt();
    if (f - p).abs() > 5.0 * se {
        Err(format!("fraction {f} vs {p}"))
    } else {
        Ok(())
    }
}

/// `x` values in training mode through `fwd`, on a fresh state seeded with `seed`.
fn draw(
    x: &[f32],
    seed: u64,
    fwd: impl Fn(&mut DropoutState, &[f32], &mut [f32], bool, Option<&mut Rng>),
) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    fwd(
        &mut DropoutState::new(),
        x,
        &mut y,
        true,
        Some(&mut Rng::new(seed)),
    );
    y
}

fn gaussian_noise_law(y: &[f32], x: &[f32], stddev: f64) -> Result<(), String> {
    let d: Vec<f64> = y.iter().zip(x).map(|(a, b)| f64::from(a - b)).collect();
    check_normal(&d, 0.0, stddev * stddev)
}

#[test]
fn gaussian_noise_adds_a_normal_law_of_stddev() {
    let x: Vec<f32> = (0..N).map(|i| (i % 13) as f32 * 0.25 - 1.5).collect();
    let cfg = GaussianNoiseConfig {
        stddev: 0.3,
        seed: Some(41),
    };
    let y = draw(&x, 0, |s, x, y, t, r| {
        gaussian_noise_forward(&cfg, s, x, y, t, r)
    });
    gaussian_noise_law(&y, &x, 0.3).unwrap();
    // Wrong laws are caught: variance stddev (not stddev²), a uniform law of the right
    // variance (kurtosis 1.8).
    assert!(gaussian_noise_law(&y, &x, 0.3f64.sqrt()).is_err());
    let mut r = Rng::new(1);
    let half = 0.3 * 3f32.sqrt();
    let uniform: Vec<f32> = x.iter().map(|v| v + r.uniform(-half, half)).collect();
    let err = gaussian_noise_law(&uniform, &x, 0.3).unwrap_err();
    assert!(err.contains("kurtosis"), "{err}");
    // Inference: the identity.
    let mut y = vec![0.0f32; 8];
    gaussian_noise_forward(
        &cfg,
        &mut DropoutState::new(),
        &x[..8],
        &mut y,
        false,
        Some(&mut Rng::new(0)),
    );
    assert_eq!(&y, &x[..8]);
}

fn gaussian_dropout_law(y: &[f32], x: &[f32], rate: f64) -> Result<(), String> {
    let f: Vec<f64> = y.iter().zip(x).map(|(a, b)| f64::from(a / b)).collect();
    check_normal(&f, 1.0, rate / (1.0 - rate))
}

#[test]
fn gaussian_dropout_multiplies_by_a_normal_law_of_mean_one() {
    // Non-zero inputs, so that `y / x` is the factor.
    let x: Vec<f32> = (0..N).map(|i| 0.5 + (i % 7) as f32 * 0.3).collect();
    let cfg = DropoutConfig {
        rate: 0.3,
        seed: None,
    };
    let y = draw(&x, 5, |s, x, y, t, r| {
        gaussian_dropout_forward(&cfg, s, x, y, t, r)
    });
    gaussian_dropout_law(&y, &x, 0.3).unwrap();
    // Variance `rate` (not `rate/(1 − rate)`): caught.
    let wrong: Vec<f32> = {
        let mut r = Rng::new(9);
        x.iter()
            .map(|v| v * (r.normal() * 0.3f32.sqrt() + 1.0))
            .collect()
    };
    assert!(gaussian_dropout_law(&wrong, &x, 0.3).is_err());
}

/// SELU of a standard normal sample: mean ≈ 0, variance ≈ 1 (SELU's fixed point).
fn selu_inputs(n: usize) -> Vec<f32> {
    let (alpha, scale) = (1.673_263_2f32, 1.050_701f32);
    let mut r = Rng::new(77);
    (0..n)
        .map(|_| {
            let z = r.normal();
            scale
                * if z > 0.0 {
                    z
                } else {
                    alpha * (libm::expf(z) - 1.0)
                }
        })
        .collect()
}

/// Alpha dropout's law on inputs `x`: the mean and variance of `x` kept (within 5 standard
/// errors of the output's statistics), and a fraction `rate` of the outputs at `a·α' + b`.
fn alpha_dropout_law(y: &[f32], x: &[f32], rate: f32) -> Result<(), String> {
    let n = y.len() as f64;
    let (xm, xv, _) = moments(&x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
    let yv: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    let (ym, yvar, yk) = moments(&yv);
    if (ym - xm).abs() > 5.0 * (yvar / n).sqrt() {
        return Err(format!("mean {ym} vs the inputs' {xm}"));
    }
    // The variance of a sample variance: (κ − 1 + 2/(n − 1))·σ⁴/n ≈ (κ − 1)σ⁴/n.
    if (yvar - xv).abs() > 5.0 * yvar * ((yk - 1.0) / n).sqrt() {
        return Err(format!("variance {yvar} vs the inputs' {xv}"));
    }
    let (alpha_p, a, b) = alpha_dropout_affine(rate);
    let dropped = y.iter().filter(|&&v| v == a * alpha_p + b).count();
    check_fraction(dropped, y.len(), f64::from(rate))
}

#[test]
fn alpha_dropout_keeps_selu_mean_and_variance() {
    let x = selu_inputs(N);
    let cfg = DropoutConfig {
        rate: 0.2,
        seed: Some(3),
    };
    let y = draw(&x, 0, |s, x, y, t, r| {
        alpha_dropout_forward(&cfg, s, x, y, t, r)
    });
    alpha_dropout_law(&y, &x, 0.2).unwrap();
    // Dropping to SELU's saturation without the affine correction changes the moments.
    let (alpha_p, _, _) = alpha_dropout_affine(0.2);
    let mut r = Rng::new(3);
    let wrong: Vec<f32> = x
        .iter()
        .map(|&v| if r.next_f32() >= 0.2 { v } else { alpha_p })
        .collect();
    assert!(alpha_dropout_law(&wrong, &x, 0.2).is_err());
    // Plain inverted dropout (zeros, ×1/(1 − rate)) does not keep the variance either.
    let mut r = Rng::new(3);
    let inverted: Vec<f32> = x
        .iter()
        .map(|&v| if r.next_f32() >= 0.2 { v / 0.8 } else { 0.0 })
        .collect();
    assert!(alpha_dropout_law(&inverted, &x, 0.2).is_err());
}

/// Spatial dropout's law on `samples` samples of `positions × channels` ones: every channel
/// of a sample all kept (each value `1/(1 − rate)`) or all zero, a fraction `rate` dropped.
fn spatial_law(y: &[f32], positions: usize, channels: usize, rate: f32) -> Result<(), String> {
    let scale = 1.0 / (1.0 - rate);
    let mut dropped = 0;
    let mut total = 0;
    for sample in y.chunks(positions * channels) {
        for c in 0..channels {
            let first = sample[c];
            if first != 0.0 && first != scale {
                return Err(format!("value {first}: neither 0 nor 1/(1 − rate)"));
            }
            if (0..positions).any(|p| sample[p * channels + c] != first) {
                return Err("a channel is not kept or dropped as a whole".into());
            }
            dropped += usize::from(first == 0.0);
            total += 1;
        }
    }
    check_fraction(dropped, total, f64::from(rate))
}

#[test]
fn spatial_dropout_drops_whole_channels() {
    // SpatialDropout1D (8 steps, 5 channels), 2D (3×4, 7 channels), 3D (2×2×2, 3 channels).
    for (positions, channels) in [(8, 5), (12, 7), (8, 3)] {
        let len = positions * channels;
        let samples = N / len;
        let x = vec![1.0f32; samples * len];
        let cfg = DropoutConfig {
            rate: 0.4,
            seed: None,
        };
        let y = draw(&x, 21, |s, x, y, t, r| {
            spatial_dropout_forward(&cfg, (len, channels), s, x, y, t, r);
        });
        spatial_law(&y, positions, channels, 0.4).unwrap();
        // An element-wise mask (plain dropout) is caught.
        let mut y = vec![0.0f32; x.len()];
        microfit_core::layer::dropout::forward(
            &cfg,
            &mut DropoutState::new(),
            &x,
            &mut y,
            true,
            Some(&mut Rng::new(21)),
        );
        assert!(spatial_law(&y, positions, channels, 0.4).is_err());
    }
}

/// The typed layers draw the same laws through a network in training, and are the identity at
/// inference.
#[test]
fn typed_layers_in_a_network() {
    use microfit_core::layer::noise::{GaussianNoise, SpatialDropout2D};
    use microfit_core::layer::{ForwardCtx, Layer};
    type S = SpatialDropout2D<2, 2, 4>;
    let layer = S::new(0.5).seed(8);
    let mut cache: <S as Layer>::Cache<1> = microfit_core::tensor::Zeroed::zeroed();
    let mut rng = Rng::new(0);
    let mut all = Vec::new();
    for _ in 0..20_000 {
        let mut ctx = ForwardCtx {
            training: true,
            rng: Some(&mut rng),
            layer: 0,
            penalties: None,
        };
        layer.forward::<Portable, 1>(&(), &[[[[1.0f32; 4]; 2]; 2]], &mut cache, &mut ctx);
        all.extend_from_slice(cache.out.y.flat());
    }
    spatial_law(&all, 4, 4, 0.5).unwrap();
    let mut net = Network::new(GaussianNoise::<[f32; 3]>::new(1.0), 1).unwrap();
    assert_eq!(net.predict(&[1.0, -2.0, 0.5]), &[1.0, -2.0, 0.5]);
}

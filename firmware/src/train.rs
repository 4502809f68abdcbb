//! The training math of the firmware: Dense(relu) → Dense(softmax), categorical cross-entropy,
//! optional kernel L2, Keras Adam — `reference.py` of the workloads, in `f32` with `libm`.
//!
//! TODO(lead): replace with microfit-core. Everything the firmware needs from the trainer goes
//! through [`train_epoch`], [`evaluate`] and [`Mlp::weights_hash`]; the rest of the firmware
//! (data, logging, LED, measurement markers) does not care how the epoch is computed.
//!
//! Semantics, step by step (all `f32`, in this order, so that another implementation can be
//! compared bit for bit):
//! * Forward: `h[j] = (Σ_i x[i]·k0[i][j]) + b0[j]` (sum from `0.0` over `i` ascending),
//!   `r = max(h, 0)`, `z[k] = (Σ_j r[j]·k1[j][k]) + b1[k]`.
//! * Softmax / loss via log-softmax of the logits: `zmax = max z`, `e = expf(z - zmax)`,
//!   `s = Σ e`, `p = e / s`, `loss = -((z[y] - zmax) - logf(s))`. (reference.py clips `p` at
//!   1e-7 instead; the two agree to rounding while `p[y] > 1e-7`, and the loss never feeds the
//!   gradient.) Batch data loss = (Σ sample losses) / n.
//! * Penalty (kernel L2, before the update): `l2 · (Σ k0² + Σ k1²)`, each sum row-major.
//! * Backward, accumulated sample by sample in batch order: `dz = (p - onehot(y)) / n`,
//!   `g_b1 += dz`, `g_k1[j][k] += r[j]·dz[k]`, `dh[j] = Σ_k dz[k]·k1[j][k]` for `h[j] > 0`,
//!   `g_b0 += dh`, `g_k0[i][j] += x[i]·dh[j]`. Inactive ReLU units are skipped (their terms
//!   are ±0, so the bits do not change). Kernels then get `g += (2·l2)·w`.
//! * Keras Adam, `t` counted from 1: `alpha = lr·sqrtf(1 - powf(b2, t)) / (1 - powf(b1, t))`;
//!   `m += (g - m)·(1 - b1)`; `v += (g·g - v)·(1 - b2)`; `w -= (m·alpha) / (sqrtf(v) + eps)`.
//! * Epoch report (Keras `fit` history): the batch-size-weighted means of the pre-update batch
//!   data losses and penalties (`Σ loss_b·n_b / Σ n_b`), and the running accuracy of the
//!   pre-update predictions (argmax of `p`, first index on ties).

use libm::{expf, logf, powf, sqrtf};

/// Parameters (or gradients, or Adam moments) of `Dense(I→H, relu) → Dense(H→O, softmax)`,
/// in Keras variable order: `dense_0/kernel` `[in][out]`, `dense_0/bias`, `dense_1/kernel`,
/// `dense_1/bias`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mlp<const I: usize, const H: usize, const O: usize> {
    /// `dense_0/kernel`, `[in][out]`.
    pub kernel0: [[f32; H]; I],
    /// `dense_0/bias`.
    pub bias0: [f32; H],
    /// `dense_1/kernel`, `[in][out]`.
    pub kernel1: [[f32; O]; H],
    /// `dense_1/bias`.
    pub bias1: [f32; O],
}

impl<const I: usize, const H: usize, const O: usize> Mlp<I, H, O> {
    /// All zeros (a `const`, so a `static` of it lands in `.bss`).
    pub const ZERO: Self = Self { kernel0: [[0.0; H]; I], bias0: [0.0; H], kernel1: [[0.0; O]; H], bias1: [0.0; O] };

    /// Number of trainable parameters.
    pub const PARAMS: usize = I * H + H + H * O + O;

    /// The four tensors, flattened, in Keras variable order.
    pub fn tensors(&self) -> [&[f32]; 4] {
        [self.kernel0.as_flattened(), &self.bias0, self.kernel1.as_flattened(), &self.bias1]
    }

    /// FNV-1a 64 over the little-endian bytes of every parameter, in Keras variable order.
    pub fn weights_hash(&self) -> u64 {
        self.tensors()
            .iter()
            .flat_map(|t| t.iter())
            .fold(FNV1A64_OFFSET, |h, w| fnv1a64(h, &w.to_le_bytes()))
    }

    /// `l2 · (Σ k0² + Σ k1²)`; exactly `0.0` when `l2 == 0.0`.
    pub fn kernel_l2(&self, l2: f32) -> f32 {
        if l2 == 0.0 {
            return 0.0;
        }
        let s0 = self.kernel0.as_flattened().iter().fold(0.0_f32, |a, &w| a + w * w);
        let s1 = self.kernel1.as_flattened().iter().fold(0.0_f32, |a, &w| a + w * w);
        l2 * (s0 + s1)
    }

    /// Forward pass of one sample: pre-activations `h` of the hidden layer, softmax `p`;
    /// returns the sample's cross-entropy against `label` (via log-softmax of the logits).
    #[inline(always)]
    fn forward(&self, x: &[f32; I], label: usize, h: &mut [f32; H], p: &mut [f32; O]) -> f32 {
        for j in 0..H {
            let mut acc = 0.0_f32;
            for i in 0..I {
                acc += x[i] * self.kernel0[i][j];
            }
            h[j] = acc + self.bias0[j];
        }
        let mut z = [0.0_f32; O];
        for k in 0..O {
            let mut acc = 0.0_f32;
            for j in 0..H {
                let r = if h[j] > 0.0 { h[j] } else { 0.0 };
                acc += r * self.kernel1[j][k];
            }
            z[k] = acc + self.bias1[k];
        }
        let zmax = z.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        let mut s = 0.0_f32;
        let mut zy = 0.0_f32;
        for k in 0..O {
            let e = expf(z[k] - zmax);
            p[k] = e;
            s += e;
            if k == label {
                zy = z[k];
            }
        }
        for k in 0..O {
            p[k] /= s;
        }
        -((zy - zmax) - logf(s))
    }
}

/// FNV-1a 64 offset basis (the hash of no bytes).
pub const FNV1A64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues the FNV-1a 64 hash `h` over `bytes`.
pub fn fnv1a64(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Index of the largest probability (the first one on ties, as NumPy's `argmax`).
fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for k in 1..p.len() {
        if p[k] > p[best] {
            best = k;
        }
    }
    best
}

/// Hyperparameters of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Adam beta_1.
    pub beta_1: f32,
    /// Adam beta_2.
    pub beta_2: f32,
    /// Adam epsilon.
    pub epsilon: f32,
    /// Kernel L2 factor (`0.0` = off).
    pub l2: f32,
    /// Mini-batch size (the last partial batch is kept).
    pub batch_size: usize,
}

/// Everything training changes: parameters, the batch gradient, Adam's moments and step.
/// About `4 · PARAMS · 4` bytes: keep it in a `static` (`.bss`), not on the stack.
#[derive(Clone, Debug)]
pub struct TrainState<const I: usize, const H: usize, const O: usize> {
    /// The parameters.
    pub params: Mlp<I, H, O>,
    grads: Mlp<I, H, O>,
    m: Mlp<I, H, O>,
    v: Mlp<I, H, O>,
    /// Adam steps taken so far (`t` of the last update).
    pub step: u32,
}

impl<const I: usize, const H: usize, const O: usize> TrainState<I, H, O> {
    /// All zeros.
    pub const ZERO: Self = Self { params: Mlp::ZERO, grads: Mlp::ZERO, m: Mlp::ZERO, v: Mlp::ZERO, step: 0 };

    /// Starts a run from the initial parameters (zero moments, step 0), in place: no copy of
    /// the whole state goes through the stack.
    pub fn reset(&mut self, kernel0: &[[f32; H]; I], bias0: &[f32; H], kernel1: &[[f32; O]; H], bias1: &[f32; O]) {
        self.params.kernel0 = *kernel0;
        self.params.bias0 = *bias0;
        self.params.kernel1 = *kernel1;
        self.params.bias1 = *bias1;
        self.grads = Mlp::ZERO;
        self.m = Mlp::ZERO;
        self.v = Mlp::ZERO;
        self.step = 0;
    }
}

/// What one epoch reports (Keras `fit` history semantics, see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// Batch-size-weighted mean of the pre-update batch data losses.
    pub data_loss: f32,
    /// Batch-size-weighted mean of the pre-update batch penalties.
    pub penalty: f32,
    /// Running accuracy of the pre-update predictions.
    pub accuracy: f32,
    /// Samples trained on in this epoch.
    pub samples: u32,
}

/// Full-data evaluation of the current parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy over the data.
    pub data_loss: f32,
    /// Kernel L2 penalty of the parameters.
    pub penalty: f32,
    /// Fraction of samples classified right.
    pub accuracy: f32,
    /// Samples classified right.
    pub correct: u32,
}

/// `m += (g - m)(1 - b1)`, `v += (g² - v)(1 - b2)`, `w -= (m·alpha) / (sqrt(v) + eps)` with
/// `g += decay·w` first when `decay != 0`.
#[inline(always)]
fn adam(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay: f32, alpha: f32, c1: f32, c2: f32, eps: f32) {
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if decay != 0.0 { g + decay * *w } else { g };
        *m += (g - *m) * c1;
        *v += (g * g - *v) * c2;
        *w -= (*m * alpha) / (sqrtf(*v) + eps);
    }
}

/// One epoch over `x`/`labels` in order, mini-batches of `hp.batch_size` (last partial batch
/// kept), one Adam step per batch.
///
/// TODO(lead): replace with microfit-core (its trainer, fed the same data and hyperparameters).
///
/// # Panics
/// If `x` and `labels` differ in length, `hp.batch_size == 0` or a label is `>= O`.
#[inline(never)]
pub fn train_epoch<const I: usize, const H: usize, const O: usize>(
    state: &mut TrainState<I, H, O>,
    hp: &Hyper,
    x: &[[f32; I]],
    labels: &[u8],
) -> EpochReport {
    assert!(x.len() == labels.len() && hp.batch_size > 0);
    let (c1, c2) = (1.0 - hp.beta_1, 1.0 - hp.beta_2);
    let two_l2 = 2.0 * hp.l2;
    let (mut sum_data, mut sum_pen, mut correct) = (0.0_f32, 0.0_f32, 0_u32);
    let mut h = [0.0_f32; H];
    let mut p = [0.0_f32; O];
    for (xb, yb) in x.chunks(hp.batch_size).zip(labels.chunks(hp.batch_size)) {
        let n = xb.len() as f32;
        state.grads = Mlp::ZERO;
        let penalty = state.params.kernel_l2(hp.l2);
        let mut batch_loss = 0.0_f32;
        let (params, g) = (&state.params, &mut state.grads);
        for (xs, &y) in xb.iter().zip(yb) {
            let y = usize::from(y);
            assert!(y < O);
            batch_loss += params.forward(xs, y, &mut h, &mut p);
            if argmax(&p) == y {
                correct += 1;
            }
            let mut dz = [0.0_f32; O];
            for k in 0..O {
                let t = if k == y { 1.0 } else { 0.0 };
                dz[k] = (p[k] - t) / n;
                g.bias1[k] += dz[k];
            }
            for j in 0..H {
                if h[j] > 0.0 {
                    let mut dh = 0.0_f32;
                    for k in 0..O {
                        g.kernel1[j][k] += h[j] * dz[k];
                        dh += dz[k] * params.kernel1[j][k];
                    }
                    g.bias0[j] += dh;
                    for i in 0..I {
                        g.kernel0[i][j] += xs[i] * dh;
                    }
                }
            }
        }
        sum_data += (batch_loss / n) * n;
        sum_pen += penalty * n;

        state.step += 1;
        let t = state.step as f32;
        let alpha = hp.learning_rate * sqrtf(1.0 - powf(hp.beta_2, t)) / (1.0 - powf(hp.beta_1, t));
        let (w, g, m, v) = (&mut state.params, &state.grads, &mut state.m, &mut state.v);
        let eps = hp.epsilon;
        adam(w.kernel0.as_flattened_mut(), g.kernel0.as_flattened(), m.kernel0.as_flattened_mut(), v.kernel0.as_flattened_mut(), two_l2, alpha, c1, c2, eps);
        adam(&mut w.bias0, &g.bias0, &mut m.bias0, &mut v.bias0, 0.0, alpha, c1, c2, eps);
        adam(w.kernel1.as_flattened_mut(), g.kernel1.as_flattened(), m.kernel1.as_flattened_mut(), v.kernel1.as_flattened_mut(), two_l2, alpha, c1, c2, eps);
        adam(&mut w.bias1, &g.bias1, &mut m.bias1, &mut v.bias1, 0.0, alpha, c1, c2, eps);
    }
    let seen = x.len() as f32;
    EpochReport { data_loss: sum_data / seen, penalty: sum_pen / seen, accuracy: correct as f32 / seen, samples: x.len() as u32 }
}

/// Mean cross-entropy, kernel L2 penalty and accuracy of `params` over all of `x`/`labels`.
///
/// # Panics
/// If `x` and `labels` differ in length or a label is `>= O`.
pub fn evaluate<const I: usize, const H: usize, const O: usize>(
    params: &Mlp<I, H, O>,
    l2: f32,
    x: &[[f32; I]],
    labels: &[u8],
) -> Evaluation {
    assert!(x.len() == labels.len());
    let mut h = [0.0_f32; H];
    let mut p = [0.0_f32; O];
    let (mut loss, mut correct) = (0.0_f32, 0_u32);
    for (xs, &y) in x.iter().zip(labels) {
        let y = usize::from(y);
        assert!(y < O);
        loss += params.forward(xs, y, &mut h, &mut p);
        if argmax(&p) == y {
            correct += 1;
        }
    }
    let n = x.len() as f32;
    Evaluation { data_loss: loss / n, penalty: params.kernel_l2(l2), accuracy: correct as f32 / n, correct }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload as wl;

    type Net = Mlp<{ wl::INPUTS }, { wl::HIDDEN }, { wl::CLASSES }>;

    fn initial() -> Net {
        let mut st = Box::new(TrainState::ZERO);
        reset(&mut st);
        st.params
    }

    fn reset(st: &mut TrainState<{ wl::INPUTS }, { wl::HIDDEN }, { wl::CLASSES }>) {
        st.reset(
            &wl::MICROFIT_INIT_DENSE_0_KERNEL,
            &wl::MICROFIT_INIT_DENSE_0_BIAS,
            &wl::MICROFIT_INIT_DENSE_1_KERNEL,
            &wl::MICROFIT_INIT_DENSE_1_BIAS,
        );
    }

    fn run(l2: f32) -> (Evaluation, u64) {
        let hp = Hyper {
            learning_rate: wl::LEARNING_RATE,
            beta_1: wl::BETA_1,
            beta_2: wl::BETA_2,
            epsilon: wl::EPSILON,
            l2,
            batch_size: wl::BATCH_SIZE,
        };
        let mut st = Box::new(TrainState::ZERO);
        reset(&mut st);
        for _ in 0..wl::EPOCHS {
            train_epoch(&mut st, &hp, &wl::MICROFIT_DATASET_X, &wl::MICROFIT_DATASET_LABELS);
        }
        (evaluate(&st.params, l2, &wl::MICROFIT_DATASET_X, &wl::MICROFIT_DATASET_LABELS), st.params.weights_hash())
    }

    /// Final figures of `reference.py` (NumPy float32): W1 0.042604 / 0.986667 (L2 1e-3:
    /// 0.049420 / 0.98); W2 0.252740 / 0.97 (L2 1e-4: 0.241892 / 0.97). The sums run in another
    /// order there, so the loss is compared to 1e-4.
    #[test]
    fn matches_reference_py() {
        let (l2, want_loss, want_acc) = match (wl::NAME, cfg!(feature = "l2")) {
            ("W1", false) => (0.0, 0.042604, 0.986667),
            ("W1", true) => (1e-3, 0.049420, 0.98),
            ("W2", false) => (0.0, 0.252740, 0.97),
            (_, _) => (1e-4, 0.241892, 0.97),
        };
        let (ev, hash) = run(l2);
        eprintln!("{} l2={l2}: loss {} acc {} hash {hash:016x}", wl::NAME, ev.data_loss, ev.accuracy);
        assert!((ev.data_loss - want_loss).abs() < 1e-4, "loss {} vs {want_loss}", ev.data_loss);
        assert!((ev.accuracy - want_acc).abs() < 1e-5, "accuracy {} vs {want_acc}", ev.accuracy);
    }

    #[test]
    fn deterministic_and_hash_sensitive() {
        let (a, ha) = run(0.0);
        let (b, hb) = run(0.0);
        assert_eq!((a, ha), (b, hb));
        let mut net = initial();
        let h0 = net.weights_hash();
        net.bias1[0] = f32::from_bits(net.bias1[0].to_bits() ^ 1);
        assert_ne!(h0, net.weights_hash());
        assert_ne!(h0, ha);
    }

    #[test]
    fn fnv1a_test_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(FNV1A64_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV1A64_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(FNV1A64_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        // The hash runs over the parameters' little-endian bytes in Keras variable order.
        let mut net = Mlp::<1, 1, 1>::ZERO;
        net.kernel0[0][0] = 1.0;
        net.bias1[0] = -2.0;
        let mut bytes = [0_u8; 16];
        bytes[..4].copy_from_slice(&1.0_f32.to_le_bytes());
        bytes[12..].copy_from_slice(&(-2.0_f32).to_le_bytes());
        assert_eq!(net.weights_hash(), fnv1a64(FNV1A64_OFFSET, &bytes));
    }
}

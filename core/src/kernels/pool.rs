//! Max and average pooling (1-D, 2-D, 3-D, channels last) over flat row-major slices.
//!
//! The windows come from a [`ConvGeometry`] built with [`ConvGeometry::pool`] (pool size,
//! strides, `valid`/`same` padding, `channels` in = out); the walk over output positions and
//! window taps is the convolution's ([`ConvGeometry::for_each_tap`]), so pooling and
//! convolution agree on every output size and padding.
//!
//! * **Max**: `y[o, c] = max_{t in window} x[i(o, t), c]`. The window is scanned in row-major
//!   order and a later element replaces the current maximum only when strictly greater, so
//!   ties go to the **first** maximal element (TensorFlow's CPU kernel scans the same way).
//!   Taps in the `same` padding are ignored (as if they held `-∞`). Backward routes
//!   `dy[o, c]` to that element. **No argmax indices are stored**: [`max_backward`] scans the
//!   window of `x` again with the same rule (memory over time: pooling is a small part of
//!   the work, and the layer keeps no cache at all).
//! * **Average**: `y[o, c] = (Σ_t x[i(o, t), c]) / n_o`, summed in window order, where `n_o`
//!   counts only the taps inside the input (TensorFlow's `same` average pooling excludes the
//!   padding). Backward adds `dy[o, c] / n_o` to each of those inputs.
//!
//! The input gradients are **written** (zeroed first) and accumulated output position by
//! output position in row-major order. No input can make these functions panic; a slice of
//! the wrong length gives zeros.

use super::conv::ConvGeometry;

fn lengths_ok(g: &ConvGeometry, x_len: usize, y_len: usize) -> bool {
    g.in_channels() > 0 && x_len == g.in_len() && y_len == g.out_len()
}

/// Max pooling of one sample: `y[o, c] = max over the window of x[·, c]`.
///
/// ```
/// use microfit_core::kernels::conv::{ConvGeometry, Padding};
/// use microfit_core::kernels::pool::max_forward;
/// // MaxPooling1D(2) on 5 positions, 1 channel: the last position is dropped (valid).
/// let g = ConvGeometry::pool(&[5], &[2], &[2], Padding::Valid, 1)?;
/// let mut y = [0.0; 2];
/// max_forward(&g, &[1.0, 3.0, -2.0, -5.0, 9.0], &mut y);
/// assert_eq!(y, [3.0, -2.0]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
pub fn max_forward(g: &ConvGeometry, x: &[f32], y: &mut [f32]) {
    y.fill(0.0);
    let c = g.in_channels();
    if !lengths_ok(g, x.len(), y.len()) {
        return;
    }
    g.for_each_output(|o, w| {
        let Some(yo) = y.get_mut(o * c..(o + 1) * c) else {
            return;
        };
        let mut first = true;
        w.for_each(g, |_, i| {
            let Some(xs) = x.get(i * c..(i + 1) * c) else {
                return;
            };
            if first {
                yo.copy_from_slice(xs);
                first = false;
            } else {
                // `if x > y { y = x }` as a select (a vector max across the channels, no
                // branch per value); a NaN never replaces, a NaN kept stays.
                for (yv, &xv) in yo.iter_mut().zip(xs) {
                    *yv = if xv > *yv { xv } else { *yv };
                }
            }
        });
    });
}

/// Channels per block of [`max_backward`]'s running maxima (kept in registers).
const CHANNEL_BLOCK: usize = 16;

/// Backward of [`max_forward`]: **writes** `dx`, routing each `dy[o, c]` to the first maximal
/// element of its window (found again from `x`).
///
/// ```
/// use microfit_core::kernels::conv::{ConvGeometry, Padding};
/// use microfit_core::kernels::pool::max_backward;
/// let g = ConvGeometry::pool(&[4], &[2], &[2], Padding::Valid, 1)?;
/// let mut dx = [7.0; 4];
/// // Second window is a tie: the first element gets the gradient.
/// max_backward(&g, &[1.0, 3.0, 2.0, 2.0], &[10.0, 20.0], &mut dx);
/// assert_eq!(dx, [0.0, 10.0, 20.0, 0.0]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
pub fn max_backward(g: &ConvGeometry, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    dx.fill(0.0);
    let c = g.in_channels();
    if !lengths_ok(g, x.len(), dy.len()) || dx.len() != x.len() {
        return;
    }
    g.for_each_output(|o, w| {
        let Some(dyo) = dy.get(o * c..(o + 1) * c) else {
            return;
        };
        // Per block of channels, side by side and without a branch per value: the running
        // maximum and the input position holding it (the first one: only a strictly larger
        // value replaces it, never a NaN).
        for c0 in (0..c).step_by(CHANNEL_BLOCK) {
            let n = CHANNEL_BLOCK.min(c - c0);
            let mut best = [0.0f32; CHANNEL_BLOCK];
            // Input positions as `u32` (a vector of them as wide as the values'); a geometry
            // of 2³² positions or more (16 GiB per channel) would drop its gradient.
            let mut at = [0u32; CHANNEL_BLOCK];
            let mut first = true;
            w.for_each(g, |_, i| {
                let Some(xs) = x.get(i * c + c0..i * c + c0 + n) else {
                    return;
                };
                for ((b, a), &v) in best.iter_mut().zip(at.iter_mut()).zip(xs) {
                    let take = first || v > *b;
                    *b = if take { v } else { *b };
                    *a = if take {
                        u32::try_from(i).unwrap_or(u32::MAX)
                    } else {
                        *a
                    };
                }
                first = false;
            });
            if first {
                continue;
            }
            for (l, (&i, &d)) in at
                .iter()
                .zip(dyo.get(c0..).unwrap_or(&[]))
                .take(n)
                .enumerate()
            {
                if let Some(t) = dx.get_mut(i as usize * c + c0 + l) {
                    *t += d;
                }
            }
        }
    });
}

/// Average pooling of one sample: `y[o, c] = Σ_window x[·, c] / n_o` (padding excluded).
///
/// ```
/// use microfit_core::kernels::conv::{ConvGeometry, Padding};
/// use microfit_core::kernels::pool::avg_forward;
/// // AveragePooling1D(2, padding="same") on 3 positions: windows [0, 1] and [2] (+ padding).
/// let g = ConvGeometry::pool(&[3], &[2], &[2], Padding::Same, 1)?;
/// let mut y = [0.0; 2];
/// avg_forward(&g, &[1.0, 2.0, 6.0], &mut y);
/// assert_eq!(y, [1.5, 6.0]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
pub fn avg_forward(g: &ConvGeometry, x: &[f32], y: &mut [f32]) {
    y.fill(0.0);
    let c = g.in_channels();
    if !lengths_ok(g, x.len(), y.len()) {
        return;
    }
    g.for_each_output(|o, w| {
        let Some(yo) = y.get_mut(o * c..(o + 1) * c) else {
            return;
        };
        w.for_each(g, |_, i| {
            if let Some(xs) = x.get(i * c..(i + 1) * c) {
                for (yv, &xv) in yo.iter_mut().zip(xs) {
                    *yv += xv;
                }
            }
        });
        let n = w.len();
        if n > 0 {
            let n = n as f32;
            for yv in yo.iter_mut() {
                *yv /= n;
            }
        }
    });
}

/// Backward of [`avg_forward`]: **writes** `dx[i, c] = Σ_{o: i in window(o)} dy[o, c] / n_o`.
///
/// ```
/// use microfit_core::kernels::conv::{ConvGeometry, Padding};
/// use microfit_core::kernels::pool::avg_backward;
/// let g = ConvGeometry::pool(&[3], &[2], &[1], Padding::Valid, 1)?;
/// let mut dx = [0.0; 3];
/// avg_backward(&g, &[2.0, 4.0], &mut dx);
/// assert_eq!(dx, [1.0, 3.0, 2.0]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
pub fn avg_backward(g: &ConvGeometry, dy: &[f32], dx: &mut [f32]) {
    dx.fill(0.0);
    let c = g.in_channels();
    if !lengths_ok(g, dx.len(), dy.len()) {
        return;
    }
    g.for_each_output(|o, w| {
        let Some(dyo) = dy.get(o * c..(o + 1) * c) else {
            return;
        };
        let n = w.len() as f32;
        w.for_each(g, |_, i| {
            if let Some(dxs) = dx.get_mut(i * c..(i + 1) * c) {
                for (dv, &d) in dxs.iter_mut().zip(dyo) {
                    *dv += d / n;
                }
            }
        });
    });
}

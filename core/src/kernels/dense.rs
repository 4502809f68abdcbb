//! Dense (fully connected) kernels over flat row-major slices.
//!
//! Layout as Keras: kernel `W` is `(in, out)` row-major, `z = x·W + b`.
//!
//! Order: for each output `j`, `z_j = ((x_0 W_0j + x_1 W_1j) + …) + b_j`, summed over `i`
//! in increasing order. The loop runs over `i` outside and `j` inside, so the inner loop is
//! a contiguous, vectorizable `z += x_i · W_i` while each `z_j` keeps the sequential order.
//! Rows with `x_i == 0` (inactive ReLU units) are skipped: they would add `±0`.

/// `z = x·W (+ b)`; `x.len() = in`, `z.len() = out`, `w.len() = in·out`.
///
/// ```
/// use microfit_core::kernels::dense::forward;
/// let mut z = [0.0; 2];
/// forward(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], Some(&[0.5, 0.5]), &mut z);
/// assert_eq!(z, [7.5, 10.5]);
/// ```
#[inline]
pub fn forward(x: &[f32], w: &[f32], b: Option<&[f32]>, z: &mut [f32]) {
    let out = z.len();
    z.fill(0.0);
    if out == 0 {
        return;
    }
    for (&xi, row) in x.iter().zip(w.chunks_exact(out)) {
        if xi == 0.0 {
            continue;
        }
        for (zj, &wij) in z.iter_mut().zip(row) {
            *zj += xi * wij;
        }
    }
    if let Some(b) = b {
        for (zj, &bj) in z.iter_mut().zip(b) {
            *zj += bj;
        }
    }
}

/// Accumulates the gradients of one sample: `gW += xᵀ·dz`, `gb += dz`, and writes
/// `dx = W·dz` (summed over `j` in increasing order) when `dx` is given.
///
/// ```
/// use microfit_core::kernels::dense::backward;
/// let (mut gw, mut gb, mut dx) = ([0.0; 4], [0.0; 2], [0.0; 2]);
/// backward(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], &[1.0, -1.0], &mut gw, Some(&mut gb), Some(&mut dx));
/// assert_eq!(gw, [1.0, -1.0, 2.0, -2.0]);
/// assert_eq!(gb, [1.0, -1.0]);
/// assert_eq!(dx, [-1.0, -1.0]);
/// ```
#[inline]
pub fn backward(
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
) {
    let out = dz.len();
    if out == 0 {
        return;
    }
    if let Some(dx) = dx {
        for (dxi, row) in dx.iter_mut().zip(w.chunks_exact(out)) {
            let mut s = 0.0f32;
            for (&wij, &dj) in row.iter().zip(dz) {
                s += wij * dj;
            }
            *dxi = s;
        }
    }
    for (&xi, grow) in x.iter().zip(gw.chunks_exact_mut(out)) {
        if xi == 0.0 {
            continue;
        }
        for (g, &dj) in grow.iter_mut().zip(dz) {
            *g += xi * dj;
        }
    }
    if let Some(gb) = gb {
        for (g, &dj) in gb.iter_mut().zip(dz) {
            *g += dj;
        }
    }
}

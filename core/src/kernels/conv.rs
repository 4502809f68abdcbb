//! N-dimensional convolution (1-D, 2-D, 3-D, channels last) over flat row-major slices.
//!
//! One kernel serves `Conv1D`, `Conv2D` and `Conv3D`, the typed layers and the models built
//! at run time alike: a [`ConvGeometry`] describes the spatial sizes, and a 1-D or 2-D
//! convolution is a 3-D one whose leading axes have size 1.
//!
//! # Layout (Keras, `channels_last`)
//! * input `x`: `(d, h, w, cin)` row-major (for 2-D `(h, w, cin)`, for 1-D `(w, cin)`);
//! * kernel `W`: `(kd, kh, kw, cin, cout)` row-major (Keras' `(k…, cin, cout)`);
//! * output `z`: `(od, oh, ow, cout)` row-major.
//!
//! The operation is a cross-correlation (the kernel is not flipped), as in Keras:
//!
//! `z[o, co] = Σ_{t, ci} x[o·s + t·dil − pad_before, ci] · W[t, ci, co] + b[co]`
//!
//! where `o` and `t` are spatial multi-indices and taps that fall into the padding are
//! skipped (they would add `0 · W`).
//!
//! # Padding and output sizes (Keras)
//! With the effective kernel size `k' = (k − 1)·dil + 1`:
//! * `valid`: `out = ⌊(n − k') / s⌋ + 1`, no padding;
//! * `same`: `out = ⌈n / s⌉`, `total = max((out − 1)·s + k' − n, 0)`,
//!   `pad_before = ⌊total / 2⌋`, `pad_after = total − pad_before` (the extra pad goes at the end).
//!
//! See [`conv_out`] and [`same_padding`]; both are `const fn`, so typed layers check their
//! output sizes at compile time.
//!
//! # Summation order (identical on every target)
//! The kernels walk the output positions in row-major order and, for each, the in-range taps
//! in row-major kernel order `(kd, kh, kw)` ([`ConvGeometry::for_each_tap`]):
//! * **forward**: `z[o, co]` starts at `+0.0` and adds `x[i, ci] · W[t, ci, co]` for each tap `t`
//!   in order and, within a tap, each `ci` in increasing order (the order of the rows of
//!   the `(k·cin, cout)` kernel matrix, as [`super::dense::forward`] for one patch); the bias
//!   is added last. Inputs equal to 0 (inactive ReLUs, padding of the data) are skipped, as in
//!   the dense kernel: they would add `±0`.
//! * **kernel gradient**: `gW[t, ci, co] += x[i, ci] · dz[o, co]` accumulated output position by
//!   output position, in order (zero inputs skipped);
//! * **bias gradient**: `gb[co] += dz[o, co]` for `o` in order;
//! * **input gradient**: `dx` is zeroed, then for each output position in order and each tap,
//!   `dx[i, ci] += Σ_co W[t, ci, co] · dz[o, co]`, the inner sum over `co` in increasing order.
//!
//! The innermost loops run over `cout` (forward, kernel gradient) and are contiguous, so the
//! host can vectorize them without changing any result (each output element still sums in the
//! order above). All slicing goes through `get`, so no input can make the kernels panic: a
//! slice of the wrong length makes them write zeros (forward), or skip the affected part.

use crate::error::{Error, Reason};

/// The largest number of spatial axes (Conv3D).
pub const MAX_SPATIAL_DIMS: usize = 3;

/// Keras' `padding` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Padding {
    /// No padding: `out = ⌊(n − k') / s⌋ + 1`.
    #[default]
    Valid,
    /// Zero padding so that `out = ⌈n / s⌉`, the extra pad at the end.
    Same,
}

impl Padding {
    /// The Keras string (`"valid"`, `"same"`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        }
    }
}

/// Effective kernel size `(k − 1)·dil + 1` (saturating).
const fn effective(k: usize, dilation: usize) -> usize {
    (k.saturating_sub(1))
        .saturating_mul(dilation)
        .saturating_add(1)
}

/// Output size of one spatial axis (Keras' formula; `0` when no window fits or a size is 0).
///
/// `valid`: `⌊(n − k') / s⌋ + 1` with `k' = (k − 1)·dil + 1`; `same`: `⌈n / s⌉`.
///
/// ```
/// use microfit_core::kernels::conv::{conv_out, Padding};
/// assert_eq!(conv_out(8, 3, 1, 1, Padding::Valid), 6);
/// assert_eq!(conv_out(7, 3, 2, 1, Padding::Valid), 3);
/// assert_eq!(conv_out(7, 3, 2, 1, Padding::Same), 4);
/// assert_eq!(conv_out(8, 3, 1, 2, Padding::Valid), 4); // dilated: k' = 5
/// assert_eq!(conv_out(2, 3, 1, 1, Padding::Valid), 0); // kernel larger than the input
/// ```
pub const fn conv_out(
    n: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> usize {
    if n == 0 || k == 0 || stride == 0 || dilation == 0 {
        return 0;
    }
    match padding {
        Padding::Valid => {
            let ke = effective(k, dilation);
            if n < ke { 0 } else { (n - ke) / stride + 1 }
        }
        Padding::Same => n.div_ceil(stride),
    }
}

/// `(pad_before, pad_after)` of one axis under `same` padding (Keras/TensorFlow: the extra pad
/// goes at the end).
///
/// `total = max((out − 1)·s + k' − n, 0)`, `before = ⌊total / 2⌋`, `after = total − before`.
///
/// ```
/// use microfit_core::kernels::conv::same_padding;
/// assert_eq!(same_padding(7, 3, 1, 1), (1, 1));
/// assert_eq!(same_padding(6, 3, 2, 1), (0, 1));
/// assert_eq!(same_padding(5, 2, 1, 1), (0, 1));
/// ```
pub const fn same_padding(n: usize, k: usize, stride: usize, dilation: usize) -> (usize, usize) {
    let out = conv_out(n, k, stride, dilation, Padding::Same);
    if out == 0 {
        return (0, 0);
    }
    let covered = (out - 1)
        .saturating_mul(stride)
        .saturating_add(effective(k, dilation));
    let total = covered.saturating_sub(n);
    let before = total / 2;
    (before, total - before)
}

/// The shape of one convolution (or pooling): per spatial axis the input size, kernel size,
/// stride, dilation, padding before and output size, plus the channel counts.
///
/// Axes are stored right-aligned in arrays of [`MAX_SPATIAL_DIMS`]: a 1-D convolution over
/// `w` is stored as `(1, 1, w)`, a 2-D one over `(h, w)` as `(1, h, w)`; the flat row-major
/// layout is the same. Build one with [`ConvGeometry::new`] or [`ConvGeometry::pool`], which
/// check every size (so `ConvGeometry` values are always consistent).
///
/// ```
/// use microfit_core::kernels::conv::{ConvGeometry, Padding};
/// // Keras Conv2D(2, (3, 2), strides=2, padding="same") on a (6, 5, 2) input:
/// let g = ConvGeometry::new(&[6, 5], &[3, 2], &[2, 2], &[1, 1], Padding::Same, 2, 2)?;
/// assert_eq!(g.output(), [1, 3, 3]);
/// assert_eq!(g.pads(1), (0, 1));
/// assert_eq!(g.pads(2), (0, 1));
/// assert_eq!((g.in_len(), g.out_len(), g.kernel_len()), (60, 18, 24));
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvGeometry {
    dims: usize,
    input: [usize; MAX_SPATIAL_DIMS],
    kernel: [usize; MAX_SPATIAL_DIMS],
    strides: [usize; MAX_SPATIAL_DIMS],
    dilation: [usize; MAX_SPATIAL_DIMS],
    pad_before: [usize; MAX_SPATIAL_DIMS],
    pad_after: [usize; MAX_SPATIAL_DIMS],
    output: [usize; MAX_SPATIAL_DIMS],
    in_channels: usize,
    filters: usize,
}

const fn bad(name: &'static str, reason: Reason) -> Error {
    Error::InvalidHyperparameter { name, reason }
}

/// `a · b`, or an error naming `what` on overflow.
const fn mul(a: usize, b: usize, what: &'static str) -> Result<usize, Error> {
    match a.checked_mul(b) {
        Some(v) => Ok(v),
        None => Err(bad(what, Reason::SizeOverflow)),
    }
}

impl ConvGeometry {
    /// A convolution over `input.len()` spatial axes (1 to 3).
    ///
    /// `input`, `kernel`, `strides` and `dilation` give one value per spatial axis.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] when the axis counts differ or are not 1 to 3, when a
    /// size, stride, dilation or channel count is 0, when a stride and a dilation above 1 are
    /// combined (Keras/TensorFlow reject it), when no window fits (`valid` with an effective
    /// kernel larger than the input), or when a size overflows `usize`.
    pub const fn new(
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: Padding,
        in_channels: usize,
        filters: usize,
    ) -> Result<Self, Error> {
        Self::build(
            input,
            kernel,
            strides,
            dilation,
            padding,
            (in_channels, filters),
            "kernel_size",
        )
    }

    /// [`ConvGeometry::new`], naming the kernel-size argument `kname` in errors.
    const fn build(
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: Padding,
        (in_channels, filters): (usize, usize),
        kname: &'static str,
    ) -> Result<Self, Error> {
        let n = input.len();
        if n == 0 || n > MAX_SPATIAL_DIMS {
            return Err(bad("input_shape", Reason::SpatialAxes));
        }
        if kernel.len() != n {
            return Err(bad(kname, Reason::OnePerAxis));
        }
        if strides.len() != n {
            return Err(bad("strides", Reason::OnePerAxis));
        }
        if dilation.len() != n {
            return Err(bad("dilation_rate", Reason::OnePerAxis));
        }
        if in_channels == 0 {
            return Err(bad("input_shape", Reason::NoChannels));
        }
        if filters == 0 {
            return Err(bad("filters", Reason::AtLeastOne));
        }
        let mut any_stride = false;
        let mut any_dilation = false;
        let mut a = 0;
        while a < n {
            if input[a] == 0 {
                return Err(bad("input_shape", Reason::EmptySpatial));
            }
            if kernel[a] == 0 {
                return Err(bad(kname, Reason::AtLeastOne));
            }
            if strides[a] == 0 {
                return Err(bad("strides", Reason::AtLeastOne));
            }
            if dilation[a] == 0 {
                return Err(bad("dilation_rate", Reason::AtLeastOne));
            }
            any_stride |= strides[a] > 1;
            any_dilation |= dilation[a] > 1;
            a += 1;
        }
        if any_stride && any_dilation {
            return Err(bad("dilation_rate", Reason::StridedDilation));
        }
        let mut g = ConvGeometry {
            dims: n,
            input: [1; MAX_SPATIAL_DIMS],
            kernel: [1; MAX_SPATIAL_DIMS],
            strides: [1; MAX_SPATIAL_DIMS],
            dilation: [1; MAX_SPATIAL_DIMS],
            pad_before: [0; MAX_SPATIAL_DIMS],
            pad_after: [0; MAX_SPATIAL_DIMS],
            output: [1; MAX_SPATIAL_DIMS],
            in_channels,
            filters,
        };
        let off = MAX_SPATIAL_DIMS - n;
        let mut a = 0;
        while a < n {
            let (nn, k, s, d) = (input[a], kernel[a], strides[a], dilation[a]);
            let out = conv_out(nn, k, s, d, padding);
            if out == 0 {
                return Err(bad(kname, Reason::KernelTooLarge));
            }
            let (before, after) = match padding {
                Padding::Valid => (0, 0),
                Padding::Same => same_padding(nn, k, s, d),
            };
            g.input[off + a] = nn;
            g.kernel[off + a] = k;
            g.strides[off + a] = s;
            g.dilation[off + a] = d;
            g.pad_before[off + a] = before;
            g.pad_after[off + a] = after;
            g.output[off + a] = out;
            a += 1;
        }
        // Every length the kernels use must fit in usize.
        let sp_in = match mul(g.input[0], g.input[1], "input_shape") {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let sp_in = match mul(sp_in, g.input[2], "input_shape") {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        if let Err(e) = mul(sp_in, in_channels, "input_shape") {
            return Err(e);
        }
        let taps = match mul(g.kernel[0], g.kernel[1], kname) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let taps = match mul(taps, g.kernel[2], kname) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let row = match mul(in_channels, filters, "filters") {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        if let Err(e) = mul(taps, row, kname) {
            return Err(e);
        }
        // output ≤ input on every axis, so this product cannot overflow.
        let sp_out = g.output[0] * g.output[1] * g.output[2];
        if let Err(e) = mul(sp_out, filters, "filters") {
            return Err(e);
        }
        Ok(g)
    }

    /// A pooling window over `input.len()` spatial axes with `channels` channels (no dilation;
    /// each output channel reads the same input channel).
    ///
    /// ```
    /// use microfit_core::kernels::conv::{ConvGeometry, Padding};
    /// // MaxPooling2D(2) on (6, 6, 8):
    /// let g = ConvGeometry::pool(&[6, 6], &[2, 2], &[2, 2], Padding::Valid, 8)?;
    /// assert_eq!(g.output(), [1, 3, 3]);
    /// assert_eq!(g.out_len(), 72);
    /// # Ok::<(), microfit_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`ConvGeometry::new`] (with `pool_size` in place of `kernel_size`).
    pub const fn pool(
        input: &[usize],
        pool_size: &[usize],
        strides: &[usize],
        padding: Padding,
        channels: usize,
    ) -> Result<Self, Error> {
        let ones = [1usize; MAX_SPATIAL_DIMS];
        let n = if input.len() <= MAX_SPATIAL_DIMS {
            input.len()
        } else {
            MAX_SPATIAL_DIMS
        };
        let (dil, _) = ones.split_at(n);
        Self::build(
            input,
            pool_size,
            strides,
            dil,
            padding,
            (channels, channels),
            "pool_size",
        )
    }

    /// Number of spatial axes (1, 2 or 3).
    pub const fn dims(&self) -> usize {
        self.dims
    }
    /// Spatial input sizes, right-aligned (`(1, 1, w)` for 1-D).
    pub const fn input(&self) -> [usize; MAX_SPATIAL_DIMS] {
        self.input
    }
    /// Kernel (window) sizes, right-aligned.
    pub const fn kernel(&self) -> [usize; MAX_SPATIAL_DIMS] {
        self.kernel
    }
    /// Strides, right-aligned.
    pub const fn strides(&self) -> [usize; MAX_SPATIAL_DIMS] {
        self.strides
    }
    /// Dilation rates, right-aligned.
    pub const fn dilation(&self) -> [usize; MAX_SPATIAL_DIMS] {
        self.dilation
    }
    /// Spatial output sizes, right-aligned.
    pub const fn output(&self) -> [usize; MAX_SPATIAL_DIMS] {
        self.output
    }
    /// `(pad_before, pad_after)` of stored axis `axis` (`0..3`, right-aligned; `(0, 0)` out of range).
    pub const fn pads(&self, axis: usize) -> (usize, usize) {
        if axis < MAX_SPATIAL_DIMS {
            (self.pad_before[axis], self.pad_after[axis])
        } else {
            (0, 0)
        }
    }
    /// Input channels.
    pub const fn in_channels(&self) -> usize {
        self.in_channels
    }
    /// Output channels (`filters`; equal to the input channels for pooling).
    pub const fn filters(&self) -> usize {
        self.filters
    }
    /// Number of spatial output positions.
    pub const fn positions(&self) -> usize {
        self.output[0] * self.output[1] * self.output[2]
    }
    /// Number of kernel taps (`kd·kh·kw`).
    pub const fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.kernel[2]
    }
    /// Input length `d·h·w·cin`.
    pub const fn in_len(&self) -> usize {
        self.input[0] * self.input[1] * self.input[2] * self.in_channels
    }
    /// Output length `od·oh·ow·filters`.
    pub const fn out_len(&self) -> usize {
        self.positions() * self.filters
    }
    /// Kernel length `kd·kh·kw·cin·filters`.
    pub const fn kernel_len(&self) -> usize {
        self.taps() * self.in_channels * self.filters
    }

    /// The in-range taps of output position `(od, oh, ow)`.
    #[inline(always)]
    fn window(&self, o: [usize; MAX_SPATIAL_DIMS]) -> Window {
        let mut w = Window {
            first_in: [0; MAX_SPATIAL_DIMS],
            first_tap: [0; MAX_SPATIAL_DIMS],
            count: [0; MAX_SPATIAL_DIMS],
        };
        for a in 0..MAX_SPATIAL_DIMS {
            // Input coordinate of tap t: o·s + t·dil − pad. Keep it in [0, n).
            let start = o[a] * self.strides[a];
            let (p, d, n, k) = (
                self.pad_before[a],
                self.dilation[a],
                self.input[a],
                self.kernel[a],
            );
            // (A dilation of 1, the common case, needs no division.)
            let up = |v: usize| if d == 1 { v } else { v.div_ceil(d) };
            let lo = if start >= p { 0 } else { up(p - start) };
            let lim = n.saturating_add(p);
            let hi = if start >= lim { 0 } else { up(lim - start) };
            let hi = if hi < k { hi } else { k };
            if lo < hi {
                w.first_tap[a] = lo;
                w.first_in[a] = start + lo * d - p;
                w.count[a] = hi - lo;
            }
        }
        w
    }

    /// Calls `f(o, t, i)` for every output position `o` (flat spatial index, row-major) and,
    /// for each, every tap `t` (flat kernel-position index, row-major `(kd, kh, kw)`) that
    /// falls inside the input, with `i` the flat spatial index of the input position it reads.
    /// This visiting order *is* the summation order of the kernels.
    ///
    /// ```
    /// use microfit_core::kernels::conv::{ConvGeometry, Padding};
    /// // 1-D, n = 3, k = 3, same: out 3, pad (1, 1).
    /// let g = ConvGeometry::new(&[3], &[3], &[1], &[1], Padding::Same, 1, 1)?;
    /// let mut seen = [[usize::MAX; 3]; 7];
    /// let mut n = 0;
    /// g.for_each_tap(|o, t, i| { seen[n] = [o, t, i]; n += 1; });
    /// assert_eq!(n, 7);
    /// assert_eq!(seen[0], [0, 1, 0]); // output 0: taps 1 and 2 (tap 0 reads the padding)
    /// assert_eq!(seen[2], [1, 0, 0]);
    /// assert_eq!(seen[6], [2, 1, 2]);
    /// # Ok::<(), microfit_core::Error>(())
    /// ```
    #[inline(always)]
    pub fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        self.for_each_output(|o, w| w.for_each(self, |t, i| f(o, t, i)));
    }

    /// Calls `f(o, window)` for every output position in row-major order.
    #[inline(always)]
    pub(crate) fn for_each_output(&self, mut f: impl FnMut(usize, &Window)) {
        let [o0, o1, o2] = self.output;
        let mut o = 0;
        for a in 0..o0 {
            for b in 0..o1 {
                for c in 0..o2 {
                    let w = self.window([a, b, c]);
                    f(o, &w);
                    o += 1;
                }
            }
        }
    }
}

/// The in-range taps of one output position, per axis: first kernel index, first input
/// coordinate, and how many.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    first_in: [usize; MAX_SPATIAL_DIMS],
    first_tap: [usize; MAX_SPATIAL_DIMS],
    count: [usize; MAX_SPATIAL_DIMS],
}

impl Window {
    /// Number of in-range taps.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.count[0] * self.count[1] * self.count[2]
    }

    /// `f(t, i)` for each in-range tap in row-major kernel order.
    #[inline(always)]
    pub(crate) fn for_each(&self, g: &ConvGeometry, mut f: impl FnMut(usize, usize)) {
        let [k1, k2] = [g.kernel[1], g.kernel[2]];
        let [n1, n2] = [g.input[1], g.input[2]];
        let d = g.dilation;
        for a in 0..self.count[0] {
            let ta = self.first_tap[0] + a;
            let ia = self.first_in[0] + a * d[0];
            for b in 0..self.count[1] {
                let tb = ta * k1 + self.first_tap[1] + b;
                let ib = ia * n1 + self.first_in[1] + b * d[1];
                for c in 0..self.count[2] {
                    f(
                        tb * k2 + self.first_tap[2] + c,
                        ib * n2 + self.first_in[2] + c * d[2],
                    );
                }
            }
        }
    }
}

/// Rows of the patch matrix (im2col) of one sample: row `r` is output position `o0 + r`, its
/// `taps() · in_channels` values ordered `(tap, channel)` like the rows of the kernel seen as a
/// `(taps · cin) × filters` matrix; taps outside the input (padding) are `+0`. With it, a
/// tile's convolution is one matrix product whose sums run over the patch in the order of
/// [`forward`] (see the [module docs](self)): out-of-range taps add `0 · w`, which changes no
/// sum when the weights are finite — the products' own condition
/// ([`super::gemm`]; otherwise they fall back to the per-sample kernels, which skip zeros).
///
/// `out.len()` must be at least `rows · taps() · in_channels` and `x.len() = in_len()`;
/// otherwise nothing is written.
///
/// ```
/// use microfit_core::kernels::conv::{patches, ConvGeometry, Padding};
/// // 1-D, n = 3, k = 3, same: output 0 reads the padding, x0, x1.
/// let g = ConvGeometry::new(&[3], &[3], &[1], &[1], Padding::Same, 1, 1)?;
/// let mut p = [9.0; 6];
/// patches(&g, &[1.0, 2.0, 3.0], 0, 2, &mut p);
/// assert_eq!(p, [0.0, 1.0, 2.0, 1.0, 2.0, 3.0]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[inline]
pub fn patches(g: &ConvGeometry, x: &[f32], o0: usize, rows: usize, out: &mut [f32]) {
    if x.len() == g.in_len() {
        tile_patches(g, x, o0, rows, out);
    }
}

/// Runs `$body` with the const `$L` set to a short run length `$len` (one monomorphised walk
/// per length: a run of a known length is a few moves, not a loop — model C's 3×3 kernel on one
/// channel has runs of 3), or to `0` (the length known at run time only) for any other.
macro_rules! by_run_len {
    ($len:expr, $L:ident => $body:expr) => {
        by_run_len!(@arms $len, $L => $body; 1 2 3 4 5 6 7 8 9 12 16)
    };
    (@arms $len:expr, $L:ident => $body:expr; $($l:literal)*) => {
        match $len {
            $($l => {
                const $L: usize = $l;
                $body
            })*
            _ => {
                const $L: usize = 0;
                $body
            }
        }
    };
}

/// [`patches`] over a tile of samples: `x` holds whole samples, and rows `r0..r0 + rows` of
/// the tile's patch matrix (row `s · positions + o` is sample `s`, output position `o`) go to
/// `out` from its start. Nothing is written when `out` is too short or `x` is not whole
/// samples.
pub fn tile_patches(g: &ConvGeometry, x: &[f32], r0: usize, rows: usize, out: &mut [f32]) {
    let (width, il) = (g.taps() * g.in_channels, g.in_len());
    let Some(out) = out.get_mut(..rows.saturating_mul(width)) else {
        return;
    };
    if width == 0 || il == 0 || g.positions() == 0 || !x.len().is_multiple_of(il) {
        return;
    }
    let shape = RunShape::new(g);
    by_run_len!(shape.len, L => for_samples(g, r0, rows, |s, o, cnt, at| {
        if let (Some(xs), Some(out)) = (x.get(s * il..(s + 1) * il), out.get_mut(at * width..)) {
            gather::<L>(g, &shape, xs, o, cnt, out);
        }
    }));
}

/// Splits rows `r0..r0 + rows` of a tile's patch matrix by sample: `f(sample, first position,
/// count, first row − r0)`.
#[inline(always)]
fn for_samples(
    g: &ConvGeometry,
    r0: usize,
    rows: usize,
    mut f: impl FnMut(usize, usize, usize, usize),
) {
    let p = g.positions();
    if p == 0 {
        return;
    }
    let mut r = r0;
    while r < r0 + rows {
        let (s, o) = (r / p, r % p);
        let cnt = (p - o).min(r0 + rows - r);
        f(s, o, cnt, r - r0);
        r += cnt;
    }
}

/// [`patches`] with runs of `L` floats (`0`: of `shape.len`, known at run time).
#[inline(always)]
fn gather<const L: usize>(
    g: &ConvGeometry,
    shape: &RunShape,
    x: &[f32],
    o0: usize,
    rows: usize,
    out: &mut [f32],
) {
    let len = if L == 0 { shape.len } else { L };
    let (width, cin) = (g.taps() * g.in_channels, g.in_channels);
    let (offs, table) = shape.table();
    if table && g.all_inside() {
        return gather_strips::<L>(g, (offs, len), x, o0, rows, out);
    }
    g.for_rows(o0, rows, |r, base| {
        let Some(row) = out.get_mut(r * width..(r + 1) * width) else {
            return;
        };
        match base {
            Some(base) if table => {
                let first = base * cin;
                for (d, &off) in row.chunks_exact_mut(len).zip(offs) {
                    if let Some(src) = x.get(first + off..).and_then(|t| t.get(..len)) {
                        copy_run::<L>(d, src);
                    }
                }
            }
            Some(base) => {
                let mut runs = row.chunks_exact_mut(len);
                shape.for_each(base * cin, |i| {
                    if let (Some(d), Some(src)) = (runs.next(), x.get(i..i + len)) {
                        copy_run::<L>(d, src);
                    }
                });
            }
            None => {
                // A window cut by the padding: zeros for the missing taps.
                row.fill(0.0);
                g.for_runs(o0 + r, |tap, input, len| {
                    if let (Some(d), Some(src)) = (
                        row.get_mut(tap * cin..),
                        x.get(input * cin..(input + len) * cin),
                    ) {
                        for (dv, &sv) in d.iter_mut().zip(src) {
                            *dv = sv;
                        }
                    }
                });
            }
        }
    });
}

/// [`gather`] when no window is cut by the padding, a strip of positions along the last
/// output axis at a time and, within a strip, run after run: the run `t` of consecutive
/// positions reads the input `stride · cin` floats further each time, so the inner loop is
/// one fixed-size move and two additions (no per-position index arithmetic). Each patch row
/// receives exactly [`gather`]'s values.
#[inline(always)]
fn gather_strips<const L: usize>(
    g: &ConvGeometry,
    (offs, len): (&[usize], usize),
    x: &[f32],
    o0: usize,
    rows: usize,
    out: &mut [f32],
) {
    let (width, cin) = (g.taps() * g.in_channels, g.in_channels);
    let [o1, o2] = [g.output[1], g.output[2]];
    let [n1, n2] = [g.input[1], g.input[2]];
    let s = g.strides;
    if o1 == 0 || o2 == 0 || width == 0 {
        return;
    }
    let step = s[2] * cin;
    // The position `o0 + r` as `(o0, o1, o2)`: divided once, then counted (no division per
    // strip).
    let mut at = [o0 / (o1 * o2), (o0 / o2) % o1, o0 % o2];
    let mut r = 0;
    while r < rows {
        let cnt = (o2 - at[2]).min(rows - r);
        // No padding before any window (all are inside): the first tap's input index.
        let first = ((at[0] * s[0] * n1 + at[1] * s[1]) * n2 + at[2] * s[2]) * cin;
        let Some(strip) = out.get_mut(r * width..(r + cnt) * width) else {
            return;
        };
        for (t, &off) in offs.iter().enumerate() {
            let mut src = first + off;
            for row in strip.chunks_exact_mut(width) {
                if let (Some(d), Some(v)) = (
                    row.get_mut(t * len..(t + 1) * len),
                    x.get(src..).and_then(|v| v.get(..len)),
                ) {
                    copy_run::<L>(d, v);
                }
                src += step;
            }
        }
        r += cnt;
        at[2] = 0;
        at[1] += 1;
        if at[1] == o1 {
            at[1] = 0;
            at[0] += 1;
        }
    }
}

/// `d = src` for runs of `L` floats (`0`: any length), element by element: runs are a few
/// values long, a known length is a few moves (no `memcpy` call).
#[inline(always)]
fn copy_run<const L: usize>(d: &mut [f32], src: &[f32]) {
    if L > 0 {
        if let (Ok(d), Ok(src)) = (<&mut [f32; L]>::try_from(d), <&[f32; L]>::try_from(src)) {
            *d = *src;
        }
    } else {
        for (dv, &sv) in d.iter_mut().zip(src) {
            *dv = sv;
        }
    }
}

/// `d += src` for runs of `L` floats (`0`: any length), element by element.
#[inline(always)]
fn add_run<const L: usize>(d: &mut [f32], src: &[f32]) {
    if L > 0 {
        if let (Ok(d), Ok(src)) = (<&mut [f32; L]>::try_from(d), <&[f32; L]>::try_from(src)) {
            for (dv, &sv) in d.iter_mut().zip(src) {
                *dv += sv;
            }
        }
    } else {
        for (dv, &sv) in d.iter_mut().zip(src) {
            *dv += sv;
        }
    }
}

/// Adds rows of a patch-matrix gradient (`∂L/∂patches`, laid out as in [`patches`]) into
/// one sample's input gradient `dx`, output position after output position and, within one,
/// tap after tap in row-major kernel order: the order in which [`backward`] adds each tap's
/// `Σ_co W[t, ci, co] · dz[o, co]` (a tile's `dz · Wᵀ`). Padding taps are dropped.
///
/// ```
/// use microfit_core::kernels::conv::{add_patch_grads, ConvGeometry, Padding};
/// let g = ConvGeometry::new(&[3], &[3], &[1], &[1], Padding::Same, 1, 1)?;
/// let mut dx = [0.0; 3];
/// add_patch_grads(&g, &[9.0, 1.0, 2.0, 1.0, 2.0, 3.0], 0, 2, &mut dx);
/// assert_eq!(dx, [2.0, 4.0, 3.0]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[inline]
pub fn add_patch_grads(g: &ConvGeometry, dp: &[f32], o0: usize, rows: usize, dx: &mut [f32]) {
    if dx.len() == g.in_len() {
        tile_add_patch_grads(g, dp, o0, rows, dx);
    }
}

/// [`add_patch_grads`] over a tile of samples: rows `r0..r0 + rows` of the tile's patch-matrix
/// gradient (`dp` from its start; row `s · positions + o` is sample `s`, position `o`) added
/// into the input gradients `dx` of the tile's samples. Nothing is done when `dp` is too
/// short or `dx` is not whole samples.
pub fn tile_add_patch_grads(g: &ConvGeometry, dp: &[f32], r0: usize, rows: usize, dx: &mut [f32]) {
    let (width, il) = (g.taps() * g.in_channels, g.in_len());
    if width == 0
        || il == 0
        || !dx.len().is_multiple_of(il)
        || dp.len() < rows.saturating_mul(width)
    {
        return;
    }
    let shape = RunShape::new(g);
    by_run_len!(shape.len, L => for_samples(g, r0, rows, |s, o, cnt, at| {
        if let (Some(d), Some(src)) = (dx.get_mut(s * il..(s + 1) * il), dp.get(at * width..)) {
            scatter::<L>(g, &shape, src, o, cnt, d);
        }
    }));
}

/// [`add_patch_grads`] with runs of `L` floats (`0`: of `shape.len`, known at run time).
#[inline(always)]
fn scatter<const L: usize>(
    g: &ConvGeometry,
    shape: &RunShape,
    dp: &[f32],
    o0: usize,
    rows: usize,
    dx: &mut [f32],
) {
    let len = if L == 0 { shape.len } else { L };
    let (width, cin) = (g.taps() * g.in_channels, g.in_channels);
    let (offs, table) = shape.table();
    g.for_rows(o0, rows, |r, base| {
        let Some(row) = dp.get(r * width..(r + 1) * width) else {
            return;
        };
        // Within one position the taps read distinct inputs, so the elements of a run may
        // be added in any order; positions and taps stay in order.
        let mut add = |src: &[f32], i: usize| {
            if let Some(d) = dx.get_mut(i..).and_then(|t| t.get_mut(..src.len())) {
                add_run::<L>(d, src);
            }
        };
        match base {
            Some(base) if table => {
                let first = base * cin;
                for (src, &off) in row.chunks_exact(len).zip(offs) {
                    add(src, first + off);
                }
            }
            Some(base) => {
                let mut runs = row.chunks_exact(len);
                shape.for_each(base * cin, |i| {
                    if let Some(src) = runs.next() {
                        add(src, i);
                    }
                });
            }
            None => g.for_runs(o0 + r, |tap, input, n| {
                if let (Some(src), Some(d)) = (
                    row.get(tap * cin..(tap + n) * cin),
                    dx.get_mut(input * cin..(input + n) * cin),
                ) {
                    add_run::<0>(d, src);
                }
            }),
        }
    });
}

/// Runs of one window kept in a table (a 7×7 kernel has 7 runs, a dilated 3×3×3 one 27).
const RUN_TABLE: usize = 32;

/// The runs of a window that lies entirely inside the input, as offsets (in floats) from the
/// input offset of its first tap: `k0 · k1 · kc` runs of `len` floats each, in row-major kernel
/// order. Along the last axis a run holds the whole kernel row (`k2 · cin` floats) when its
/// dilation is 1, else one tap (`cin` floats, `kc = k2` runs `step` floats apart).
#[derive(Clone, Copy)]
struct RunShape {
    /// The offsets of the runs, when there are at most [`RUN_TABLE`].
    offs: [usize; RUN_TABLE],
    /// How many runs.
    runs: usize,
    k0: usize,
    k1: usize,
    kc: usize,
    off0: usize,
    off1: usize,
    step: usize,
    len: usize,
}

impl RunShape {
    fn new(g: &ConvGeometry) -> Self {
        let cin = g.in_channels;
        let [n1, n2] = [g.input[1], g.input[2]];
        let [k0, k1, k2] = g.kernel;
        let d = g.dilation;
        let (kc, len, step) = if d[2] == 1 {
            (1, k2 * cin, 0)
        } else {
            (k2, cin, d[2] * cin)
        };
        let mut shape = RunShape {
            offs: [0; RUN_TABLE],
            runs: k0 * k1 * kc,
            k0,
            k1,
            kc,
            off0: d[0] * n1 * n2 * cin,
            off1: d[1] * n2 * cin,
            step,
            len,
        };
        if shape.runs <= RUN_TABLE {
            // `for_each`'s offsets, in its order.
            let mut n = 0;
            for a in 0..k0 {
                for b in 0..k1 {
                    for c in 0..kc {
                        if let Some(o) = shape.offs.get_mut(n) {
                            *o = a * shape.off0 + b * shape.off1 + c * step;
                        }
                        n += 1;
                    }
                }
            }
        }
        shape
    }

    /// The run offsets, and whether they are all there (else walk [`RunShape::for_each`]).
    #[inline(always)]
    fn table(&self) -> (&[usize], bool) {
        match self.offs.get(..self.runs) {
            Some(t) => (t, true),
            None => (&[], false),
        }
    }

    /// `f(input offset)` for each run, in order, from the offset `first` of the first tap.
    #[inline(always)]
    fn for_each(&self, first: usize, mut f: impl FnMut(usize)) {
        let mut i0 = first;
        for _ in 0..self.k0 {
            let mut i1 = i0;
            for _ in 0..self.k1 {
                let mut i2 = i1;
                for _ in 0..self.kc {
                    f(i2);
                    i2 += self.step;
                }
                i1 += self.off1;
            }
            i0 += self.off0;
        }
    }
}

impl ConvGeometry {
    /// The output indices `lo..hi` of axis `a` whose window lies entirely inside the input
    /// (no tap in the padding); `lo ≥ hi` when there are none.
    #[inline(always)]
    fn covered(&self, a: usize) -> (usize, usize) {
        let (n, p, s) = (self.input[a], self.pad_before[a], self.strides[a]);
        let ke = effective(self.kernel[a], self.dilation[a]);
        // o·s ≥ p and o·s − p + k' ≤ n.
        let lo = p.div_ceil(s);
        let hi = match (n + p).checked_sub(ke) {
            Some(room) => (room / s + 1).min(self.output[a]),
            None => 0,
        };
        (lo, hi)
    }

    /// True when no window of any output position is cut by the padding (then no axis has
    /// padding before it).
    #[inline(always)]
    fn all_inside(&self) -> bool {
        (0..MAX_SPATIAL_DIMS).all(|a| self.covered(a) == (0, self.output[a]))
    }

    /// For output positions `o0..o0 + rows` in order, `f(r, Some(first))` when the window of
    /// position `o0 + r` lies entirely inside the input, `first` the flat spatial input index
    /// of its first tap, and `f(r, None)` when the padding cuts it.
    #[inline(always)]
    fn for_rows(&self, o0: usize, rows: usize, mut f: impl FnMut(usize, Option<usize>)) {
        let [o1, o2] = [self.output[1], self.output[2]];
        if o1 == 0 || o2 == 0 {
            return;
        }
        let cov = [self.covered(0), self.covered(1), self.covered(2)];
        let inside = |a: usize, v: usize| v >= cov[a].0 && v < cov[a].1;
        let [n1, n2] = [self.input[1], self.input[2]];
        let (s, p) = (self.strides, self.pad_before);
        let mut at = [o0 / (o1 * o2), (o0 / o2) % o1, o0 % o2];
        for r in 0..rows {
            let first = (inside(0, at[0]) && inside(1, at[1]) && inside(2, at[2])).then(|| {
                let i = [0, 1, 2].map(|a| at[a] * s[a] - p[a]);
                (i[0] * n1 + i[1]) * n2 + i[2]
            });
            f(r, first);
            at[2] += 1;
            if at[2] == o2 {
                at[2] = 0;
                at[1] += 1;
                if at[1] == o1 {
                    at[1] = 0;
                    at[0] += 1;
                }
            }
        }
    }
}

impl ConvGeometry {
    /// The in-range taps of output position `o` (flat, row-major) as runs along the last
    /// kernel axis, in row-major kernel order: `f(tap, input, len)` where the run's taps
    /// `tap + c` read inputs `input + c` (`c < len`). With a dilation above 1 on the last axis
    /// every run is one tap long. Taken in order and tap by tap, the runs are exactly
    /// [`ConvGeometry::for_each_tap`]'s visits of position `o`.
    #[inline]
    fn for_runs(&self, o: usize, mut f: impl FnMut(usize, usize, usize)) {
        let [o1, o2] = [self.output[1], self.output[2]];
        if o1 == 0 || o2 == 0 {
            return;
        }
        let w = self.window([o / (o1 * o2), (o / o2) % o1, o % o2]);
        let [k1, k2] = [self.kernel[1], self.kernel[2]];
        let [n1, n2] = [self.input[1], self.input[2]];
        let d = self.dilation;
        for a in 0..w.count[0] {
            let ta = w.first_tap[0] + a;
            let ia = w.first_in[0] + a * d[0];
            for b in 0..w.count[1] {
                let tb = ta * k1 + w.first_tap[1] + b;
                let ib = ia * n1 + w.first_in[1] + b * d[1];
                let (t0, i0) = (tb * k2 + w.first_tap[2], ib * n2 + w.first_in[2]);
                if d[2] == 1 {
                    f(t0, i0, w.count[2]);
                } else {
                    for c in 0..w.count[2] {
                        f(t0 + c, i0 + c * d[2], 1);
                    }
                }
            }
        }
    }
}

/// Forward pass of one sample: `z = conv(x, W) (+ b)`.
///
/// `x.len() = g.in_len()`, `kernel.len() = g.kernel_len()`, `z.len() = g.out_len()`,
/// `bias.len() = g.filters()`. Summation order in the [module docs](self). On a length
/// mismatch `z` is left all zeros.
///
/// ```
/// use microfit_core::kernels::conv::{forward, ConvGeometry, Padding};
/// // 1-D, one channel in and out, kernel [1, 2], valid: z_o = x_o + 2 x_{o+1} + b.
/// let g = ConvGeometry::new(&[3], &[2], &[1], &[1], Padding::Valid, 1, 1)?;
/// let mut z = [0.0; 2];
/// forward(&g, &[1.0, 2.0, 3.0], &[1.0, 2.0], Some(&[0.5]), &mut z);
/// assert_eq!(z, [5.5, 8.5]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[inline]
pub fn forward(g: &ConvGeometry, x: &[f32], kernel: &[f32], bias: Option<&[f32]>, z: &mut [f32]) {
    z.fill(0.0);
    let (cin, cout) = (g.in_channels, g.filters);
    if cin == 0
        || cout == 0
        || x.len() != g.in_len()
        || kernel.len() != g.kernel_len()
        || z.len() != g.out_len()
    {
        return;
    }
    let row = cin * cout;
    g.for_each_tap(|o, t, i| {
        let (Some(zo), Some(xs), Some(ks)) = (
            z.get_mut(o * cout..(o + 1) * cout),
            x.get(i * cin..(i + 1) * cin),
            kernel.get(t * row..(t + 1) * row),
        ) else {
            return;
        };
        for (&xv, wrow) in xs.iter().zip(ks.chunks_exact(cout)) {
            if xv == 0.0 {
                continue;
            }
            for (zj, &w) in zo.iter_mut().zip(wrow) {
                *zj += xv * w;
            }
        }
    });
    if let Some(b) = bias {
        for zo in z.chunks_exact_mut(cout) {
            for (zj, &bj) in zo.iter_mut().zip(b) {
                *zj += bj;
            }
        }
    }
}

/// Backward pass of one sample from `dz = ∂L/∂z`: accumulates `gW += ∂L/∂W` and
/// `gb += ∂L/∂b`, and **writes** `dx = ∂L/∂x` when given.
///
/// The kernel gradient needs `x`; when `x.len() != g.in_len()` (e.g. the empty input of an
/// evaluation pass) it is skipped, the bias and input gradients are still computed.
/// Summation order in the [module docs](self).
///
/// ```
/// use microfit_core::kernels::conv::{backward, ConvGeometry, Padding};
/// let g = ConvGeometry::new(&[3], &[2], &[1], &[1], Padding::Valid, 1, 1)?;
/// let (mut gk, mut gb, mut dx) = ([0.0; 2], [0.0; 1], [9.0; 3]);
/// backward(&g, &[1.0, 2.0, 3.0], &[1.0, 2.0], &[1.0, -1.0], &mut gk, Some(&mut gb), Some(&mut dx));
/// assert_eq!(gk, [1.0 - 2.0, 2.0 - 3.0]);
/// assert_eq!(gb, [0.0]);
/// assert_eq!(dx, [1.0, 2.0 - 1.0, -2.0]);
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[inline]
pub fn backward(
    g: &ConvGeometry,
    x: &[f32],
    kernel: &[f32],
    dz: &[f32],
    gk: &mut [f32],
    gb: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
) {
    if let Some(dx) = dx.as_deref_mut() {
        dx.fill(0.0);
    }
    let (cin, cout) = (g.in_channels, g.filters);
    if cin == 0 || cout == 0 || dz.len() != g.out_len() || kernel.len() != g.kernel_len() {
        return;
    }
    let with_gk = x.len() == g.in_len() && gk.len() == g.kernel_len();
    let row = cin * cout;
    g.for_each_tap(|o, t, i| {
        let (Some(dzo), Some(ks)) = (
            dz.get(o * cout..(o + 1) * cout),
            kernel.get(t * row..(t + 1) * row),
        ) else {
            return;
        };
        if with_gk
            && let (Some(xs), Some(gks)) = (
                x.get(i * cin..(i + 1) * cin),
                gk.get_mut(t * row..(t + 1) * row),
            )
        {
            for (&xv, grow) in xs.iter().zip(gks.chunks_exact_mut(cout)) {
                if xv == 0.0 {
                    continue;
                }
                for (gj, &dj) in grow.iter_mut().zip(dzo) {
                    *gj += xv * dj;
                }
            }
        }
        if let Some(dxs) = dx
            .as_deref_mut()
            .and_then(|dx| dx.get_mut(i * cin..(i + 1) * cin))
        {
            for (dxv, wrow) in dxs.iter_mut().zip(ks.chunks_exact(cout)) {
                let mut s = 0.0f32;
                for (&w, &dj) in wrow.iter().zip(dzo) {
                    s += w * dj;
                }
                *dxv += s;
            }
        }
    });
    if let Some(gb) = gb {
        for dzo in dz.chunks_exact(cout) {
            for (gj, &dj) in gb.iter_mut().zip(dzo) {
                *gj += dj;
            }
        }
    }
}

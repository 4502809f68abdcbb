//! `Conv1D`, `Conv2D`, `Conv3D`: Keras convolutions (channels last) with the same API as
//! [`Dense`](super::dense::Dense): activation, `use_bias`, `kernel_regularizer`,
//! `bias_regularizer`, `activity_regularizer`, initializers.
//!
//! `y = activation(conv(x, W) + b)`, a cross-correlation with kernel layout
//! `(k…, cin, filters)`; the math is [`crate::kernels::conv`], shared with models built at run
//! time through [`forward`], [`backward`] and [`weight_penalties`] below.
//!
//! # Shapes in the type
//! Every size is a const generic, in this order: the input (`H, W, CIN`), Keras' arguments
//! (`FILTERS`, kernel size `KH, KW`), the output (`OH, OW`), then the padding marker
//! ([`Valid`] or [`Same`]), the strides and the dilation rates (defaults: `Valid`, 1, 1).
//! On stable Rust a type cannot compute `OH` from `H`, so **the caller writes the output size**
//! and a `const` assertion checks it against [`conv_out`]: a wrong size fails `cargo build`
//! (not `cargo check`: it is a post-monomorphization error) with a message that names the
//! expected size, e.g.
//!
//! ```text
//! error[E0080]: evaluation panicked: Conv2D: output axis 0 must be 6 (input 8, kernel 3,
//!               stride 1, dilation 1, padding valid), but the type says 7
//! ```
//!
//! The output size can also be written as a const expression: `{ conv_out(8, 3, 1, 1, Padding::Valid) }`.
//!
//! ```
//! use microfit_core::prelude::*;
//! // Keras: Conv2D(8, 3, activation="relu", kernel_regularizer=L2(1e-4)) on 8×8×1.
//! type C = Conv2D<8, 8, 1, 8, 3, 3, 6, 6>;
//! let c = C::new(Activation::Relu)
//!     .kernel_regularizer(Reg::l2(1e-4))
//!     .bias_regularizer(Reg::l1(1e-5))
//!     .activity_regularizer(Reg::l2(1e-6));
//! assert_eq!(C::PARAMS, 3 * 3 * 1 * 8 + 8);
//! assert_eq!(C::CACHE_FLOATS, 6 * 6 * 8);
//! // Strided "same" convolution: 7×5 → ⌈7/2⌉×⌈5/2⌉.
//! type S = Conv2D<7, 5, 2, 4, 3, 3, 4, 3, Same, 2, 2>;
//! assert_eq!(S::GEOMETRY.pads(1), (1, 1));
//! # let _ = c;
//! ```
//!
//! # Memory
//! A conv layer keeps, per sample, only its pre-activation `z` ([`Conv2D::CACHE_FLOATS`]
//! floats, the output's size: backprop needs it for leaky ReLU, the fused softmax loss and as
//! scratch for the activity gradient). Its input and output are held once by the enclosing
//! model; there is no im2col buffer. The weights are [`Conv2D::PARAMS`] floats (kernel
//! `KH·KW·CIN·FILTERS`, bias `FILTERS`); gradients and each optimizer slot are the same size.
//!
//! # Semantics notes
//! * The activity regularizer sees the whole output `(…, filters)` of a sample; the training
//!   step divides it by the batch size only (not by the number of positions), as Keras does.
//! * `softmax` acts over the channels of each position (Keras' last axis).
//! * As the last layer of a model, the loss sees the flattened output: mean squared/absolute
//!   errors average over every element as Keras does; crossentropies, which Keras computes
//!   per position, are not per position here.
//! * Keras rejects `OrthogonalRegularizer` on conv kernels (rank > 2); here it would see the
//!   `(k·cin, filters)` matrix. The run-time model rejects it like Keras.

use core::marker::PhantomData;

use super::dense::{DenseConfig, WeightedBackward, WeightedForward, output_backward};
use super::{BackwardCtx, ForwardCtx, Layer, LayerInfo, LossIo, Penalties, WeightedCache};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::init::Initializer;
use crate::kernels;
pub use crate::kernels::conv::{ConvGeometry, Padding, conv_out, same_padding};
use crate::params::{Params, ZeroParams};
use crate::regularizer::{Reg, Regularizer};
use crate::rng::Rng;
use crate::tensor::Tensor;

// ---------------------------------------------------------------------------------------------
// Padding markers and the compile-time geometry check
// ---------------------------------------------------------------------------------------------

mod sealed {
    pub trait Sealed {}
}

/// Padding as a type, for the const-generic layers: [`Valid`] or [`Same`].
pub trait PaddingMode: sealed::Sealed {
    /// The padding.
    const PADDING: Padding;
}

/// Keras `padding="valid"` (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Valid;

/// Keras `padding="same"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Same;

impl sealed::Sealed for Valid {}
impl sealed::Sealed for Same {}
impl PaddingMode for Valid {
    const PADDING: Padding = Padding::Valid;
}
impl PaddingMode for Same {
    const PADDING: Padding = Padding::Same;
}

/// A message built in a `const` context (there is no `format!` there).
pub(crate) struct ConstMsg {
    buf: [u8; 256],
    len: usize,
}

impl ConstMsg {
    pub(crate) const fn new() -> Self {
        ConstMsg {
            buf: [0; 256],
            len: 0,
        }
    }
    pub(crate) const fn str(mut self, s: &str) -> Self {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && self.len < self.buf.len() {
            self.buf[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
        self
    }
    pub(crate) const fn num(mut self, n: usize) -> Self {
        let mut digits = [0u8; 20];
        let mut k = 0;
        let mut v = n;
        loop {
            digits[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        while k > 0 && self.len < self.buf.len() {
            k -= 1;
            self.buf[self.len] = digits[k];
            self.len += 1;
        }
        self
    }
    pub(crate) const fn panic(&self) -> ! {
        let (head, _) = self.buf.split_at(self.len);
        match core::str::from_utf8(head) {
            Ok(s) => panic!("{}", s),
            Err(_) => panic!("invalid layer shape"),
        }
    }
}

/// A typed convolution's or pooling's shape as its type declares it, for [`checked_geometry`]:
/// one value per spatial axis for `input` … `dilation` and `declared` (the output sizes the type
/// says).
#[derive(Debug, Clone, Copy)]
pub struct Declared<'a> {
    /// The layer's name in messages (`"Conv2D"`).
    pub layer: &'static str,
    /// Input sizes.
    pub input: &'a [usize],
    /// Kernel (or window) sizes.
    pub kernel: &'a [usize],
    /// Strides.
    pub strides: &'a [usize],
    /// Dilation rates.
    pub dilation: &'a [usize],
    /// Padding.
    pub padding: Padding,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (the input's for pooling).
    pub filters: usize,
    /// The output sizes the type declares.
    pub declared: &'a [usize],
    /// A pooling window rather than a convolution.
    pub pool: bool,
}

/// The geometry of a typed conv or pooling layer, checked at compile time.
///
/// For every spatial axis `a`, `declared[a]` must equal
/// `conv_out(input[a], kernel[a], strides[a], dilation[a], padding)`; otherwise this panics
/// — in a `const`, i.e. at build time — with a message naming `layer`, the axis and the
/// expected size. Any other invalid value (zero sizes, a kernel larger than a `valid` input,
/// strides and dilation both above 1) panics with the reason.
///
/// ```
/// use microfit_core::layer::conv::{checked_geometry, Declared, Padding};
/// const G: microfit_core::kernels::conv::ConvGeometry =
///     checked_geometry(Declared {
///         layer: "Conv1D",
///         input: &[7],
///         kernel: &[3],
///         strides: &[2],
///         dilation: &[1],
///         padding: Padding::Same,
///         in_channels: 2,
///         filters: 3,
///         declared: &[4],
///         pool: false,
///     });
/// assert_eq!(G.pads(2), (1, 1));
/// ```
///
/// # Panics
/// On any mismatch (at compile time when used in a `const`).
pub const fn checked_geometry(d: Declared<'_>) -> ConvGeometry {
    let Declared {
        layer,
        input,
        kernel,
        strides,
        dilation,
        padding,
        in_channels,
        filters,
        declared,
        pool,
    } = d;
    let mut a = 0;
    while a < input.len()
        && a < kernel.len()
        && a < strides.len()
        && a < dilation.len()
        && a < declared.len()
    {
        let want = conv_out(input[a], kernel[a], strides[a], dilation[a], padding);
        if want == 0 {
            ConstMsg::new()
                .str(layer)
                .str(": on axis ")
                .num(a)
                .str(" the window (kernel ")
                .num(kernel[a])
                .str(", stride ")
                .num(strides[a])
                .str(", dilation ")
                .num(dilation[a])
                .str(") does not fit the input size ")
                .num(input[a])
                .panic();
        }
        if want != declared[a] {
            ConstMsg::new()
                .str(layer)
                .str(": output axis ")
                .num(a)
                .str(" must be ")
                .num(want)
                .str(" (input ")
                .num(input[a])
                .str(", kernel ")
                .num(kernel[a])
                .str(", stride ")
                .num(strides[a])
                .str(", dilation ")
                .num(dilation[a])
                .str(", padding ")
                .str(padding.as_str())
                .str("), but the type says ")
                .num(declared[a])
                .panic();
        }
        a += 1;
    }
    let g = if pool {
        ConvGeometry::pool(input, kernel, strides, padding, in_channels)
    } else {
        ConvGeometry::new(
            input,
            kernel,
            strides,
            dilation,
            padding,
            in_channels,
            filters,
        )
    };
    match g {
        Ok(g) => g,
        Err(crate::Error::InvalidHyperparameter { name, reason }) => ConstMsg::new()
            .str(layer)
            .str(": invalid `")
            .str(name)
            .str("`: ")
            .str(reason.as_str())
            .panic(),
        Err(_) => ConstMsg::new().str(layer).str(": invalid shape").panic(),
    }
}

// ---------------------------------------------------------------------------------------------
// The math over slices (shared with models built at run time)
// ---------------------------------------------------------------------------------------------

/// Forward pass of a tile of `n` samples (`x`: `n × in_len`, `z` and `y`: `n × out_len`):
/// the convolution of each sample ([`kernels::conv::forward`]), then the activation (softmax
/// over the channels of each position, Keras' last axis; the others elementwise); each
/// sample's activity penalty into `ctx.penalties` when it is given.
///
/// `Via::Products` computes the convolution of a tile of several samples as matrix products
/// over its patches instead (same bits, see `products`). That is what a geometry known only
/// at run time (the std runtime's `Sequential`) wants: the
/// direct loops pay their index arithmetic per tap (digits CNN, model C of
/// `docs/PERFORMANCE.md`: 151 k → 270 k samples/s). A typed layer's geometry is a constant
/// and its direct loops compile to straight-line code that beats the products on small
/// kernels (462 k vs 273 k samples/s on model C), so typed layers pass `Via::Direct`.
#[inline]
pub fn forward<B: Backend, R: Regularizer>(
    cfg: &DenseConfig<R>,
    g: &ConvGeometry,
    io: WeightedForward<'_>,
    ctx: &mut ForwardCtx<'_>,
    via: Via<'_>,
) {
    let WeightedForward {
        kernel,
        bias,
        x,
        z,
        y,
    } = io;
    let (il, ol) = (g.in_len().max(1), g.out_len().max(1));
    let bias = cfg.use_bias.then_some(bias);
    let (products, cache) = via.split();
    if !(products && x.len() > il && products::forward::<B>(g, x, kernel, bias, z, cache)) {
        for (xr, zr) in x.chunks_exact(il).zip(z.chunks_exact_mut(ol)) {
            kernels::conv::forward(g, xr, kernel, bias, zr);
        }
    }
    cfg.activation.forward_groups::<B>(g.filters(), z, y);
    super::activity_penalties(
        cfg.activity_regularizer.as_ref(),
        y,
        g.out_len(),
        g.filters(),
        ctx,
    );
}

/// Backward pass of a tile of `n` samples (see [`WeightedBackward`]): the activity penalty
/// gradients and the activation's backward pass (shared with Dense), then the convolution's
/// gradients ([`kernels::conv::backward`]) sample after sample, or as matrix products over
/// the tile's patches with `Via::Products` (see [`forward`]).
#[inline]
pub fn backward<B: Backend, R: Regularizer>(
    cfg: &DenseConfig<R>,
    g: &ConvGeometry,
    io: WeightedBackward<'_>,
    ctx: &BackwardCtx,
    via: Via<'_>,
) {
    let WeightedBackward {
        kernel,
        grad_kernel: gk,
        grad_bias: gb,
        x,
        y,
        z,
        dy,
        dx,
    } = io;
    let ol = g.out_len().max(1);
    output_backward(cfg, (ol, g.filters()), y, z, dy, ctx, false);
    let (mut gb, mut dx) = (cfg.use_bias.then_some(gb), dx);
    let (products, cache) = via.split();
    if products && dy.len() > ol {
        let io = products::Backward {
            x,
            kernel,
            dz: dy,
            gk: &mut *gk,
            gb: gb.as_deref_mut(),
            dx: dx.as_deref_mut(),
            cache,
        };
        if products::backward::<B>(g, io) {
            return;
        }
    }
    backward_rows(g, (x, kernel, dy), gk, gb, dx);
}

/// [`backward`]'s convolution gradients sample after sample ([`kernels::conv::backward`]).
#[inline]
fn backward_rows(
    g: &ConvGeometry,
    (x, kernel, dy): (&[f32], &[f32], &[f32]),
    gk: &mut [f32],
    mut gb: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
) {
    let (il, ol) = (g.in_len().max(1), g.out_len().max(1));
    let mut dx = dx.map(|d| d.chunks_exact_mut(il));
    for (xr, dr) in x.chunks_exact(il).zip(dy.chunks_exact(ol)) {
        let dxr = dx.as_mut().and_then(Iterator::next);
        kernels::conv::backward(g, xr, kernel, dr, gk, gb.as_deref_mut(), dxr);
    }
}

/// How [`forward`] and [`backward`] compute a tile's convolution (the same bits either way).
#[derive(Debug)]
pub enum Via<'a> {
    /// Sample after sample, tap after tap ([`kernels::conv::forward`]/[`kernels::conv::backward`]).
    Direct,
    /// As matrix products over the tile's patches, when it holds more than one sample, the
    /// patches gathered a block at a time into a buffer on the stack (forward and backward
    /// each gather them).
    Products,
    /// As `Products`, with the whole tile's patch matrix in this buffer when it holds
    /// `samples · positions · taps · in_channels` floats (otherwise as `Products`): the
    /// forward pass gathers them into it, and the **backward pass takes them from it** — the
    /// caller passes to a backward pass only the buffer that the forward pass of the very same
    /// input filled (it is scratch afterwards: pass it to one backward pass only). A run-time
    /// model keeps one per conv layer, so a training step gathers its patches once.
    Patches(&'a mut [f32]),
}

impl<'a> Via<'a> {
    /// Whether to use the products, and the tile's patch buffer.
    fn split(self) -> (bool, Option<&'a mut [f32]>) {
        match self {
            Via::Direct => (false, None),
            Via::Products => (true, None),
            Via::Patches(b) => (true, Some(b)),
        }
    }
}

/// A tile's convolution as matrix products (host tiles; a microcontroller's tile of one
/// never comes here): the patch rows of [`kernels::conv::patches`] times the kernel seen as a
/// `(taps · cin) × filters` matrix, through the backend's tile products. The products sum in
/// the per-sample kernels' order (the patch's `(tap, channel)` order is the convolution's) and
/// take zero terms along only where that cannot change a bit, so the bits are those of the
/// per-sample convolution (`std-runtime/tests/engine_identity.rs` checks every layer kind).
/// Patches are built a block of rows at a time in a buffer on the stack.
mod products {
    use super::{ConvGeometry, kernels};
    use crate::backend::Backend;
    use crate::kernels::gemm::{MatMul, MatMulAtAcc, MatMulBt};

    /// Floats of the patch buffer (32 KiB).
    const BUF: usize = 8192;

    /// Patch rows per block, or `None` when one row does not fit the buffer.
    fn block_rows(g: &ConvGeometry) -> Option<usize> {
        let width = g.taps() * g.in_channels();
        (width > 0 && width <= BUF).then(|| BUF / width)
    }

    /// Fills `buf` with the patch rows `r0..r0 + rows` of the tile (row `s·P + o` is sample
    /// `s`, output position `o`).
    fn fill(g: &ConvGeometry, x: &[f32], r0: usize, rows: usize, buf: &mut [f32]) {
        kernels::conv::tile_patches(g, x, r0, rows, buf);
    }

    /// `z = conv(x) (+ b)` for every sample of the tile; false (nothing written) when the
    /// shapes do not fit this path.
    #[inline(never)]
    pub(super) fn forward<B: Backend>(
        g: &ConvGeometry,
        x: &[f32],
        kernel: &[f32],
        bias: Option<&[f32]>,
        z: &mut [f32],
        cache: Option<&mut [f32]>,
    ) -> bool {
        let (p, il, f) = (g.positions(), g.in_len(), g.filters());
        let width = g.taps() * g.in_channels();
        if il == 0 || p == 0 || f == 0 || width == 0 || kernel.len() != width * f {
            return false;
        }
        let total = x.len() / il * p;
        if z.len() < total * f {
            return false;
        }
        // The whole tile's patches in the caller's buffer, for the backward pass too.
        if let Some(buf) = cache.and_then(|c| c.get_mut(..total * width)) {
            fill(g, x, 0, total, buf);
            B::matmul(MatMul {
                a: buf,
                b: kernel,
                bias,
                c: &mut z[..total * f],
                rows: total,
                k: width,
                m: f,
            });
            return true;
        }
        let Some(block) = block_rows(g) else {
            return false;
        };
        let mut buf = [0.0f32; BUF];
        let mut r0 = 0;
        while r0 < total {
            let rows = block.min(total - r0);
            fill(g, x, r0, rows, &mut buf);
            B::matmul(MatMul {
                a: &buf[..rows * width],
                b: kernel,
                bias,
                c: &mut z[r0 * f..(r0 + rows) * f],
                rows,
                k: width,
                m: f,
            });
            r0 += rows;
        }
        true
    }

    /// Adds the patch-gradient rows `r0..r0 + rows` of the tile (in `buf` from its start)
    /// into the samples' input gradients `dx` ([`kernels::conv::add_patch_grads`]).
    fn add_grads(g: &ConvGeometry, buf: &[f32], r0: usize, rows: usize, dx: &mut [f32]) {
        kernels::conv::tile_add_patch_grads(g, buf, r0, rows, dx);
    }

    /// The tensors of [`backward`].
    pub(super) struct Backward<'a> {
        pub x: &'a [f32],
        pub kernel: &'a [f32],
        pub dz: &'a [f32],
        pub gk: &'a mut [f32],
        pub gb: Option<&'a mut [f32]>,
        pub dx: Option<&'a mut [f32]>,
        /// The buffer that [`forward`] filled with this tile's patches, if any.
        pub cache: Option<&'a mut [f32]>,
    }

    /// `gb[j] += dz[r][j]` for the rows `r` in order (the per-sample kernels' order). With
    /// 8, 16 or 32 filters the sums stay in registers from row to row (otherwise each
    /// addition waits for the store of the one before).
    fn bias_grads(gb: &mut [f32], dz: &[f32], f: usize) {
        fn rows<const N: usize>(gb: &mut [f32; N], dz: &[f32]) {
            let mut acc = *gb;
            for row in dz.chunks_exact(N) {
                if let Some(r) = row.first_chunk::<N>() {
                    for (a, &d) in acc.iter_mut().zip(r) {
                        *a += d;
                    }
                }
            }
            *gb = acc;
        }
        let done = match f {
            8 => <&mut [f32; 8]>::try_from(&mut *gb).map(|g| rows(g, dz)),
            16 => <&mut [f32; 16]>::try_from(&mut *gb).map(|g| rows(g, dz)),
            32 => <&mut [f32; 32]>::try_from(&mut *gb).map(|g| rows(g, dz)),
            _ => return bias_grads_any(gb, dz, f),
        };
        if done.is_err() {
            bias_grads_any(gb, dz, f);
        }
    }

    /// [`bias_grads`] for any number of filters.
    fn bias_grads_any(gb: &mut [f32], dz: &[f32], f: usize) {
        for dzo in dz.chunks_exact(f.max(1)) {
            for (gj, &dj) in gb.iter_mut().zip(dzo) {
                *gj += dj;
            }
        }
    }

    /// `gW += patchesᵀ · dz`, `gb += Σ dz` and (when asked) `dx = col2im(dz · Wᵀ)` for the
    /// tile; false (nothing done) when the shapes do not fit this path.
    #[inline(never)]
    pub(super) fn backward<B: Backend>(g: &ConvGeometry, io: Backward<'_>) -> bool {
        let Backward {
            x,
            kernel,
            dz,
            gk,
            gb,
            mut dx,
            cache,
        } = io;
        let (p, il, f) = (g.positions(), g.in_len(), g.filters());
        let width = g.taps() * g.in_channels();
        if il == 0
            || p == 0
            || f == 0
            || width == 0
            || kernel.len() != width * f
            || gk.len() != width * f
        {
            return false;
        }
        let n = x.len() / il;
        let total = n * p;
        if x.len() != n * il
            || dz.len() < total * f
            || dx.as_deref().is_some_and(|d| d.len() < x.len())
        {
            return false;
        }
        let cached = cache.and_then(|c| c.get_mut(..total * width));
        let block = block_rows(g);
        if cached.is_none() && block.is_none() {
            return false;
        }
        if let Some(gb) = gb {
            bias_grads(gb, &dz[..total * f], f);
        }
        if let Some(dx) = dx.as_deref_mut() {
            dx.fill(0.0);
        }
        // The patches the forward pass left in the caller's buffer: one product each.
        if let Some(buf) = cached {
            let dz = &dz[..total * f];
            B::matmul_at_acc(MatMulAtAcc {
                a: buf,
                b: dz,
                c: gk,
                rows: total,
                k: width,
                m: f,
            });
            if let Some(dx) = dx {
                B::matmul_bt(MatMulBt {
                    a: dz,
                    b: kernel,
                    c: buf,
                    rows: total,
                    k: width,
                    m: f,
                });
                add_grads(g, buf, 0, total, dx);
            }
            return true;
        }
        let Some(block) = block else {
            return false;
        };
        let mut buf = [0.0f32; BUF];
        let mut r0 = 0;
        while r0 < total {
            let rows = block.min(total - r0);
            let dzb = &dz[r0 * f..(r0 + rows) * f];
            fill(g, x, r0, rows, &mut buf);
            B::matmul_at_acc(MatMulAtAcc {
                a: &buf[..rows * width],
                b: dzb,
                c: gk,
                rows,
                k: width,
                m: f,
            });
            if let Some(dx) = dx.as_deref_mut() {
                B::matmul_bt(MatMulBt {
                    a: dzb,
                    b: kernel,
                    c: &mut buf[..rows * width],
                    rows,
                    k: width,
                    m: f,
                });
                add_grads(g, &buf, r0, rows, dx);
            }
            r0 += rows;
        }
        true
    }
}

/// Weight penalties of a conv layer (kernel, seen as a `(k·cin, filters)` matrix, then bias),
/// gradients added when `grads` is given. Same rules as [`super::dense::weight_penalties`].
pub fn weight_penalties<R: Regularizer>(
    cfg: &DenseConfig<R>,
    g: &ConvGeometry,
    kernel: &[f32],
    bias: &[f32],
    grads: Option<(&mut [f32], &mut [f32])>,
    layer: usize,
    pen: &mut Penalties,
) {
    super::dense::weight_penalties(cfg, kernel, bias, grads, g.filters(), layer, pen);
}

/// The pre-activation `z` as the logits of the fused softmax/sigmoid + crossentropy loss
/// (Keras' cached-logits shortcut), or `None` for a softmax over the channels of more than one
/// position (the fused loss assumes one softmax over the whole output).
///
/// ```
/// use microfit_core::prelude::*;
/// use microfit_core::layer::conv::fused_logits;
/// let one = ConvGeometry::new(&[3], &[3], &[1], &[1], Padding::Valid, 1, 4)?; // 1 position
/// let many = ConvGeometry::new(&[3], &[1], &[1], &[1], Padding::Valid, 1, 4)?; // 3 positions
/// assert!(fused_logits(Activation::Softmax, &one, &[0.0; 4]).is_some());
/// assert!(fused_logits(Activation::Softmax, &many, &[0.0; 12]).is_none());
/// assert!(fused_logits(Activation::Sigmoid, &many, &[0.0; 12]).is_some());
/// # Ok::<(), microfit_core::Error>(())
/// ```
pub fn fused_logits<'c>(act: Activation, g: &ConvGeometry, z: &'c [f32]) -> Option<&'c [f32]> {
    if matches!(act, Activation::Softmax) && g.positions() > 1 {
        None
    } else {
        Some(z)
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// The weights of a conv layer: `kernel` (`K` is the nested array `[k…][cin][filters]`) and
/// `bias` (`[filters]`). Keras variable order: kernel, then bias.
///
/// ```
/// use microfit_core::layer::conv::ConvParams;
/// use microfit_core::params::{Params, ZeroParams};
/// let mut p = ConvParams::<[[[f32; 4]; 2]; 3], 4>::zeroed();
/// p.tensor_mut(0)[5] = 1.0;
/// assert_eq!(p.kernel[0][1][1], 1.0);
/// assert_eq!(<ConvParams<[[[f32; 4]; 2]; 3], 4> as ZeroParams>::LEN, 3 * 2 * 4 + 4);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ConvParams<K, const F: usize> {
    /// Kernel, Keras layout `(k…, cin, filters)`.
    pub kernel: K,
    /// Bias.
    pub bias: [f32; F],
}

impl<K: Tensor, const F: usize> Params for ConvParams<K, F> {
    fn tensor_count(&self) -> usize {
        2
    }
    fn tensor(&self, i: usize) -> &[f32] {
        match i {
            0 => self.kernel.as_slice(),
            1 => &self.bias,
            _ => &[],
        }
    }
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        match i {
            0 => self.kernel.as_mut_slice(),
            1 => &mut self.bias,
            _ => &mut [],
        }
    }
}

impl<K: Tensor, const F: usize> ZeroParams for ConvParams<K, F> {
    const LEN: usize = K::LEN + F;
    fn zeroed() -> Self {
        ConvParams {
            kernel: K::zeroed(),
            bias: [0.0; F],
        }
    }
}

/// A Conv3D kernel `(kd, kh, kw, cin, filters)` is a 5-level array.
impl<const A: usize, const B: usize, const C: usize, const D: usize, const E: usize> Tensor
    for [[[[[f32; E]; D]; C]; B]; A]
{
    const LEN: usize = A * B * C * D * E;
    #[inline]
    fn zeroed() -> Self {
        [[[[[0.0; E]; D]; C]; B]; A]
    }
    #[inline]
    fn as_slice(&self) -> &[f32] {
        self.as_flattened()
            .as_flattened()
            .as_flattened()
            .as_flattened()
    }
    #[inline]
    fn as_mut_slice(&mut self) -> &mut [f32] {
        self.as_flattened_mut()
            .as_flattened_mut()
            .as_flattened_mut()
            .as_flattened_mut()
    }
    #[inline]
    fn rows(flat: &[f32]) -> &[Self] {
        <[[[[f32; E]; D]; C]; B]>::rows(flat).as_chunks::<A>().0
    }
    #[inline]
    fn rows_mut(flat: &mut [f32]) -> &mut [Self] {
        <[[[[f32; E]; D]; C]; B]>::rows_mut(flat)
            .as_chunks_mut::<A>()
            .0
    }
    #[inline]
    fn flat(rows: &[Self]) -> &[f32] {
        <[[[[f32; E]; D]; C]; B]>::flat(rows.as_flattened())
    }
    #[inline]
    fn flat_mut(rows: &mut [Self]) -> &mut [f32] {
        <[[[[f32; E]; D]; C]; B]>::flat_mut(rows.as_flattened_mut())
    }
}

// ---------------------------------------------------------------------------------------------
// The typed layers
// ---------------------------------------------------------------------------------------------

/// The Dense-style builder methods (same names as Keras' arguments).
macro_rules! config_builders {
    () => {
        /// Sets `kernel_regularizer`.
        pub fn kernel_regularizer(mut self, r: R) -> Self {
            self.config.kernel_regularizer = Some(r);
            self
        }

        /// Sets `bias_regularizer`.
        pub fn bias_regularizer(mut self, r: R) -> Self {
            self.config.bias_regularizer = Some(r);
            self
        }

        /// Sets `activity_regularizer` (on the output, divided by the batch size only).
        pub fn activity_regularizer(mut self, r: R) -> Self {
            self.config.activity_regularizer = Some(r);
            self
        }

        /// Sets `use_bias`.
        pub fn use_bias(mut self, use_bias: bool) -> Self {
            self.config.use_bias = use_bias;
            self
        }

        /// Sets `kernel_initializer` (default Glorot uniform with Keras' conv fans:
        /// `fan_in = k·cin`, `fan_out = k·filters`, `k` the product of the kernel sizes).
        pub fn kernel_initializer(mut self, init: Initializer) -> Self {
            self.config.kernel_initializer = init;
            self
        }

        /// Sets `bias_initializer`.
        pub fn bias_initializer(mut self, init: Initializer) -> Self {
            self.config.bias_initializer = init;
            self
        }

        /// Sets `kernel_constraint` (Keras layout `(k…, cin, filters)`: `axis=[0, …, rank-2]`
        /// constrains each filter).
        pub const fn kernel_constraint(mut self, c: crate::constraint::Constraint) -> Self {
            self.config.kernel_constraint = Some(c);
            self
        }

        /// Sets `bias_constraint`.
        pub const fn bias_constraint(mut self, c: crate::constraint::Constraint) -> Self {
            self.config.bias_constraint = Some(c);
            self
        }
    };
}

/// The `Layer` methods common to the three conv layers (they differ only in their shapes).
macro_rules! conv_layer_body {
    ($kind:literal, $kshape:expr) => {
        type Params = ConvParams<<Self as ConvKernelType>::Kernel, FILTERS>;
        type Cache<const T: usize> = WeightedCache<Self::Output, T>;
        type Rng = $crate::rng::NoRng;
        const LAYERS: usize = 1;

        fn init(&self, p: &mut Self::Params, rng: &mut Rng) {
            let () = Self::CHECK;
            self.config
                .kernel_initializer
                .fill(Tensor::as_mut_slice(&mut p.kernel), &$kshape, rng);
            self.config
                .bias_initializer
                .fill(&mut p.bias, &[FILTERS], rng);
            if !self.config.use_bias {
                p.bias = [0.0; FILTERS];
            }
        }

        #[inline]
        fn forward<B: Backend, const T: usize>(
            &self,
            p: &Self::Params,
            x: &[Self::Input],
            cache: &mut Self::Cache<T>,
            ctx: &mut ForwardCtx<'_>,
        ) {
            let n = x.len().min(T);
            let io = WeightedForward {
                kernel: Tensor::as_slice(&p.kernel),
                bias: &p.bias,
                x: <Self::Input as Tensor>::flat(&x[..n]),
                z: <Self::Output as Tensor>::flat_mut(&mut cache.z.0[..n]),
                y: <Self::Output as Tensor>::flat_mut(&mut cache.out.y.0[..n]),
            };
            forward::<B, R>(&self.config, &Self::GEOMETRY, io, ctx, Via::Direct);
        }

        #[inline]
        fn backward<B: Backend, const T: usize>(
            &self,
            p: &Self::Params,
            g: &mut Self::Params,
            x: &[Self::Input],
            cache: &mut Self::Cache<T>,
            dx: Option<&mut [Self::Input]>,
            ctx: &BackwardCtx,
        ) {
            let n = x.len().min(T);
            backward::<B, R>(
                &self.config,
                &Self::GEOMETRY,
                WeightedBackward {
                    kernel: Tensor::as_slice(&p.kernel),
                    grad_kernel: Tensor::as_mut_slice(&mut g.kernel),
                    grad_bias: &mut g.bias,
                    x: <Self::Input as Tensor>::flat(&x[..n]),
                    y: <Self::Output as Tensor>::flat(&cache.out.y.0[..n]),
                    z: <Self::Output as Tensor>::flat_mut(&mut cache.z.0[..n]),
                    dy: <Self::Output as Tensor>::flat_mut(&mut cache.out.dy.0[..n]),
                    dx: dx.map(|d| <Self::Input as Tensor>::flat_mut(d)),
                },
                ctx,
                Via::Direct,
            );
        }

        fn outputs<const T: usize>(
            cache: &mut Self::Cache<T>,
        ) -> (&[Self::Output], &mut [Self::Output]) {
            cache.out.split()
        }

        fn output_rows<const T: usize>(cache: &Self::Cache<T>) -> &[Self::Output] {
            &cache.out.y.0
        }

        fn loss_io<'c, const T: usize>(&self, cache: &'c mut Self::Cache<T>) -> LossIo<'c> {
            LossIo {
                y: cache.out.y.flat(),
                logits: fused_logits(self.config.activation, &Self::GEOMETRY, cache.z.flat()),
                dy: cache.out.dy.flat_mut(),
                width: <Self::Output as Tensor>::LEN,
            }
        }

        fn weight_penalties<B: Backend>(
            &self,
            p: &Self::Params,
            g: Option<&mut Self::Params>,
            layer: usize,
            pen: &mut Penalties,
        ) {
            let g = g.map(|g| (Tensor::as_mut_slice(&mut g.kernel), &mut g.bias[..]));
            weight_penalties(
                &self.config,
                &Self::GEOMETRY,
                Tensor::as_slice(&p.kernel),
                &p.bias,
                g,
                layer,
                pen,
            );
        }

        fn output_activation(&self) -> Activation {
            self.config.activation
        }

        fn validate(&self) -> Result<(), crate::error::Error> {
            self.config.validate_typed($kshape.len())
        }

        #[inline]
        fn apply_constraints(&self, p: &mut Self::Params) {
            self.config.apply_constraints(
                Tensor::as_mut_slice(&mut p.kernel),
                &$kshape,
                &mut p.bias,
            );
        }

        fn has_activity_regularizer(&self) -> bool {
            self.config.activity_regularizer.is_some()
        }

        fn describe(&self, first: usize, f: &mut dyn FnMut(usize, LayerInfo)) {
            f(
                first,
                LayerInfo {
                    kind: $kind,
                    params: <<Self as ConvKernelType>::Kernel as Tensor>::LEN
                        + if self.config.use_bias { FILTERS } else { 0 },
                    activation: self.config.activation,
                },
            );
        }
    };
}

/// Keras `Conv1D(FILTERS, K, strides=S, padding=P, dilation_rate=DIL)` on a `(W, CIN)` input,
/// output `(OW, FILTERS)`.
///
/// Input `[[f32; CIN]; W]`, output `[[f32; FILTERS]; OW]`, kernel `[[[f32; FILTERS]; CIN]; K]`.
/// `OW` must equal `conv_out(W, K, S, DIL, P)` (checked when the program is built).
///
/// ```
/// use microfit_core::prelude::*;
/// // Conv1D(3, 3, strides=2, padding="same") on (7, 2): output (4, 3).
/// type L = Conv1D<7, 2, 3, 3, 4, Same, 2>;
/// let net = Network::new(L::new(Activation::Linear).kernel_regularizer(Reg::l2(0.01)), 1)?;
/// assert_eq!(Network::<L>::PARAMS, 3 * 2 * 3 + 3);
/// # let _ = net;
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv1D<
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const K: usize,
    const OW: usize,
    P = Valid,
    const S: usize = 1,
    const DIL: usize = 1,
    R = Reg,
> {
    /// Activation, bias, regularizers and initializers (shared with Dense).
    pub config: DenseConfig<R>,
    _padding: PhantomData<P>,
}

impl<
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const K: usize,
    const OW: usize,
    P: PaddingMode,
    const S: usize,
    const DIL: usize,
    R,
> Conv1D<W, CIN, FILTERS, K, OW, P, S, DIL, R>
{
    /// The checked geometry (a wrong `OW` fails the build here).
    pub const GEOMETRY: ConvGeometry = checked_geometry(Declared {
        layer: "Conv1D",
        input: &[W],
        kernel: &[K],
        strides: &[S],
        dilation: &[DIL],
        padding: P::PADDING,
        in_channels: CIN,
        filters: FILTERS,
        declared: &[OW],
        pool: false,
    });
    const CHECK: () = {
        let _ = Self::GEOMETRY;
    };
    /// Trainable scalars: `K·CIN·FILTERS + FILTERS`.
    pub const PARAMS: usize = K * CIN * FILTERS + FILTERS;
    /// Floats kept per sample by the layer itself (its pre-activation): `OW·FILTERS`.
    pub const CACHE_FLOATS: usize = OW * FILTERS;

    /// Keras defaults with the given activation.
    pub const fn new(activation: Activation) -> Self {
        let () = Self::CHECK;
        Conv1D {
            config: DenseConfig::new(activation),
            _padding: PhantomData,
        }
    }

    config_builders!();
}

impl<
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const K: usize,
    const OW: usize,
    P: PaddingMode,
    const S: usize,
    const DIL: usize,
    R: Regularizer,
> Layer for Conv1D<W, CIN, FILTERS, K, OW, P, S, DIL, R>
{
    type Input = [[f32; CIN]; W];
    type Output = [[f32; FILTERS]; OW];
    conv_layer_body!("conv1d", [K, CIN, FILTERS]);
}

impl<
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const K: usize,
    const OW: usize,
    P,
    const S: usize,
    const DIL: usize,
    R,
> ConvKernelType for Conv1D<W, CIN, FILTERS, K, OW, P, S, DIL, R>
{
    type Kernel = [[[f32; FILTERS]; CIN]; K];
}

/// Keras `Conv2D(FILTERS, (KH, KW), strides=(SH, SW), padding=P, dilation_rate=(DH, DW))` on an
/// `(H, W, CIN)` input, output `(OH, OW, FILTERS)`.
///
/// Input `[[[f32; CIN]; W]; H]`, kernel `[[[[f32; FILTERS]; CIN]; KW]; KH]`. `OH`, `OW` must
/// equal [`conv_out`] of their axis (checked when the program is built). See the
/// [module docs](self) for an example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2D<
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    P = Valid,
    const SH: usize = 1,
    const SW: usize = 1,
    const DH: usize = 1,
    const DW: usize = 1,
    R = Reg,
> {
    /// Activation, bias, regularizers and initializers (shared with Dense).
    pub config: DenseConfig<R>,
    _padding: PhantomData<P>,
}

impl<
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    P: PaddingMode,
    const SH: usize,
    const SW: usize,
    const DH: usize,
    const DW: usize,
    R,
> Conv2D<H, W, CIN, FILTERS, KH, KW, OH, OW, P, SH, SW, DH, DW, R>
{
    /// The checked geometry (a wrong `OH`/`OW` fails the build here).
    pub const GEOMETRY: ConvGeometry = checked_geometry(Declared {
        layer: "Conv2D",
        input: &[H, W],
        kernel: &[KH, KW],
        strides: &[SH, SW],
        dilation: &[DH, DW],
        padding: P::PADDING,
        in_channels: CIN,
        filters: FILTERS,
        declared: &[OH, OW],
        pool: false,
    });
    const CHECK: () = {
        let _ = Self::GEOMETRY;
    };
    /// Trainable scalars: `KH·KW·CIN·FILTERS + FILTERS`.
    pub const PARAMS: usize = KH * KW * CIN * FILTERS + FILTERS;
    /// Floats kept per sample by the layer itself (its pre-activation): `OH·OW·FILTERS`.
    pub const CACHE_FLOATS: usize = OH * OW * FILTERS;

    /// Keras defaults with the given activation.
    pub const fn new(activation: Activation) -> Self {
        let () = Self::CHECK;
        Conv2D {
            config: DenseConfig::new(activation),
            _padding: PhantomData,
        }
    }

    config_builders!();
}

impl<
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    P: PaddingMode,
    const SH: usize,
    const SW: usize,
    const DH: usize,
    const DW: usize,
    R: Regularizer,
> Layer for Conv2D<H, W, CIN, FILTERS, KH, KW, OH, OW, P, SH, SW, DH, DW, R>
{
    type Input = [[[f32; CIN]; W]; H];
    type Output = [[[f32; FILTERS]; OW]; OH];
    conv_layer_body!("conv2d", [KH, KW, CIN, FILTERS]);
}

impl<
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KH: usize,
    const KW: usize,
    const OH: usize,
    const OW: usize,
    P,
    const SH: usize,
    const SW: usize,
    const DH: usize,
    const DW: usize,
    R,
> ConvKernelType for Conv2D<H, W, CIN, FILTERS, KH, KW, OH, OW, P, SH, SW, DH, DW, R>
{
    type Kernel = [[[[f32; FILTERS]; CIN]; KW]; KH];
}

/// Keras `Conv3D(FILTERS, (KD, KH, KW), strides, padding, dilation_rate)` on a
/// `(D, H, W, CIN)` input, output `(OD, OH, OW, FILTERS)`.
///
/// Kernel `[[[[[f32; FILTERS]; CIN]; KW]; KH]; KD]`.
///
/// ```
/// use microfit_core::prelude::*;
/// // Conv3D(2, 2, strides=2, padding="same") on (4, 4, 3, 2): output (2, 2, 2, 2).
/// type L = Conv3D<4, 4, 3, 2, 2, 2, 2, 2, 2, 2, 2, Same, 2, 2, 2>;
/// assert_eq!(L::GEOMETRY.pads(2), (0, 1));
/// assert_eq!(L::PARAMS, 8 * 2 * 2 + 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv3D<
    const D: usize,
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KD: usize,
    const KH: usize,
    const KW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P = Valid,
    const SD: usize = 1,
    const SH: usize = 1,
    const SW: usize = 1,
    const DD: usize = 1,
    const DH: usize = 1,
    const DW: usize = 1,
    R = Reg,
> {
    /// Activation, bias, regularizers and initializers (shared with Dense).
    pub config: DenseConfig<R>,
    _padding: PhantomData<P>,
}

impl<
    const D: usize,
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KD: usize,
    const KH: usize,
    const KW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P: PaddingMode,
    const SD: usize,
    const SH: usize,
    const SW: usize,
    const DD: usize,
    const DH: usize,
    const DW: usize,
    R,
> Conv3D<D, H, W, CIN, FILTERS, KD, KH, KW, OD, OH, OW, P, SD, SH, SW, DD, DH, DW, R>
{
    /// The checked geometry (a wrong output size fails the build here).
    pub const GEOMETRY: ConvGeometry = checked_geometry(Declared {
        layer: "Conv3D",
        input: &[D, H, W],
        kernel: &[KD, KH, KW],
        strides: &[SD, SH, SW],
        dilation: &[DD, DH, DW],
        padding: P::PADDING,
        in_channels: CIN,
        filters: FILTERS,
        declared: &[OD, OH, OW],
        pool: false,
    });
    const CHECK: () = {
        let _ = Self::GEOMETRY;
    };
    /// Trainable scalars: `KD·KH·KW·CIN·FILTERS + FILTERS`.
    pub const PARAMS: usize = KD * KH * KW * CIN * FILTERS + FILTERS;
    /// Floats kept per sample by the layer itself (its pre-activation): `OD·OH·OW·FILTERS`.
    pub const CACHE_FLOATS: usize = OD * OH * OW * FILTERS;

    /// Keras defaults with the given activation.
    pub const fn new(activation: Activation) -> Self {
        let () = Self::CHECK;
        Conv3D {
            config: DenseConfig::new(activation),
            _padding: PhantomData,
        }
    }

    config_builders!();
}

impl<
    const D: usize,
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KD: usize,
    const KH: usize,
    const KW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P: PaddingMode,
    const SD: usize,
    const SH: usize,
    const SW: usize,
    const DD: usize,
    const DH: usize,
    const DW: usize,
    R: Regularizer,
> Layer for Conv3D<D, H, W, CIN, FILTERS, KD, KH, KW, OD, OH, OW, P, SD, SH, SW, DD, DH, DW, R>
{
    type Input = [[[[f32; CIN]; W]; H]; D];
    type Output = [[[[f32; FILTERS]; OW]; OH]; OD];
    conv_layer_body!("conv3d", [KD, KH, KW, CIN, FILTERS]);
}

impl<
    const D: usize,
    const H: usize,
    const W: usize,
    const CIN: usize,
    const FILTERS: usize,
    const KD: usize,
    const KH: usize,
    const KW: usize,
    const OD: usize,
    const OH: usize,
    const OW: usize,
    P,
    const SD: usize,
    const SH: usize,
    const SW: usize,
    const DD: usize,
    const DH: usize,
    const DW: usize,
    R,
> ConvKernelType
    for Conv3D<D, H, W, CIN, FILTERS, KD, KH, KW, OD, OH, OW, P, SD, SH, SW, DD, DH, DW, R>
{
    type Kernel = [[[[[f32; FILTERS]; CIN]; KW]; KH]; KD];
}

/// The nested-array type of a conv layer's kernel (`[k…][cin][filters]`).
pub trait ConvKernelType {
    /// The kernel tensor.
    type Kernel: Tensor;
}

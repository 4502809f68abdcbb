//! Models described at run time: a [`ModelSpec`] (the schema's model, from TOML, a Keras config
//! or code: see [`crate::formats::schema`]) built into a [`Sequential`] that trains with **the
//! same core kernels and the same training step** as the typed `microfit_core::Network`, so
//! both give the same bits. [`ModelSpec::build`] is the one place a schema layer becomes a
//! run-time layer.
//!
//! ```
//! use microfit::model::{LayerSpec, ModelSpec};
//! use microfit::core::prelude::*;
//! let spec = ModelSpec {
//!     input_shape: vec![4],
//!     layers: vec![
//!         LayerSpec::dense(16, Activation::Relu).with_kernel_regularizer(Reg::l2(1e-3)),
//!         LayerSpec::dense(3, Activation::Softmax),
//!     ],
//! };
//! let model = spec.build(42)?;
//! assert_eq!(model.param_count(), 131);
//! # Ok::<(), microfit::model::SpecError>(())
//! ```

use microfit_core::activation::Activation;
use microfit_core::backend::Backend;
use microfit_core::init::Initializer;
use microfit_core::kernels::conv::ConvGeometry;
use microfit_core::layer::conv;
use microfit_core::layer::dense::{self, DenseConfig, WeightedBackward, WeightedForward};
use microfit_core::layer::dropout::{self, DropoutState};
use microfit_core::layer::flatten;
use microfit_core::layer::noise;
use microfit_core::layer::pool::{self, Average, Max};
use microfit_core::layer::{BackwardCtx, ForwardCtx, LossIo, Penalties};
use microfit_core::params::Params;
use microfit_core::regularizer::{Reg, SumSqs};
use microfit_core::rng::Rng;
use microfit_core::train::Trainable;
use serde::{Deserialize, Serialize};

use crate::formats::schema::layer::NoiseKind;
use crate::formats::schema::model_spec::spec_err;
pub use crate::formats::schema::{LayerSpec, ModelSpec, SpecError};
use crate::host::Host;

/// Parameters as a list of named `Vec<f32>` tensors (Keras variable order and names).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VecParams {
    /// Variable names (`"dense/kernel"`, `"dense_1/bias"`, ...).
    pub names: Vec<String>,
    /// Shapes (Keras layout).
    pub shapes: Vec<Vec<usize>>,
    /// Values, row-major.
    pub tensors: Vec<Vec<f32>>,
}

impl VecParams {
    /// Adds a zero tensor.
    pub fn push(&mut self, name: String, shape: Vec<usize>) -> usize {
        let n = shape.iter().product();
        self.names.push(name);
        self.shapes.push(shape);
        self.tensors.push(vec![0.0; n]);
        self.tensors.len() - 1
    }

    /// Index of the tensor called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.index_of(name).map(|i| &self.tensors[i][..])
    }
}

impl Params for VecParams {
    fn tensor_count(&self) -> usize {
        self.tensors.len()
    }
    fn tensor(&self, i: usize) -> &[f32] {
        self.tensors.get(i).map_or(&[], |t| &t[..])
    }
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        match self.tensors.get_mut(i) {
            Some(t) => &mut t[..],
            None => &mut [],
        }
    }
    fn variable_name(&self, i: usize) -> &str {
        self.names.get(i).map_or("", |n| n.as_str())
    }
}

/// A built layer: its spec plus the indices of its tensors and its sizes.
#[derive(Debug, Clone)]
enum Built {
    Dense {
        cfg: DenseConfig<Reg>,
        n_out: usize,
        kernel: usize,
        bias: usize,
    },
    Conv {
        cfg: DenseConfig<Reg>,
        geom: ConvGeometry,
        kernel: usize,
        bias: usize,
    },
    Pool {
        geom: ConvGeometry,
        max: bool,
    },
    Flatten {
        len: usize,
    },
    Noise {
        noise: NoiseKind,
        len: usize,
    },
}

impl Built {
    /// A layer whose kernel and bias penalties count: its config, output columns and the
    /// indices of its kernel and bias tensors. `None` for layers without weights and for
    /// frozen ones (Keras 3 drops a frozen layer's kernel and bias penalties).
    fn penalised(&self) -> Option<(&DenseConfig<Reg>, usize, usize, usize)> {
        let (cfg, cols, kernel, bias) = match self {
            Built::Dense {
                cfg,
                n_out,
                kernel,
                bias,
            } => (cfg, *n_out, *kernel, *bias),
            Built::Conv {
                cfg,
                geom,
                kernel,
                bias,
            } => (cfg, geom.filters(), *kernel, *bias),
            Built::Pool { .. } | Built::Flatten { .. } | Built::Noise { .. } => return None,
        };
        cfg.trainable.then_some((cfg, cols, kernel, bias))
    }

    fn out_len(&self) -> usize {
        match self {
            Built::Dense { n_out, .. } => *n_out,
            Built::Conv { geom, .. } | Built::Pool { geom, .. } => geom.out_len(),
            Built::Flatten { len } | Built::Noise { len, .. } => *len,
        }
    }

    /// Length of the pre-activation buffer (layers with an activation only).
    fn z_len(&self) -> usize {
        match self {
            Built::Dense { .. } | Built::Conv { .. } => self.out_len(),
            _ => 0,
        }
    }

    fn activation(&self) -> Activation {
        match self {
            Built::Dense { cfg, .. } | Built::Conv { cfg, .. } => cfg.activation,
            _ => Activation::Linear,
        }
    }

    /// A layer with weights that does not train (`trainable: false`).
    fn frozen(&self) -> bool {
        match self {
            Built::Dense { cfg, .. } | Built::Conv { cfg, .. } => !cfg.trainable,
            _ => false,
        }
    }
}

/// A layer's buffers for a tile: pre-activations (layers with weights), outputs and their
/// gradients, `tile` rows each.
#[derive(Debug, Clone, Default)]
struct Buffers {
    z: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    /// A conv layer's patch matrix for the tile (`conv::Via::Patches`): gathered by a
    /// training forward pass, taken by the backward pass that follows it. Empty for other
    /// layers and when it would exceed [`TILE_BUDGET_FLOATS`] (the patches are then gathered
    /// a block at a time, twice).
    patches: Vec<f32>,
    /// `patches` holds the patches of the last training forward pass's input.
    patched: bool,
}

impl Built {
    /// Floats of the tile's patch matrix kept for a conv layer (0: none kept).
    fn patch_len(&self, tile: usize) -> usize {
        match self {
            Built::Conv { geom, .. } => {
                let len = tile
                    .saturating_mul(geom.positions())
                    .saturating_mul(geom.taps())
                    .saturating_mul(geom.in_channels());
                if len <= TILE_BUDGET_FLOATS { len } else { 0 }
            }
            _ => 0,
        }
    }
}

/// Activation values a [`Sequential`] keeps for its tile at most (4 MiB of `f32`): the default
/// tile is the largest power of two up to [`DEFAULT_TILE`] whose buffers fit.
pub const TILE_BUDGET_FLOATS: usize = 1 << 20;

/// The largest default tile of a [`Sequential`]: samples per forward/backward pass of a layer.
pub const DEFAULT_TILE: usize = 32;

/// A model built at run time from a [`ModelSpec`]; implements the core's `Trainable`, so it
/// trains through the core's one engine, a tile of samples at a time (see
/// [`Sequential::tile`]), with the very kernels of the typed `Network` — the same bits.
#[derive(Debug, Clone)]
pub struct Sequential {
    spec: ModelSpec,
    built: Vec<Built>,
    /// Layer names (Keras style: `dense`, `dense_1`, ...).
    pub layer_names: Vec<String>,
    /// The trainable weights (Keras `trainable_weights`): what the optimizer updates.
    pub params: VecParams,
    /// The gradients.
    pub grads: VecParams,
    /// The weights of the frozen layers (`trainable: false`; Keras `non_trainable_weights`),
    /// in model order: no gradient, no optimizer slot.
    pub frozen: VecParams,
    /// A frozen layer after a trainable one passes the gradient on through its own backward
    /// pass, whose weight gradients land here and are dropped.
    scratch: VecParams,
    in_len: usize,
    tile: usize,
    bufs: Vec<Buffers>,
    dropout: Vec<DropoutState>,
    rng: Rng,
}

impl ModelSpec {
    /// Builds the model and initializes its weights from `seed`, drawing in the same order as
    /// a typed `Network` (layer by layer, kernel then bias), so both start from the same weights.
    ///
    /// # Errors
    /// A [`SpecError`] naming the field.
    pub fn build(&self, seed: u64) -> Result<Sequential, SpecError> {
        let shapes = self.shapes()?;
        let mut trainable = VecParams::default();
        let mut frozen = VecParams::default();
        let mut built = Vec::new();
        let names = self.layer_names();
        let mut rng = Rng::new(seed);
        let mut in_shape = self.input_shape.clone();
        for (i, (l, name)) in self.layers.iter().zip(&names).enumerate() {
            match l {
                LayerSpec::Dense { units, config } => {
                    let n_in = in_shape[0];
                    // A frozen layer's weights are initialized too (Keras does), elsewhere.
                    let params = if config.trainable {
                        &mut trainable
                    } else {
                        &mut frozen
                    };
                    let kernel = params.push(format!("{name}/kernel"), vec![n_in, *units]);
                    let bias = params.push(format!("{name}/bias"), vec![*units]);
                    config.kernel_initializer.fill(
                        &mut params.tensors[kernel],
                        &[n_in, *units],
                        &mut rng,
                    );
                    config
                        .bias_initializer
                        .fill(&mut params.tensors[bias], &[*units], &mut rng);
                    if !config.use_bias {
                        params.tensors[bias].fill(0.0);
                    }
                    built.push(Built::Dense {
                        cfg: *config,
                        n_out: *units,
                        kernel,
                        bias,
                    });
                }
                LayerSpec::Conv1D { config, .. }
                | LayerSpec::Conv2D { config, .. }
                | LayerSpec::Conv3D { config, .. } => {
                    let geom = l
                        .geometry(i, &in_shape)?
                        .ok_or_else(|| spec_err(format!("layers[{i}]"), "no geometry"))?;
                    let mut kshape: Vec<usize> = geom.kernel()[3 - geom.dims()..].to_vec();
                    kshape.extend([geom.in_channels(), geom.filters()]);
                    let params = if config.trainable {
                        &mut trainable
                    } else {
                        &mut frozen
                    };
                    let kernel = params.push(format!("{name}/kernel"), kshape.clone());
                    let bias = params.push(format!("{name}/bias"), vec![geom.filters()]);
                    config
                        .kernel_initializer
                        .fill(&mut params.tensors[kernel], &kshape, &mut rng);
                    config.bias_initializer.fill(
                        &mut params.tensors[bias],
                        &[geom.filters()],
                        &mut rng,
                    );
                    if !config.use_bias {
                        params.tensors[bias].fill(0.0);
                    }
                    built.push(Built::Conv {
                        cfg: *config,
                        geom,
                        kernel,
                        bias,
                    });
                }
                LayerSpec::MaxPooling { .. } | LayerSpec::AveragePooling { .. } => {
                    let geom = l
                        .geometry(i, &in_shape)?
                        .ok_or_else(|| spec_err(format!("layers[{i}]"), "no geometry"))?;
                    built.push(Built::Pool {
                        geom,
                        max: matches!(l, LayerSpec::MaxPooling { .. }),
                    });
                }
                LayerSpec::Flatten => built.push(Built::Flatten {
                    len: shapes[i].iter().product(),
                }),
                LayerSpec::Dropout { .. }
                | LayerSpec::GaussianNoise { .. }
                | LayerSpec::GaussianDropout { .. }
                | LayerSpec::AlphaDropout { .. }
                | LayerSpec::SpatialDropout1D { .. }
                | LayerSpec::SpatialDropout2D { .. }
                | LayerSpec::SpatialDropout3D { .. }
                | LayerSpec::ActivityRegularization { .. } => {
                    let noise = l
                        .noise(&in_shape)
                        .ok_or_else(|| spec_err(format!("layers[{i}]"), "not a noise layer"))?;
                    built.push(Built::Noise {
                        noise,
                        len: shapes[i].iter().product(),
                    });
                }
            }
            in_shape = shapes[i].clone();
        }
        let mut grads = trainable.clone();
        grads.fill(0.0);
        let mut scratch = frozen.clone();
        scratch.fill(0.0);
        let dropout = built.iter().map(|_| DropoutState::new()).collect();
        let mut model = Sequential {
            spec: self.clone(),
            built,
            layer_names: names,
            params: trainable,
            grads,
            frozen,
            scratch,
            in_len: self.input_shape.iter().product(),
            tile: 0,
            bufs: Vec::new(),
            dropout,
            rng,
        };
        let per_sample: usize = model
            .built
            .iter()
            .map(|b| b.z_len() + 2 * b.out_len())
            .sum();
        let mut tile = DEFAULT_TILE;
        while tile > 1 && tile.saturating_mul(per_sample) > TILE_BUDGET_FLOATS {
            tile /= 2;
        }
        model.set_tile(tile);
        Ok(model)
    }
}

impl Sequential {
    /// The model's generator (seeded by [`ModelSpec::build`]; dropout layers without a seed split
    /// their own streams from it the first time they draw). Part of a checkpoint, with
    /// [`Sequential::dropout_generators`].
    pub fn rng(&self) -> &Rng {
        &self.rng
    }

    /// Restores the generator (resuming from a checkpoint).
    pub fn set_rng(&mut self, rng: Rng) {
        self.rng = rng;
    }

    /// Each noise layer's generator (`Dropout`, `GaussianNoise`, `GaussianDropout`,
    /// `AlphaDropout`, `SpatialDropout*`) once it has drawn (`None` for other layers and before):
    /// part of a checkpoint, so that a resumed run draws the noise an uninterrupted one would.
    pub fn dropout_generators(&self) -> Vec<Option<[u64; 2]>> {
        self.dropout.iter().map(DropoutState::generator).collect()
    }

    /// Restores [`Sequential::dropout_generators`] (entries past the model's layers are ignored).
    pub fn set_dropout_generators(&mut self, g: &[Option<[u64; 2]>]) {
        for (state, g) in self.dropout.iter_mut().zip(g) {
            state.set_generator(*g);
        }
    }

    /// The spec the model was built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// Samples per forward/backward pass of a layer (see `microfit_core::Network`'s tile): by
    /// default the largest power of two up to [`DEFAULT_TILE`] whose activations fit in
    /// [`TILE_BUDGET_FLOATS`]. It never changes a result, only the speed and the memory.
    pub fn tile(&self) -> usize {
        self.tile
    }

    /// Sets the tile (at least 1) and sizes the buffers for it.
    pub fn set_tile(&mut self, tile: usize) {
        let tile = tile.max(1);
        self.tile = tile;
        self.bufs = self
            .built
            .iter()
            .map(|b| Buffers {
                z: vec![0.0; tile * b.z_len()],
                y: vec![0.0; tile * b.out_len()],
                dy: vec![0.0; tile * b.out_len()],
                patches: vec![0.0; b.patch_len(tile)],
                patched: false,
            })
            .collect();
    }

    /// Sets weights by variable name (`dense/kernel`, ...).
    ///
    /// # Errors
    /// An unknown name or a wrong number of values.
    /// Frozen layers' weights (`trainable: false`) are set the same way.
    pub fn set_weights(&mut self, named: &[(String, Vec<f32>)]) -> Result<(), SpecError> {
        for (name, values) in named {
            let store = if self.params.index_of(name).is_some() {
                &mut self.params
            } else {
                &mut self.frozen
            };
            let i = store
                .index_of(name)
                .ok_or_else(|| spec_err(name.clone(), "no such variable in the model"))?;
            if store.tensors[i].len() != values.len() {
                return Err(spec_err(
                    name.clone(),
                    format!(
                        "has {} values, the model needs {}",
                        values.len(),
                        store.tensors[i].len()
                    ),
                ));
            }
            store.tensors[i].copy_from_slice(values);
        }
        Ok(())
    }

    /// Every weight in model order (Keras `model.weights`: each layer's kernel then bias,
    /// frozen layers' included), by name.
    pub fn weights(&self) -> Vec<(&str, &[f32])> {
        let mut out = Vec::new();
        for b in &self.built {
            if let Built::Dense {
                cfg, kernel, bias, ..
            }
            | Built::Conv {
                cfg, kernel, bias, ..
            } = b
            {
                let store = if cfg.trainable {
                    &self.params
                } else {
                    &self.frozen
                };
                for &t in &[*kernel, *bias] {
                    out.push((store.names[t].as_str(), &store.tensors[t][..]));
                }
            }
        }
        out
    }

    /// Inference on one sample (no dropout).
    ///
    /// # Errors
    /// A wrong input length.
    pub fn predict(&mut self, x: &[f32]) -> Result<&[f32], SpecError> {
        if x.len() != self.in_len {
            return Err(spec_err(
                "input",
                format!("has {} values, the model expects {}", x.len(), self.in_len),
            ));
        }
        self.forward_tile::<Host>(x, false, None);
        Ok(self.output_rows(1))
    }

    /// Inference on many samples (rows of the input length, one after the other), a tile at a
    /// time: the outputs, one row per sample.
    ///
    /// # Errors
    /// Inputs that are not whole rows.
    pub fn predict_rows(&mut self, x: &[f32]) -> Result<Vec<f32>, SpecError> {
        let il = self.in_len.max(1);
        if !x.len().is_multiple_of(il) {
            return Err(spec_err(
                "input",
                format!("has {} values, not whole rows of {}", x.len(), self.in_len),
            ));
        }
        let mut out = Vec::with_capacity(x.len() / il * self.output_len());
        for chunk in x.chunks(il * self.tile) {
            self.forward_tile::<Host>(chunk, false, None);
            out.extend_from_slice(self.output_rows(chunk.len() / il));
        }
        Ok(out)
    }

    /// The first `n` output rows of the last forward pass.
    fn output_rows(&self, n: usize) -> &[f32] {
        let width = self.output_len();
        self.bufs
            .last()
            .and_then(|b| b.y.get(..n * width))
            .unwrap_or(&[])
    }
}

impl Trainable for Sequential {
    type Params = VecParams;

    fn tile(&self) -> usize {
        self.tile
    }

    fn input_len(&self) -> usize {
        self.in_len
    }

    fn output_len(&self) -> usize {
        self.built.last().map_or(0, Built::out_len)
    }

    fn params(&self) -> &VecParams {
        &self.params
    }

    fn params_mut(&mut self) -> &mut VecParams {
        &mut self.params
    }

    fn weights_and_grads(&mut self) -> (&mut VecParams, &mut VecParams) {
        (&mut self.params, &mut self.grads)
    }

    fn forward_tile<B: Backend>(&mut self, x: &[f32], training: bool, pen: Option<&mut Penalties>) {
        let n = (x.len() / self.in_len.max(1)).min(self.tile);
        let mut ctx = ForwardCtx {
            training,
            rng: Some(&mut self.rng),
            layer: 0,
            penalties: pen,
        };
        for (i, built) in self.built.iter().enumerate() {
            ctx.layer = i;
            let (before, rest) = self.bufs.split_at_mut(i);
            let (Some(b), w) = (rest.first_mut(), built.out_len()) else {
                break;
            };
            let input: &[f32] = match before.last() {
                None => x,
                Some(p) => &p.y[..n * self.built[i - 1].out_len()],
            };
            let (z, y) = (&mut b.z[..], &mut b.y[..n * w]);
            let z = z.get_mut(..n * w).unwrap_or(&mut []);
            // A training pass keeps a conv layer's patches for its backward pass.
            let via = if training && !b.patches.is_empty() {
                b.patched = true;
                conv::Via::Patches(&mut b.patches)
            } else {
                conv::Via::Products
            };
            let t = if built.frozen() {
                &self.frozen.tensors
            } else {
                &self.params.tensors
            };
            let weighted = |kernel: &usize, bias: &usize, z, y| WeightedForward {
                kernel: &t[*kernel],
                bias: &t[*bias],
                x: input,
                z,
                y,
            };
            match built {
                Built::Dense {
                    cfg, kernel, bias, ..
                } => dense::forward::<B, Reg>(cfg, weighted(kernel, bias, z, y), &mut ctx),
                Built::Conv {
                    cfg,
                    geom,
                    kernel,
                    bias,
                } => {
                    conv::forward::<B, Reg>(cfg, geom, weighted(kernel, bias, z, y), &mut ctx, via)
                }
                Built::Pool { geom, max: true } => pool::forward_rows::<Max>(geom, input, y),
                Built::Pool { geom, max: false } => pool::forward_rows::<Average>(geom, input, y),
                Built::Flatten { .. } => flatten::copy(input, y),
                Built::Noise { noise, len } => {
                    let st = &mut self.dropout[i];
                    match noise {
                        NoiseKind::Dropout(c) => {
                            dropout::forward(c, st, input, y, training, ctx.rng.as_deref_mut());
                        }
                        NoiseKind::GaussianNoise(c) => {
                            noise::gaussian_noise_forward(
                                c,
                                st,
                                input,
                                y,
                                training,
                                ctx.rng.as_deref_mut(),
                            );
                        }
                        NoiseKind::GaussianDropout(c) => {
                            noise::gaussian_dropout_forward(
                                c,
                                st,
                                input,
                                y,
                                training,
                                ctx.rng.as_deref_mut(),
                            );
                        }
                        NoiseKind::AlphaDropout(c) => {
                            noise::alpha_dropout_forward(
                                c,
                                st,
                                input,
                                y,
                                training,
                                ctx.rng.as_deref_mut(),
                            );
                        }
                        NoiseKind::Spatial(c, ch) => {
                            let shape = (*len, *ch);
                            noise::spatial_dropout_forward(
                                c,
                                shape,
                                st,
                                input,
                                y,
                                training,
                                ctx.rng.as_deref_mut(),
                            );
                        }
                        NoiseKind::ActivityRegularization(r) => {
                            noise::activity_regularization_forward(r, *len, input, y, &mut ctx);
                        }
                    }
                }
            }
        }
    }

    fn output_activation(&self) -> Activation {
        self.built
            .last()
            .map_or(Activation::Linear, Built::activation)
    }

    fn loss_io(&mut self) -> LossIo<'_> {
        let width = self.output_len();
        let last = self.built.last();
        let Some(b) = self.bufs.last_mut() else {
            return LossIo {
                y: &[],
                logits: None,
                dy: &mut [],
                width,
            };
        };
        let logits = match last {
            Some(Built::Dense { .. }) => Some(&b.z[..]),
            Some(Built::Conv { cfg, geom, .. }) => {
                conv::fused_logits(cfg.activation, geom, &b.z[..])
            }
            _ => None,
        };
        LossIo {
            y: &b.y,
            logits,
            dy: &mut b.dy,
            width,
        }
    }

    fn backward_tile<B: Backend>(&mut self, x: &[f32], dy_is_pre: bool, inv_batch: f32) {
        let n = (x.len() / self.in_len.max(1)).min(self.tile);
        let last = self.built.len().saturating_sub(1);
        // The frozen layers at the start need no backward pass: nothing before them trains
        // (as a typed network skips its frozen first members).
        let skip = self.built.iter().take_while(|b| b.frozen()).count();
        for i in (skip..self.built.len()).rev() {
            let ctx = BackwardCtx {
                inv_batch,
                layer: i,
                dy_is_pre: dy_is_pre && i == last,
                step_input: i == 0,
                input_relu: false,
            };
            let (before, rest) = self.bufs.split_at_mut(i);
            let Some(b) = rest.first_mut() else {
                continue;
            };
            let w = self.built[i].out_len();
            let (input, dx): (&[f32], Option<&mut [f32]>) = match before.last_mut() {
                None => (x, None),
                Some(p) => {
                    let pw = self.built[i - 1].out_len();
                    (&p.y[..n * pw], Some(&mut p.dy[..n * pw]))
                }
            };
            let (y, dy) = (&b.y[..n * w], &mut b.dy[..n * w]);
            match &self.built[i] {
                Built::Dense {
                    cfg, kernel, bias, ..
                }
                | Built::Conv {
                    cfg, kernel, bias, ..
                } => {
                    // A frozen layer's weight gradients go to the scratch and are dropped.
                    let (weights, grads) = if cfg.trainable {
                        (&self.params, &mut self.grads)
                    } else {
                        (&self.frozen, &mut self.scratch)
                    };
                    let (gk, gb) = two_mut(&mut grads.tensors, *kernel, *bias);
                    let io = WeightedBackward {
                        kernel: &weights.tensors[*kernel],
                        grad_kernel: gk,
                        grad_bias: gb,
                        x: input,
                        y,
                        z: b.z.get_mut(..n * w).unwrap_or(&mut []),
                        dy,
                        dx,
                    };
                    match &self.built[i] {
                        Built::Conv { geom, .. } => {
                            // The patches of this input, from the forward pass (once).
                            let via = if std::mem::take(&mut b.patched) {
                                conv::Via::Patches(&mut b.patches)
                            } else {
                                conv::Via::Products
                            };
                            conv::backward::<B, Reg>(cfg, geom, io, &ctx, via)
                        }
                        _ => dense::backward::<B, Reg>(cfg, io, &ctx),
                    }
                }
                Built::Pool { geom, max } => {
                    if let Some(dx) = dx {
                        if *max {
                            pool::backward_rows::<Max>(geom, input, dy, dx);
                        } else {
                            pool::backward_rows::<Average>(geom, input, dy, dx);
                        }
                    }
                }
                Built::Flatten { .. } => {
                    if let Some(dx) = dx {
                        flatten::copy(dy, dx);
                    }
                }
                Built::Noise { noise, len } => {
                    let Some(dx) = dx else {
                        continue;
                    };
                    let st = &self.dropout[i];
                    match noise {
                        NoiseKind::Dropout(c) => dropout::backward(c, st, dy, dx),
                        NoiseKind::GaussianNoise(_) => flatten::copy(dy, dx),
                        NoiseKind::GaussianDropout(c) => {
                            noise::gaussian_dropout_backward(c, st, dy, dx)
                        }
                        NoiseKind::AlphaDropout(c) => noise::alpha_dropout_backward(c, st, dy, dx),
                        NoiseKind::Spatial(c, ch) => {
                            noise::spatial_dropout_backward(c, (*len, *ch), st, dy, dx);
                        }
                        NoiseKind::ActivityRegularization(r) => {
                            noise::activity_regularization_backward(r, *len, y, dy, dx, inv_batch);
                        }
                    }
                }
            }
        }
    }

    fn weight_penalties<B: Backend>(&mut self, with_grads: bool, pen: &mut Penalties) {
        for (i, b) in self.built.iter().enumerate() {
            let Some((cfg, cols, kernel, bias)) = b.penalised() else {
                continue;
            };
            let g = if with_grads {
                Some(two_mut(&mut self.grads.tensors, kernel, bias))
            } else {
                None
            };
            let t = &self.params.tensors;
            dense::weight_penalties(cfg, &t[kernel], &t[bias], g, cols, i, pen);
        }
    }

    fn weight_penalties_sq<B: Backend>(&mut self, pen: &mut Penalties, sq: &mut SumSqs) {
        for (i, b) in self.built.iter().enumerate() {
            let Some((cfg, cols, kernel, bias)) = b.penalised() else {
                continue;
            };
            // The bias is the kernel's next tensor (`Sequential::build`); otherwise no sums.
            if bias != kernel + 1 {
                let g = Some(two_mut(&mut self.grads.tensors, kernel, bias));
                let t = &self.params.tensors;
                dense::weight_penalties(cfg, &t[kernel], &t[bias], g, cols, i, pen);
                continue;
            }
            let g = two_mut(&mut self.grads.tensors, kernel, bias);
            let t = &self.params.tensors;
            let sq = (kernel, &mut *sq);
            dense::weight_penalties_sq::<B, Reg>(cfg, &t[kernel], &t[bias], g, cols, i, sq, pen);
        }
    }

    fn zero_grads(&mut self) {
        self.grads.fill(0.0);
    }

    fn has_activity_penalties(&self) -> bool {
        self.built.iter().any(|b| match b {
            Built::Dense { cfg, .. } | Built::Conv { cfg, .. } => {
                cfg.activity_regularizer.is_some()
            }
            Built::Noise {
                noise: NoiseKind::ActivityRegularization(_),
                ..
            } => true,
            _ => false,
        })
    }

    fn apply_constraints(&mut self) {
        for b in &self.built {
            if let Built::Dense {
                cfg, kernel, bias, ..
            }
            | Built::Conv {
                cfg, kernel, bias, ..
            } = b
                && cfg.trainable
                && (cfg.kernel_constraint.is_some() || cfg.bias_constraint.is_some())
            {
                let p = &mut self.params;
                let (k, bt) = two_mut(&mut p.tensors, *kernel, *bias);
                cfg.apply_constraints(k, &p.shapes[*kernel], bt);
            }
        }
    }
}

fn two_mut(v: &mut [Vec<f32>], a: usize, b: usize) -> (&mut [f32], &mut [f32]) {
    let (lo, hi) = v.split_at_mut(b);
    (&mut lo[a][..], &mut hi[0][..])
}

/// Convenience: the `Initializer` used for kernels by default.
pub const DEFAULT_KERNEL_INITIALIZER: Initializer = Initializer::GlorotUniform;

//! Training on the host: the core's one engine ([`microfit_core::train`]) on the [`Host`]
//! backend, with an epoch's samples gathered in their shuffled order first, so that the engine
//! sees contiguous rows and runs whole tiles (a shuffled index list would make it go one sample
//! at a time). Gathering changes no bit: the same samples reach the same steps in the same
//! order.
//!
//! ```
//! use microfit::core::prelude::*;
//! use microfit::fit::{HostTrainer, Shuffled, fit_epoch};
//! type M = (Dense<2, 8>, Dense<8, 2>);
//! let layers: M = (Dense::new(Activation::Relu), Dense::new(Activation::Softmax));
//! let net = Network::<M, 8>::new_tiled(layers, 1)?;
//! let opt = Adam::new(0.01, &net.params)?;
//! let mut t = HostTrainer::with_backend(net, opt, Loss::SparseCategoricalCrossentropy { from_logits: false });
//! let x = [0.0f32, 1.0, 1.0, 0.0, 0.5, 0.5];
//! let data = Samples::new(&x, 2, Targets::Classes(&[0, 1, 1]))?;
//! let mut scratch = Shuffled::default();
//! let rep = fit_epoch(&mut t, &data, 2, Some(&[2, 0, 1]), &mut scratch)?;
//! assert_eq!(rep.metrics.samples, 3);
//! # Ok::<(), microfit::core::Error>(())
//! ```

use microfit_core::error::Error;
use microfit_core::loss::Target;
use microfit_core::optim::Optimizer;
use microfit_core::train::{EpochReport, Samples, Targets, Trainable, Trainer};

use crate::host::Host;

/// A [`Trainer`] on the [`Host`] backend.
pub type HostTrainer<M, O> = Trainer<M, O, Host>;

/// Buffers for an epoch's samples in training order (kept between epochs: no allocation after
/// the first).
#[derive(Debug, Default, Clone)]
pub struct Shuffled {
    x: Vec<f32>,
    classes: Vec<u32>,
    dense: Vec<f32>,
    weights: Vec<f32>,
}

impl Shuffled {
    /// The samples `order` of `samples`, in that order, as one contiguous sample set.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for an index past the end.
    pub fn gather<'a>(
        &'a mut self,
        samples: &Samples<'_>,
        order: &[u32],
    ) -> Result<Samples<'a>, Error> {
        let n_in = samples.input_len();
        self.x.clear();
        self.classes.clear();
        self.dense.clear();
        self.weights.clear();
        let mut width = 0;
        for &i in order {
            let i = i as usize;
            if i >= samples.len() {
                return Err(Error::ShapeMismatch {
                    what: "sample index",
                    expected: samples.len() as u32,
                    found: i as u32,
                });
            }
            self.x.extend_from_slice(samples.input(i));
            if samples.sample_weights().is_some() {
                self.weights.push(samples.weight(i));
            }
            match samples.target(i) {
                Target::Class(k) => self.classes.push(k),
                Target::Dense(t) => {
                    width = t.len();
                    self.dense.extend_from_slice(t);
                }
            }
        }
        let targets = match samples.targets() {
            Targets::Classes(_) => Targets::Classes(&self.classes),
            Targets::Dense { width: w, .. } => Targets::Dense {
                values: &self.dense,
                width: if order.is_empty() { w } else { width },
            },
        };
        let gathered = Samples::new(&self.x, n_in, targets)?;
        match samples.sample_weights() {
            Some(_) => gathered.with_sample_weights(&self.weights),
            None => Ok(gathered),
        }
    }
}

/// One epoch of `trainer` on `samples` in mini-batches of `batch_size`, in `order` when given
/// (gathered into `scratch` first) or in file order: the core's [`Trainer::fit_epoch`] on the
/// [`Host`] backend, with the bits of training on the index list itself.
///
/// # Errors
/// As [`Trainer::fit_epoch`].
pub fn fit_epoch<M: Trainable, O: Optimizer<M::Params>>(
    trainer: &mut HostTrainer<M, O>,
    samples: &Samples<'_>,
    batch_size: usize,
    order: Option<&[u32]>,
    scratch: &mut Shuffled,
) -> Result<EpochReport, Error> {
    match order {
        Some(order) => {
            let gathered = scratch.gather(samples, order)?;
            trainer.fit_epoch(&gathered, batch_size, None)
        }
        None => trainer.fit_epoch(samples, batch_size, None),
    }
}

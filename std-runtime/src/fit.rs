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
    /// The CLI gathers every epoch inside its timed steps: the buffers keep their length from
    /// one epoch to the next (an epoch's order has the same length), so each row is one
    /// fixed-length copy into place — no capacity check or length update per row.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for an index past the end.
    pub fn gather<'a>(
        &'a mut self,
        samples: &Samples<'_>,
        order: &[u32],
    ) -> Result<Samples<'a>, Error> {
        let n = samples.len();
        if let Some(&i) = order.iter().find(|&&i| i as usize >= n) {
            return Err(Error::ShapeMismatch {
                what: microfit_core::error::ShapeOf::SampleIndex,
                expected: n as u32,
                found: i,
            });
        }
        // `Samples::new` made `input_len` and a dense width nonzero and the slices exactly `n`
        // rows long, so every `get` below is `Some`; `None` would be a bug, reported as the
        // row that is missing rather than a panic.
        let missing = |i: u32| Error::ShapeMismatch {
            what: microfit_core::error::ShapeOf::SampleRow,
            expected: n as u32,
            found: i,
        };
        let n_in = samples.input_len();
        let x = samples.inputs(0, n);
        self.x.resize(order.len() * n_in, 0.0);
        for (dst, &i) in self.x.chunks_exact_mut(n_in.max(1)).zip(order) {
            let a = i as usize * n_in;
            dst.copy_from_slice(x.get(a..a + n_in).ok_or_else(|| missing(i))?);
        }
        match samples.sample_weights() {
            Some(_) => {
                self.weights.resize(order.len(), 0.0);
                for (dst, &i) in self.weights.iter_mut().zip(order) {
                    *dst = samples.weight(i as usize);
                }
            }
            None => self.weights.clear(),
        }
        let targets = match samples.targets() {
            Targets::Classes(c) => {
                self.dense.clear();
                self.classes.resize(order.len(), 0);
                for (dst, &i) in self.classes.iter_mut().zip(order) {
                    *dst = *c.get(i as usize).ok_or_else(|| missing(i))?;
                }
                Targets::Classes(&self.classes)
            }
            Targets::Dense { values, width } => {
                self.classes.clear();
                self.dense.resize(order.len() * width, 0.0);
                for (dst, &i) in self.dense.chunks_exact_mut(width.max(1)).zip(order) {
                    let a = i as usize * width;
                    dst.copy_from_slice(values.get(a..a + width).ok_or_else(|| missing(i))?);
                }
                Targets::Dense {
                    values: &self.dense,
                    width,
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows, targets and weights of `order`, by hand; the buffers reused across calls of
    /// different lengths and target kinds keep nothing of the previous call.
    #[test]
    fn gather_copies_the_rows_of_the_order() {
        let x = [0.0f32, 1.0, 10.0, 11.0, 20.0, 21.0];
        let classes = [7u32, 8, 9];
        let w = [0.5f32, 1.5, 2.5];
        let data = Samples::new(&x, 2, Targets::Classes(&classes))
            .unwrap()
            .with_sample_weights(&w)
            .unwrap();
        let mut s = Shuffled::default();
        let g = s.gather(&data, &[2, 0, 2, 1]).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(
            g.inputs(0, 4),
            [20.0, 21.0, 0.0, 1.0, 20.0, 21.0, 10.0, 11.0]
        );
        assert!(matches!(g.targets(), Targets::Classes(c) if c == [9, 7, 9, 8]));
        assert_eq!(g.sample_weights(), Some(&[2.5f32, 0.5, 2.5, 1.5][..]));

        let dense = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let data = Samples::new(
            &x,
            2,
            Targets::Dense {
                values: &dense,
                width: 2,
            },
        )
        .unwrap();
        let g = s.gather(&data, &[1, 0]).unwrap();
        assert_eq!(g.inputs(0, 2), [10.0, 11.0, 0.0, 1.0]);
        assert!(matches!(
            g.targets(),
            Targets::Dense { values, width: 2 } if values == [3.0, 4.0, 1.0, 2.0]
        ));
        assert_eq!(g.sample_weights(), None);

        assert!(matches!(
            s.gather(&data, &[0, 3]),
            Err(Error::ShapeMismatch {
                what: microfit_core::error::ShapeOf::SampleIndex,
                expected: 3,
                found: 3
            })
        ));
    }
}

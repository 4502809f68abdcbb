//! What a workload needs on a chip: RAM for the training state, flash for the data, the
//! initial weights and the code.

use crate::{LayerKind, Optimizer, Targets, Workload};

/// Bytes a training run needs besides its arrays: the stack frames of a step (measured: 0.5 KB
/// for W1, 0.7 KB for W2 on a Cortex-M4F) with some room.
pub const STACK_BYTES: usize = 1536;
/// Flash for the program itself (measured: 12 to 40 KB on the Cortex-M0, M4F and RV32 builds,
/// the soft-float M0 being the largest) with some room.
pub const CODE_BYTES: usize = 48 * 1024;

/// The memory of a training run (see [`Memory::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Trainable scalars.
    pub params: usize,
    /// Scalars of the frozen layers (constants in flash, no RAM).
    pub frozen: usize,
    /// Optimizer slots per parameter (Adam 2, momentum 1, SGD 0).
    pub slots: usize,
    /// Activation values kept for one sample (each layer's outputs, their gradients, and the
    /// pre-activations of the layers with weights).
    pub activations: usize,
    /// Bytes of the dataset in flash (inputs and targets).
    pub dataset_bytes: usize,
}

impl Memory {
    /// The memory of `w`.
    pub fn of(w: &Workload) -> Self {
        let activations = w
            .layers
            .iter()
            .map(|l| {
                let out: usize = l.output.iter().product();
                match l.kind {
                    LayerKind::Dense(_) | LayerKind::Conv { .. } => 3 * out,
                    _ => 2 * out,
                }
            })
            .sum();
        let slots = match w.training.optimizer {
            Optimizer::Adam { .. } => 2,
            Optimizer::Sgd { momentum, .. } if momentum != 0.0 => 1,
            Optimizer::Sgd { .. } => 0,
        };
        let targets = match &w.targets {
            Targets::Classes { labels, .. } => labels.len() * 4,
            Targets::Dense { values, .. } => values.len() * 4,
        };
        Memory {
            params: w.params(),
            frozen: w.frozen_params(),
            slots,
            activations,
            dataset_bytes: w.x.len() * 4 + targets,
        }
    }

    /// Bytes of the training state in RAM: weights, gradients, optimizer slots, activations.
    pub fn state_bytes(&self) -> usize {
        4 * (self.params * (2 + self.slots) + self.activations)
    }

    /// RAM a training run needs: the state and [`STACK_BYTES`].
    pub fn ram_bytes(&self) -> usize {
        self.state_bytes() + STACK_BYTES
    }

    /// Flash a training run needs: the dataset, the initial (and frozen) weights and
    /// [`CODE_BYTES`].
    pub fn flash_bytes(&self) -> usize {
        self.dataset_bytes + 4 * (self.params + self.frozen) + CODE_BYTES
    }

    /// `Ok` when the run fits `ram` and `flash` bytes; otherwise what does not fit, with the
    /// numbers.
    ///
    /// ```
    /// use microfit_workload::Memory;
    /// let m = Memory { params: 2410, frozen: 0, slots: 2, activations: 126, dataset_bytes: 52_000 };
    /// assert!(m.check("W2", 128 * 1024, 512 * 1024).is_ok());
    /// let e = m.check("W2", 16 * 1024, 256 * 1024).unwrap_err();
    /// assert!(e.contains("needs 40600 B of RAM"), "{e}");
    /// ```
    ///
    /// # Errors
    /// A message naming the workload, what it needs and what the chip has.
    pub fn check(&self, name: &str, ram: usize, flash: usize) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.ram_bytes() > ram {
            problems.push(format!(
                "needs {} B of RAM (weights, gradients and {} optimizer slot(s): {} × {} B = {} B; \
                 activations {} B; stack ~{} B) but the chip has {} B",
                self.ram_bytes(),
                self.slots,
                2 + self.slots,
                4 * self.params,
                4 * self.params * (2 + self.slots),
                4 * self.activations,
                STACK_BYTES,
                ram
            ));
        }
        if self.flash_bytes() > flash {
            problems.push(format!(
                "needs {} B of flash (dataset {} B, initial weights {} B, code ~{} B) but the chip \
                 has {} B",
                self.flash_bytes(),
                self.dataset_bytes,
                4 * (self.params + self.frozen),
                CODE_BYTES,
                flash
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "workload {name} does not fit: {}",
                problems.join("; ")
            ))
        }
    }
}

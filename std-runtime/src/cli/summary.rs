//! `microfit summary`: Keras' `model.summary()` before training, and the memory training the
//! model takes on a microcontroller.

use std::path::PathBuf;

use clap::Args;

use super::out::text;
use microfit_core::loss::Loss;

use super::{CliError, CommonArgs, EXIT_OK, Imported, KernelArgs};
use crate::model::ModelSpec;
use crate::modelfile::ModelFile;
use crate::spec::{DataShape, TrainConfig};
use crate::train_run::{data_shape, load_dataset};

/// `microfit summary` flags.
#[derive(Debug, Clone, Args)]
pub struct SummaryArgs {
    /// A trained model (model.mfit or a .keras file) instead of a spec
    #[arg(long, value_name = "FILE", conflicts_with_all = ["spec", "keras_config"])]
    pub model: Option<PathBuf>,
    /// The model as `train` would build it: --spec, --keras-config, --hidden, --data, ...
    #[command(flatten)]
    pub common: CommonArgs,
    /// Kernel regularizer factors.
    #[command(flatten)]
    pub kernel: KernelArgs,
}

/// The data shape a complete model implies (its input and output sizes), when no data is given:
/// `None` when the model does not say (a spec without layers or input shape).
fn shape_of(model: &ModelSpec, loss: Option<Loss>) -> Option<DataShape> {
    let shapes = model.shapes().ok()?;
    let out: usize = shapes.last()?.iter().product();
    let regression = loss.is_some_and(|l| !l.is_classification());
    let binary = matches!(loss, Some(Loss::BinaryCrossentropy { .. }));
    Some(DataShape {
        n_features: model.input_shape.iter().product(),
        n_classes: if regression {
            None
        } else if out == 1 && binary {
            Some(2)
        } else {
            Some(out)
        },
    })
}

/// The configuration the flags describe (loading the data only when the model needs its shape).
fn config(a: &SummaryArgs) -> Result<TrainConfig, CliError> {
    let imported = match &a.common.keras_config {
        Some(p) => Some(Imported::keras_config(p)?),
        None => None,
    };
    let (spec, name) = super::spec_with_flags(&a.common, imported.as_ref())?;
    let overrides = super::overrides(&a.common, a.kernel.l1, a.kernel.l2);
    let imported = imported.map(|m| m.model);
    let complete = match &imported {
        Some(m) => Some(m.clone()),
        None => spec.listed_model(&name)?,
    };
    let shape = match complete.as_ref().and_then(|m| shape_of(m, spec.loss)) {
        Some(s) if a.common.data.is_none() => s,
        _ => data_shape(&load_dataset(&spec.data_config(&name)?).map_err(CliError::from_run)?),
    };
    Ok(spec.resolve(&name, &shape, imported, &overrides)?)
}

/// Runs `microfit summary`.
///
/// # Errors
/// A bad spec, Keras config or model file.
pub fn run(a: &SummaryArgs) -> Result<u8, CliError> {
    let cfg = match &a.model {
        Some(p) => {
            if a.common.any_setting() || a.kernel.any() {
                return Err(CliError::usage(
                    "--model describes a trained model; it takes no other settings",
                ));
            }
            ModelFile::open(p)?.config(p)?
        }
        None => config(a)?,
    };
    let model = cfg
        .model
        .build(cfg.seed)
        .map_err(|e| CliError::new(e.to_string()))?;
    let optimizer = cfg
        .optimizer
        .build(&model.params)
        .map_err(|e| CliError::new(e.to_string()))?;
    let slots = optimizer.slots();
    let s = crate::summary::summary(&model, slots, cfg.optimizer.kind.name())
        .map_err(|e| CliError::new(e.to_string()))?;
    text(&s)?;
    Ok(EXIT_OK)
}

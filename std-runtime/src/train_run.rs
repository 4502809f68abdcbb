//! The training driver: data preparation, epochs with shuffling, validation, Keras-style early
//! stopping, TerminateOnNaN, per-epoch atomic checkpoints and resume.
//!
//! * **Data**: the dataset is split (seeded, stratified by default), the scaler is fitted on the
//!   training part only and applied to every part.
//! * **Epochs**: Keras `fit(shuffle=True)`: epoch `e` visits the training samples in the order
//!   [`crate::data::epoch_order`]`(n, seed, e)`, so a resumed run sees exactly the batches an
//!   uninterrupted run would, and ends with the same bits.
//! * **Validation**: after each epoch, Keras-style evaluation on the validation set (`val_loss`
//!   includes the weight penalties and the activity penalties of the validation batches).
//! * **Early stopping**: Keras' `EarlyStopping` logic on `val_loss` (or `loss`), with
//!   `patience`, `min_delta` and `restore_best_weights` (weights are restored only when training
//!   stops early, as in Keras).
//! * **TerminateOnNaN**: a step whose loss or gradient is not finite is refused by the core
//!   (weights untouched); training stops, the model goes back to the state at the end of the
//!   last complete epoch (the last checkpoint, which is not overwritten), and the outcome says
//!   why ([`StopReason::NonFinite`]).
//! * **Checkpoints**: after every epoch, the whole state (weights, optimizer slots and
//!   iteration count, history, early-stopping state, the `Dropout` layers' random generator) is
//!   written atomically. A resumed run ends with the same bits as an uninterrupted one, with or
//!   without dropout. (A version-1 checkpoint has no generator state: resuming one with
//!   `Dropout` layers draws other masks than the interrupted run would have.)

use std::fmt;
use std::path::{Path, PathBuf};

use microfit_core::optim::AnyOptimizer;
use microfit_core::train::{EpochReport, Samples, Targets, evaluate};

use crate::fit::{HostTrainer, Shuffled, fit_epoch};
use crate::host::Host;
use microfit_core::{Error as CoreError, Loss};

use crate::data::{
    DataError, Dataset, LoadOptions, Scaler, SplitSpec, Target, epoch_order, load_source_with,
    split,
};
use crate::history::epoch_row;
use crate::model::{Sequential, VecParams};
use crate::modelfile::{
    DataInfo, EarlyStoppingState, ModelFile, ModelFileError, OptimizerState, Progress, fingerprint,
};
use crate::spec::{DataConfig, DataShape, SpecError, TrainConfig};

/// Anything that stops a run before or during training (except a non-finite loss, which is a
/// [`StopReason`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// Bad data.
    Data(DataError),
    /// Bad spec.
    Spec(SpecError),
    /// Bad model or checkpoint file.
    ModelFile(ModelFileError),
    /// A file could not be written or read.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The core refused a step for another reason than a non-finite value.
    Training {
        /// 0-based epoch.
        epoch: u32,
        /// The core's error.
        source: CoreError,
    },
    /// Anything else, with its message.
    Other(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Data(e) => e.fmt(f),
            RunError::Spec(e) => e.fmt(f),
            RunError::ModelFile(e) => e.fmt(f),
            RunError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            RunError::Training { epoch, source } => write!(f, "epoch {}: {source}", epoch + 1),
            RunError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}

impl From<DataError> for RunError {
    fn from(e: DataError) -> Self {
        RunError::Data(e)
    }
}

impl From<SpecError> for RunError {
    fn from(e: SpecError) -> Self {
        RunError::Spec(e)
    }
}

impl From<ModelFileError> for RunError {
    fn from(e: ModelFileError) -> Self {
        RunError::ModelFile(e)
    }
}

/// Loads the dataset a [`DataConfig`] names (bundled name or CSV path).
///
/// # Errors
/// The loader's [`DataError`] (file, line, column).
pub fn load_dataset(cfg: &DataConfig) -> Result<Dataset, RunError> {
    let src = cfg.source.trim();
    if crate::data::Bundled::from_name(src).is_none() && !Path::new(src).exists() {
        return Err(RunError::Other(format!(
            "{src}: no such file, and not a bundled dataset (iris, digits, wine, breast_cancer)"
        )));
    }
    let opts = LoadOptions::default()
        .with_label(cfg.label_column())
        .with_task(cfg.task);
    Ok(load_source_with(&cfg.source, &opts)?)
}

/// The shape a spec is resolved against.
pub fn data_shape(d: &Dataset) -> DataShape {
    DataShape {
        n_features: d.n_features(),
        n_classes: d.is_classification().then(|| d.n_classes()),
    }
}

/// Inputs and targets of one part, ready for the core.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSet {
    /// Scaled features, row-major.
    pub x: Vec<f32>,
    /// Features per sample.
    pub n_features: usize,
    /// Class labels (classification, except binary cross-entropy on one unit).
    pub classes: Vec<u32>,
    /// Dense targets (regression values, or 0/1 labels for one-unit binary cross-entropy).
    pub dense: Vec<f32>,
}

impl SampleSet {
    /// Builds the set for `loss` and a model with `n_outputs` outputs.
    pub fn new(d: &Dataset, loss: Loss, n_outputs: usize) -> SampleSet {
        let (classes, dense) = match &d.target {
            Target::Classes { labels, .. } => {
                if matches!(loss, Loss::BinaryCrossentropy { .. }) && n_outputs == 1 {
                    (Vec::new(), labels.iter().map(|&l| l as f32).collect())
                } else {
                    (labels.clone(), Vec::new())
                }
            }
            Target::Regression { values } => (Vec::new(), values.clone()),
        };
        SampleSet {
            x: d.features.clone(),
            n_features: d.n_features(),
            classes,
            dense,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.len() / self.n_features.max(1)
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The core's view.
    ///
    /// # Errors
    /// [`CoreError::ShapeMismatch`] if the parts disagree (they do not when built by [`new`](Self::new)).
    pub fn samples(&self) -> Result<Samples<'_>, CoreError> {
        let t = if self.dense.is_empty() && !self.classes.is_empty() {
            Targets::Classes(&self.classes)
        } else if self.dense.is_empty() {
            Targets::Classes(&[])
        } else {
            Targets::Dense {
                values: &self.dense,
                width: 1,
            }
        };
        Samples::new(&self.x, self.n_features, t)
    }
}

/// A dataset split, scaled and described.
#[derive(Debug, Clone)]
pub struct PreparedData {
    /// What the data is (stored in model files).
    pub info: DataInfo,
    /// The scaler fitted on the training part.
    pub scaler: Scaler,
    /// Training part.
    pub train: SampleSet,
    /// Validation part.
    pub validation: Option<SampleSet>,
    /// Test part.
    pub test: Option<SampleSet>,
}

/// Fingerprint of a whole dataset.
pub fn dataset_fingerprint(d: &Dataset) -> u64 {
    match &d.target {
        Target::Classes { labels, .. } => fingerprint(&d.features, labels, &[]),
        Target::Regression { values } => fingerprint(&d.features, &[], values),
    }
}

/// Splits `d` as `cfg` says, fits the scaler on the training part and scales every part.
///
/// # Errors
/// Split errors (too few samples, a class too small for a stratified split, ...).
pub fn prepare(d: &Dataset, cfg: &TrainConfig) -> Result<PreparedData, RunError> {
    let parts = split(
        d,
        SplitSpec {
            validation: cfg.split.validation,
            test: cfg.split.test,
            seed: cfg.seed,
            stratify: cfg.split.stratify,
        },
    )?;
    let scaler = Scaler::fit(&parts.train, cfg.scaling);
    let n_out = cfg.n_outputs();
    let mut make = |mut part: Dataset| -> Result<SampleSet, RunError> {
        scaler.transform(&mut part)?;
        Ok(SampleSet::new(&part, cfg.loss, n_out))
    };
    let train = make(parts.train)?;
    let validation = parts.validation.map(&mut make).transpose()?;
    let test = parts.test.map(&mut make).transpose()?;
    let info = DataInfo {
        source: cfg.data.source.clone(),
        label: cfg.data.label.clone(),
        name: d.name.clone(),
        feature_names: d.feature_names.clone(),
        target_name: d.target_name.clone(),
        class_names: d.class_names().to_vec(),
        classification: d.is_classification(),
        n_samples: d.n_samples() as u64,
        fingerprint: dataset_fingerprint(d),
    };
    Ok(PreparedData {
        info,
        scaler,
        train,
        validation,
        test,
    })
}

/// Why training ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// Every epoch ran.
    Completed,
    /// Keras `EarlyStopping` stopped it.
    EarlyStopped {
        /// 0-based epoch at which it stopped.
        epoch: u32,
        /// 0-based best epoch.
        best_epoch: u32,
        /// Whether the best weights were restored.
        restored: bool,
    },
    /// A step's loss or gradient was NaN or infinite (TerminateOnNaN).
    NonFinite {
        /// 0-based epoch during which it happened.
        epoch: u32,
        /// The core's error.
        error: CoreError,
    },
}

impl StopReason {
    /// A one-line description for people.
    pub fn describe(&self) -> String {
        match self {
            StopReason::Completed => "completed all epochs".into(),
            StopReason::EarlyStopped {
                epoch,
                best_epoch,
                restored,
            } => format!(
                "early stopping at epoch {}; best epoch {}{}",
                epoch + 1,
                best_epoch + 1,
                if *restored {
                    " (its weights were restored)"
                } else {
                    ""
                }
            ),
            StopReason::NonFinite { epoch, error } => format!(
                "stopped during epoch {}: {error} (TerminateOnNaN); the model is the one at the end of epoch {}",
                epoch + 1,
                epoch
            ),
        }
    }

    /// A short machine-readable tag: `completed`, `early_stopping`, `non_finite_loss`.
    pub fn tag(&self) -> &'static str {
        match self {
            StopReason::Completed => "completed",
            StopReason::EarlyStopped { .. } => "early_stopping",
            StopReason::NonFinite { .. } => "non_finite_loss",
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained model (last good state; best weights when restored).
    pub model: Sequential,
    /// The optimizer with its state.
    pub optimizer: AnyOptimizer<VecParams>,
    /// Epochs, history, early-stopping state.
    pub progress: Progress,
    /// Why training ended.
    pub stop: StopReason,
    /// Epochs already done when this run started (`Some` when resumed).
    pub resumed_at: Option<u32>,
}

/// Called as training goes (progress bars, JSON lines).
pub trait EpochObserver {
    /// Before the first epoch of this run: `first` epochs are already done, of `total`.
    fn on_start(&mut self, _first: u32, _total: u32) {}
    /// After each epoch (0-based) with its history row.
    fn on_epoch(&mut self, _epoch: u32, _total: u32, _row: &[(String, f32)]) {}
    /// A notable event (`Epoch 12: early stopping`).
    fn on_event(&mut self, _message: &str) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl EpochObserver for Silent {}

/// Everything of a model file except the weights, the optimizer and the progress.
#[derive(Debug, Clone)]
pub struct FileBase {
    /// The spec used (TOML).
    pub spec_toml: String,
    /// The data.
    pub data: DataInfo,
    /// The scaler.
    pub scaler: Scaler,
}

impl FileBase {
    /// A full model file for the given state.
    pub fn snapshot(
        &self,
        model: &Sequential,
        opt: &AnyOptimizer<VecParams>,
        progress: &Progress,
    ) -> ModelFile {
        ModelFile {
            spec_toml: self.spec_toml.clone(),
            data: self.data.clone(),
            scaler: self.scaler.clone(),
            weights: model.params.clone(),
            optimizer: OptimizerState::capture(opt),
            progress: progress.clone(),
            rng: Some(model.rng().to_parts()),
            dropout_rngs: model.dropout_generators(),
        }
    }
}

/// Keras `EarlyStopping.on_epoch_end`; returns true when training must stop.
fn early_stopping_step(
    es: &crate::spec::EarlyStopping,
    st: &mut EarlyStoppingState,
    epoch: u32,
    current: f32,
    model: &mut Sequential,
) -> bool {
    if es.restore_best_weights && st.best_weights.is_none() {
        st.best_weights = Some(model.params.tensors.clone());
        st.best_epoch = epoch;
    }
    st.wait += 1;
    // Keras: `monitor_op(current - min_delta, best)` with `less` for a loss.
    if current - es.min_delta < st.best {
        st.best = current;
        st.best_epoch = epoch;
        if es.restore_best_weights {
            st.best_weights = Some(model.params.tensors.clone());
        }
        st.wait = 0;
        return false;
    }
    if st.wait >= es.patience && epoch > 0 {
        st.stopped_epoch = Some(epoch);
        if es.restore_best_weights
            && let Some(w) = &st.best_weights
        {
            model.params.tensors.clone_from(w);
        }
        return true;
    }
    false
}

/// Evaluates `model` on a part (Keras `evaluate`).
///
/// # Errors
/// The core's error (shape or label problems).
pub fn evaluate_set(
    model: &mut Sequential,
    loss: Loss,
    set: &SampleSet,
    batch_size: u32,
) -> Result<EpochReport, CoreError> {
    let s = set.samples()?;
    evaluate::<Host, _>(model, loss, &s, batch_size.max(1) as usize)
}

/// Trains `cfg.model` on `data` (see the module docs).
///
/// * `resume`: a checkpoint to continue from (its weights, optimizer state and progress).
/// * `checkpoint`: where to write the state after every epoch, with `base` for the rest.
///
/// # Errors
/// A [`RunError`] for a problem that is not a non-finite loss (those end in
/// [`StopReason::NonFinite`]); a checkpoint that cannot be written is an error.
pub fn train(
    cfg: &TrainConfig,
    data: &PreparedData,
    resume: Option<&ModelFile>,
    checkpoint: Option<(&Path, &FileBase)>,
    obs: &mut dyn EpochObserver,
) -> Result<TrainOutcome, RunError> {
    let mut model = cfg
        .model
        .build(cfg.seed)
        .map_err(|e| RunError::Other(format!("model: {e}")))?;
    let mut optimizer = cfg
        .optimizer
        .build(&model.params)
        .map_err(|e| RunError::Other(format!("optimizer: {e}")))?;
    let mut progress = Progress::default();
    let mut resumed_at = None;
    if let Some(file) = resume {
        if file.weights.names != model.params.names || file.weights.shapes != model.params.shapes {
            return Err(RunError::Other(
                "the checkpoint's weights do not fit the model of its spec".into(),
            ));
        }
        model.params.tensors.clone_from(&file.weights.tensors);
        file.optimizer
            .restore(&mut optimizer)
            .map_err(|e| RunError::Other(format!("checkpoint: {e}")))?;
        progress = file.progress.clone();
        if let Some(parts) = file.rng {
            model.set_rng(microfit_core::rng::Rng::from_parts(parts));
        }
        model.set_dropout_generators(&file.dropout_rngs);
        resumed_at = Some(progress.epochs_done);
    }
    if cfg.early_stopping.is_some() && progress.early_stopping.is_none() {
        progress.early_stopping = Some(EarlyStoppingState {
            best: f32::INFINITY,
            ..EarlyStoppingState::default()
        });
    }
    if progress.epochs_done >= cfg.epochs {
        progress.finished = true;
    }
    let classification = data.info.classification;
    let train_samples = data.train.samples().map_err(|e| RunError::Training {
        epoch: 0,
        source: e,
    })?;
    let n = data.train.len();
    let bs = cfg.batch_size.max(1) as usize;
    let mut trainer = HostTrainer::with_backend(model, optimizer, cfg.loss);
    let mut scratch = Shuffled::default();
    let mut stop = StopReason::Completed;
    if let Some(st) = progress
        .early_stopping
        .as_ref()
        .and_then(|s| s.stopped_epoch)
    {
        stop = StopReason::EarlyStopped {
            epoch: st,
            best_epoch: progress.early_stopping.as_ref().map_or(0, |s| s.best_epoch),
            restored: cfg.early_stopping.is_some_and(|e| e.restore_best_weights),
        };
    }
    obs.on_start(progress.epochs_done, cfg.epochs);
    let mut epoch = progress.epochs_done;
    while !progress.finished && epoch < cfg.epochs {
        let order: Vec<u32> = epoch_order(n, cfg.seed, u64::from(epoch))
            .into_iter()
            .map(|i| i as u32)
            .collect();
        let before = (
            trainer.model.params.tensors.clone(),
            trainer.optimizer.clone(),
            trainer.model.rng().clone(),
            trainer.model.dropout_generators(),
        );
        let rep = match fit_epoch(&mut trainer, &train_samples, bs, Some(&order), &mut scratch) {
            Ok(r) => r,
            Err(e @ (CoreError::NonFiniteLoss | CoreError::NonFiniteGradient { .. })) => {
                // TerminateOnNaN: back to the last good state (the last checkpoint).
                trainer.model.params.tensors = before.0;
                trainer.optimizer = before.1;
                trainer.model.set_rng(before.2);
                trainer.model.set_dropout_generators(&before.3);
                obs.on_event(&format!(
                    "Epoch {}: invalid loss, terminating training ({e})",
                    epoch + 1
                ));
                stop = StopReason::NonFinite { epoch, error: e };
                break;
            }
            Err(e) => return Err(RunError::Training { epoch, source: e }),
        };
        let val = match &data.validation {
            Some(v) => Some(
                evaluate_set(&mut trainer.model, cfg.loss, v, cfg.batch_size)
                    .map_err(|e| RunError::Training { epoch, source: e })?,
            ),
            None => None,
        };
        let row = epoch_row(
            &rep,
            val.as_ref(),
            &trainer.model.layer_names,
            classification,
        );
        progress.history.push_epoch(&row);
        progress.epochs_done = epoch + 1;
        let mut stopped = false;
        if let (Some(es), Some(st)) = (&cfg.early_stopping, progress.early_stopping.as_mut()) {
            let current = if es.monitor_val {
                val.as_ref().map_or(rep.loss, |v| v.loss)
            } else {
                rep.loss
            };
            if early_stopping_step(es, st, epoch, current, &mut trainer.model) {
                stopped = true;
                stop = StopReason::EarlyStopped {
                    epoch,
                    best_epoch: st.best_epoch,
                    restored: es.restore_best_weights && st.best_weights.is_some(),
                };
            }
        }
        if stopped || progress.epochs_done >= cfg.epochs {
            progress.finished = true;
        }
        obs.on_epoch(epoch, cfg.epochs, &row);
        if let StopReason::EarlyStopped {
            epoch: e,
            best_epoch,
            restored,
        } = &stop
            && stopped
        {
            obs.on_event(&format!("Epoch {}: early stopping", e + 1));
            if *restored {
                obs.on_event(&format!(
                    "Restoring model weights from the end of the best epoch: {}.",
                    best_epoch + 1
                ));
            }
        }
        if let Some((path, base)) = checkpoint {
            base.snapshot(&trainer.model, &trainer.optimizer, &progress)
                .save(path)
                .map_err(RunError::ModelFile)?;
        }
        epoch += 1;
    }
    Ok(TrainOutcome {
        model: trainer.model,
        optimizer: trainer.optimizer,
        progress,
        stop,
        resumed_at,
    })
}

/// The final Keras-style evaluation of a model on every part.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalMetrics {
    /// On the training part.
    pub train: EpochReport,
    /// On the validation part.
    pub validation: Option<EpochReport>,
    /// On the test part.
    pub test: Option<EpochReport>,
}

/// Evaluates `model` on every part of `data`.
///
/// # Errors
/// The core's error.
pub fn final_metrics(
    model: &mut Sequential,
    cfg: &TrainConfig,
    data: &PreparedData,
) -> Result<FinalMetrics, CoreError> {
    let train = evaluate_set(model, cfg.loss, &data.train, cfg.batch_size)?;
    let validation = data
        .validation
        .as_ref()
        .map(|v| evaluate_set(model, cfg.loss, v, cfg.batch_size))
        .transpose()?;
    let test = data
        .test
        .as_ref()
        .map(|v| evaluate_set(model, cfg.loss, v, cfg.batch_size))
        .transpose()?;
    Ok(FinalMetrics {
        train,
        validation,
        test,
    })
}

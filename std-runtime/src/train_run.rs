//! The training driver: data preparation, epochs with shuffling, validation, Keras-style early
//! stopping, TerminateOnNaN, per-epoch atomic checkpoints and resume.
//!
//! * **Data**: the dataset is split (seeded, stratified by default), the scaler is fitted on the
//!   training part only and applied to every part.
//! * **Epochs**: Keras `fit(shuffle=True)`: epoch `e` visits the training samples in the order
//!   [`crate::data::epoch_order`]`(n, seed, e)`, so a resumed run sees exactly the batches an
//!   uninterrupted run would, and ends with the same bits. With [`TrainConfig::shuffle`] off
//!   (`fit(shuffle=False)`), every epoch visits them in the order of the training part, which
//!   without a validation or test split is the data as given.
//! * **Validation**: after each epoch, Keras-style evaluation on the validation set (`val_loss`
//!   includes the weight penalties and the activity penalties of the validation batches).
//! * **Early stopping**: Keras' `EarlyStopping` logic on `val_loss` (or `loss`), with
//!   `patience`, `min_delta` and `restore_best_weights` (weights are restored only when training
//!   stops early, as in Keras).
//! * **TerminateOnNaN**: a step whose loss or gradient is not finite is refused by the core
//!   (weights untouched); training stops, the model goes back to the state at the end of the
//!   last complete epoch (the last checkpoint, which is not overwritten) — or, with early
//!   stopping's `restore_best_weights`, to the best epoch's weights — and the outcome says why
//!   ([`StopReason::NonFinite`]).
//! * **Throughput**: the wall time of the training steps alone (`fit_epoch`, not evaluation or
//!   files) is measured, giving [`TrainOutcome::train_samples_per_s`].
//! * **Checkpoints**: after every epoch, the whole state (weights, optimizer slots and
//!   iteration count, history, early-stopping state, the `Dropout` layers' random generator) is
//!   written atomically, then one line is appended to `history.csv` (Keras `CSVLogger`), and
//!   with [`TrainConfig::save_best`] the best model so far is kept (`ModelCheckpoint`), see
//!   [`RunFiles`]. A resumed run ends with the same bits as an uninterrupted one, with or
//!   without dropout. (A version-1 checkpoint has no generator state: resuming one with
//!   `Dropout` layers draws other masks than the interrupted run would have.)

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use microfit_core::optim::{AnyOptimizer, Optimizer};
use microfit_core::train::{EpochReport, Samples, Targets, evaluate};

use crate::fit::{HostTrainer, Shuffled, fit_epoch};
use crate::host::Host;
use microfit_core::{Error as CoreError, Loss};

use crate::data::{
    DataError, Dataset, Scaler, SplitSpec, Target, epoch_order, load_source_with, split,
};
use crate::history::{History, TaskMetrics, epoch_row};
use crate::model::{Sequential, VecParams};
use crate::modelfile::{
    DataInfo, EarlyStoppingState, ModelFile, ModelFileError, OptimizerState, Progress,
    atomic_write, fingerprint,
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
    /// Writing progress to the terminal or a pipe failed (stdout closed); training stopped.
    Output(std::io::Error),
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
            RunError::Output(e) => write!(f, "cannot write the progress: {e}"),
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

/// Loads the dataset a [`DataConfig`] names (bundled name or CSV path), with its column choice,
/// and checks that it can be trained on (a classification target needs two classes).
///
/// # Errors
/// The loader's [`DataError`] (file, line, column), or a single-class target.
pub fn load_dataset(cfg: &DataConfig) -> Result<Dataset, RunError> {
    let src = cfg.source.trim();
    if crate::data::Bundled::from_name(src).is_none() && !Path::new(src).exists() {
        return Err(RunError::Other(format!(
            "{src}: no such file, and not a bundled dataset (iris, digits, wine, breast_cancer)"
        )));
    }
    let d = load_source_with(&cfg.source, &cfg.load_options())?;
    if d.is_classification() && d.n_classes() < 2 {
        return Err(RunError::Other(format!(
            "{src}: the label column {:?} holds a single class ({:?}): there is nothing to \
             classify. If it is a number to predict, give --task regression",
            d.target_name,
            d.class_names().first().map_or("", String::as_str)
        )));
    }
    Ok(d)
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
    /// What the metrics of this part are (with the target variance for regression).
    pub task: TaskMetrics,
}

impl SampleSet {
    /// Builds the set for `loss` and a model with `n_outputs` outputs.
    pub fn new(d: &Dataset, loss: Loss, n_outputs: usize) -> SampleSet {
        let (classes, dense, task) = match &d.target {
            Target::Classes { labels, .. } => {
                if matches!(loss, Loss::BinaryCrossentropy { .. }) && n_outputs == 1 {
                    (
                        Vec::new(),
                        labels.iter().map(|&l| l as f32).collect(),
                        TaskMetrics::Classification,
                    )
                } else {
                    (labels.clone(), Vec::new(), TaskMetrics::Classification)
                }
            }
            Target::Regression { values } => (
                Vec::new(),
                values.clone(),
                TaskMetrics::Regression {
                    target_variance: crate::history::variance(values),
                },
            ),
        };
        SampleSet {
            x: d.features.clone(),
            n_features: d.n_features(),
            classes,
            dense,
            task,
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

    /// The class label of sample `i` (classification; one-unit binary targets as 0/1).
    pub fn class_of(&self, i: usize) -> Option<usize> {
        if !self.task.is_classification() {
            return None;
        }
        self.classes
            .get(i)
            .map(|&c| c as usize)
            .or_else(|| self.dense.get(i).map(|&v| v as usize))
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
    prepare_parts(d, cfg, parts.train, parts.validation, parts.test)
}

/// Fits the scaler on `train` and scales every part (the parts of `d`, e.g. one fold of a
/// cross-validation).
///
/// # Errors
/// Scaling errors.
pub fn prepare_parts(
    d: &Dataset,
    cfg: &TrainConfig,
    train: Dataset,
    validation: Option<Dataset>,
    test: Option<Dataset>,
) -> Result<PreparedData, RunError> {
    let scaler = Scaler::fit(&train, cfg.scaling);
    let n_out = cfg.n_outputs();
    let mut make = |mut part: Dataset| -> Result<SampleSet, RunError> {
        scaler.transform(&mut part)?;
        Ok(SampleSet::new(&part, cfg.loss, n_out))
    };
    let train = make(train)?;
    let validation = validation.map(&mut make).transpose()?;
    let test = test.map(&mut make).transpose()?;
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
        /// The 0-based epoch whose weights the model holds: the best epoch's with
        /// `restore_best_weights`, else the last good one (`None`: no epoch completed).
        kept_epoch: Option<u32>,
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
            StopReason::NonFinite {
                epoch,
                error,
                kept_epoch,
            } => format!(
                "stopped during epoch {}: {error} (TerminateOnNaN); {}",
                epoch + 1,
                match kept_epoch {
                    Some(k) => format!("the model is the one at the end of epoch {}", k + 1),
                    None => "no epoch completed, so there is no trained model".to_string(),
                }
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

/// The best epoch by a monitored history key (Keras `ModelCheckpoint(save_best_only=True)`).
#[derive(Debug, Clone, PartialEq)]
pub struct BestEpoch {
    /// The history key watched (`val_loss`, `val_data_loss`, ...).
    pub monitor: String,
    /// 0-based epoch.
    pub epoch: u32,
    /// Its value.
    pub value: f32,
    /// The weights at the end of that epoch.
    pub weights: Vec<Vec<f32>>,
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
    /// The best epoch by [`TrainConfig::save_best`], when it is set and an epoch completed.
    pub best: Option<BestEpoch>,
    /// Wall time spent in training steps (`fit_epoch`) in this run: not evaluation, not files.
    pub train_time: Duration,
    /// Training samples processed by those steps.
    pub train_samples: u64,
}

impl TrainOutcome {
    /// Training throughput of this run: samples / seconds spent in training steps (0 when
    /// nothing was timed).
    pub fn train_samples_per_s(&self) -> f64 {
        let s = self.train_time.as_secs_f64();
        if s > 0.0 {
            self.train_samples as f64 / s
        } else {
            0.0
        }
    }

    /// Whether there is a model to show: at least one epoch completed (in this run or before).
    pub fn has_model(&self) -> bool {
        self.progress.epochs_done > 0
    }

    /// The model to keep: the best epoch's weights with `save_best`, else [`model`](Self::model).
    pub fn kept_model(&self) -> Sequential {
        let mut m = self.model.clone();
        if let Some(b) = &self.best {
            m.params.tensors.clone_from(&b.weights);
        }
        m
    }
}

/// Called as training goes (progress lines, JSON lines). An error (stdout closed) stops
/// training; what was trained so far stays in the checkpoint.
pub trait EpochObserver {
    /// Before the first epoch of this run: `first` epochs are already done, of `total`.
    ///
    /// # Errors
    /// An output error; training does not start.
    fn on_start(&mut self, _first: u32, _total: u32) -> std::io::Result<()> {
        Ok(())
    }
    /// After each epoch (0-based) with its history row and its wall time (training and
    /// validation).
    ///
    /// # Errors
    /// An output error; training stops after this epoch.
    fn on_epoch(
        &mut self,
        _epoch: u32,
        _total: u32,
        _row: &[(String, f32)],
        _elapsed: Duration,
    ) -> std::io::Result<()> {
        Ok(())
    }
    /// A notable event (`Epoch 12: early stopping`).
    ///
    /// # Errors
    /// An output error; training stops.
    fn on_event(&mut self, _message: &str) -> std::io::Result<()> {
        Ok(())
    }
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
        self.snapshot_weights(&model.params, model, opt, progress)
    }

    /// A model file with `weights` and the generators of `model` (its own and its dropout
    /// layers').
    fn snapshot_weights(
        &self,
        weights: &VecParams,
        model: &Sequential,
        opt: &AnyOptimizer<VecParams>,
        progress: &Progress,
    ) -> ModelFile {
        ModelFile {
            spec_toml: self.spec_toml.clone(),
            data: self.data.clone(),
            scaler: self.scaler.clone(),
            weights: weights.clone(),
            optimizer: OptimizerState::capture(opt),
            progress: progress.clone(),
            rng: Some(model.rng().to_parts()),
            dropout_rngs: model.dropout_generators(),
        }
    }
}

/// The files a run keeps up to date as it goes, in the folder `dir`:
/// * `checkpoint.mfit` after every epoch (atomic: a reader sees the old file or the new one);
/// * `history.csv`, one line appended per epoch (Keras `CSVLogger`);
/// * with [`TrainConfig::save_best`], `model.mfit` each time the monitored value improves
///   (Keras `ModelCheckpoint(save_best_only=True)`).
#[derive(Debug, Clone, Copy)]
pub struct RunFiles<'a> {
    /// The folder.
    pub dir: &'a Path,
    /// The model file's fixed parts.
    pub base: &'a FileBase,
}

impl RunFiles<'_> {
    /// `dir/checkpoint.mfit`.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.mfit")
    }

    fn io(path: PathBuf) -> impl FnOnce(std::io::Error) -> RunError {
        move |source| RunError::Io { path, source }
    }

    /// Rewrites `history.csv` from `h` (at the start of a run or a resume).
    fn write_history(&self, h: &History) -> Result<(), RunError> {
        let path = self.dir.join("history.csv");
        if h.epochs() == 0 {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::io(path)(e)),
                _ => Ok(()),
            };
        }
        atomic_write(&path, h.to_csv().as_bytes()).map_err(Self::io(path))
    }

    /// Appends the last epoch of `h` to `history.csv` (the whole file when the columns changed).
    fn append_history(&self, h: &History) -> Result<(), RunError> {
        use std::io::Write as _;
        let path = self.dir.join("history.csv");
        let header = h.csv_header();
        let same_columns = std::fs::File::open(&path).ok().is_some_and(|f| {
            use std::io::BufRead as _;
            let mut first = String::new();
            std::io::BufReader::new(f).read_line(&mut first).is_ok() && first == header
        });
        if !same_columns {
            return self.write_history(h);
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(Self::io(path.clone()))?;
        f.write_all(h.csv_row(h.epochs().saturating_sub(1)).as_bytes())
            .map_err(Self::io(path))
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
/// * `resume`: a checkpoint to continue from (its weights, optimizer state and progress);
///   `best_so_far`: with [`TrainConfig::save_best`], the best epoch of the run before the resume.
/// * `files`: the folder whose checkpoint, `history.csv` and best model are kept up to date.
///
/// The calls into the core's trainer (`fit_epoch`, `evaluate`) are in this function only.
///
/// # Errors
/// A [`RunError`] for a problem that is not a non-finite loss (those end in
/// [`StopReason::NonFinite`]); a file that cannot be written, or an observer's output error,
/// is an error.
pub fn train(
    cfg: &TrainConfig,
    data: &PreparedData,
    resume: Option<(&ModelFile, Option<BestEpoch>)>,
    files: Option<RunFiles<'_>>,
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
    let mut best: Option<BestEpoch> = None;
    if let Some((file, best_so_far)) = resume {
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
        // A run that starts from a trained model's weights has no epochs yet: not a resume.
        resumed_at = (progress.epochs_done > 0).then_some(progress.epochs_done);
        best = best_so_far.filter(|b| Some(&b.monitor) == cfg.save_best.as_ref());
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
    if let Some(f) = &files {
        f.write_history(&progress.history)?;
    }
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
    let mut train_time = Duration::ZERO;
    let mut trained: u64 = 0;
    let out_err = RunError::Output;
    obs.on_start(progress.epochs_done, cfg.epochs)
        .map_err(out_err)?;
    let mut epoch = progress.epochs_done;
    while !progress.finished && epoch < cfg.epochs {
        let started = Instant::now();
        let order: Option<Vec<u32>> = cfg.shuffle.then(|| {
            epoch_order(n, cfg.seed, u64::from(epoch))
                .into_iter()
                .map(|i| i as u32)
                .collect()
        });
        let before = (
            trainer.model.params.tensors.clone(),
            trainer.optimizer.clone(),
            trainer.model.rng().clone(),
            trainer.model.dropout_generators(),
        );
        let step_start = Instant::now();
        let fitted = fit_epoch(
            &mut trainer,
            &train_samples,
            bs,
            order.as_deref(),
            &mut scratch,
        );
        train_time += step_start.elapsed();
        let rep = match fitted {
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
                ))
                .map_err(out_err)?;
                let mut kept_epoch = epoch.checked_sub(1);
                // With restore_best_weights, the best epoch's weights are kept.
                if let (Some(es), Some(st)) = (&cfg.early_stopping, &progress.early_stopping)
                    && es.restore_best_weights
                    && let Some(w) = &st.best_weights
                    && kept_epoch.is_some()
                {
                    trainer.model.params.tensors.clone_from(w);
                    kept_epoch = Some(st.best_epoch);
                    obs.on_event(&format!(
                        "Restoring model weights from the end of the best epoch: {}.",
                        st.best_epoch + 1
                    ))
                    .map_err(out_err)?;
                }
                stop = StopReason::NonFinite {
                    epoch,
                    error: e,
                    kept_epoch,
                };
                break;
            }
            Err(e) => return Err(RunError::Training { epoch, source: e }),
        };
        trained += n as u64;
        let val = match &data.validation {
            Some(v) => Some(
                evaluate_set(&mut trainer.model, cfg.loss, v, cfg.batch_size)
                    .map_err(|e| RunError::Training { epoch, source: e })?,
            ),
            None => None,
        };
        let row = epoch_row(
            (&rep, data.train.task),
            val.as_ref()
                .zip(data.validation.as_ref())
                .map(|(r, v)| (r, v.task)),
            &trainer.model.layer_names,
        );
        progress.history.push_epoch(&row);
        progress.epochs_done = epoch + 1;
        let improved = match &cfg.save_best {
            Some(key) => {
                let current = row
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(f32::NAN, |(_, v)| *v);
                let better = current.is_finite() && best.as_ref().is_none_or(|b| current < b.value);
                if better {
                    best = Some(BestEpoch {
                        monitor: key.clone(),
                        epoch,
                        value: current,
                        weights: trainer.model.params.tensors.clone(),
                    });
                }
                better
            }
            None => false,
        };
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
        if let Some(f) = &files {
            f.base
                .snapshot(&trainer.model, &trainer.optimizer, &progress)
                .save(&f.checkpoint())
                .map_err(RunError::ModelFile)?;
            if improved && let Some(b) = &best {
                let mut weights = trainer.model.params.clone();
                weights.tensors.clone_from(&b.weights);
                f.base
                    .snapshot_weights(&weights, &trainer.model, &trainer.optimizer, &progress)
                    .save(&f.dir.join("model.mfit"))
                    .map_err(RunError::ModelFile)?;
            }
            f.append_history(&progress.history)?;
        }
        obs.on_epoch(epoch, cfg.epochs, &row, started.elapsed())
            .map_err(out_err)?;
        if let StopReason::EarlyStopped {
            epoch: e,
            best_epoch,
            restored,
        } = &stop
            && stopped
        {
            obs.on_event(&format!("Epoch {}: early stopping", e + 1))
                .map_err(out_err)?;
            if *restored {
                obs.on_event(&format!(
                    "Restoring model weights from the end of the best epoch: {}.",
                    best_epoch + 1
                ))
                .map_err(out_err)?;
            }
        }
        epoch += 1;
    }
    // Keras `fit` ends with `optimizer.finalize_variable_values` (an EMA's averages become the
    // weights) after its epochs, before `EarlyStopping` restores the best weights in
    // `on_train_end`: restored weights win. (The CLI's optimizers have no EMA yet: nothing.)
    let restored = matches!(stop, StopReason::EarlyStopped { restored: true, .. });
    if trainer.optimizer.iterations() > 0 && !restored {
        trainer.finalize_variable_values();
    }
    Ok(TrainOutcome {
        model: trainer.model,
        optimizer: trainer.optimizer,
        progress,
        stop,
        resumed_at,
        best,
        train_time,
        train_samples: trained,
    })
}

/// A part's Keras-style evaluation with what its metrics are.
#[derive(Debug, Clone, PartialEq)]
pub struct SetReport {
    /// The core's report.
    pub report: EpochReport,
    /// Classification, or regression with the part's target variance.
    pub task: TaskMetrics,
}

impl SetReport {
    /// The value of metric `key` (`accuracy`, `mse`, `rmse`, `mae`, `r2`), NaN if the task has
    /// no such metric.
    pub fn metric(&self, key: &str) -> f32 {
        self.task
            .metrics(&self.report)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map_or(f32::NAN, |(_, v)| v)
    }
}

/// The final Keras-style evaluation of a model on every part.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalMetrics {
    /// On the training part.
    pub train: SetReport,
    /// On the validation part.
    pub validation: Option<SetReport>,
    /// On the test part.
    pub test: Option<SetReport>,
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
    let mut eval = |set: &SampleSet| -> Result<SetReport, CoreError> {
        Ok(SetReport {
            report: evaluate_set(model, cfg.loss, set, cfg.batch_size)?,
            task: set.task,
        })
    };
    let train = eval(&data.train)?;
    let validation = data.validation.as_ref().map(&mut eval).transpose()?;
    let test = data.test.as_ref().map(&mut eval).transpose()?;
    Ok(FinalMetrics {
        train,
        validation,
        test,
    })
}

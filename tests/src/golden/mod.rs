//! The Keras golden runner, driven by the files alone: every `*.json` in the golden folder is
//! placed by its own kind, every case in it is run, and a per-file [`Summary`] says how many
//! cases and checks there were.
//!
//! * **Where**: `MICROFIT_GOLDEN_DIR`, or by default `<workspace>/../shared/golden`
//!   ([`golden_dir`]). Sub-folders (`keras_files/`, issue 15's `.keras` files) are reported and
//!   not entered.
//! * **Which kind**: the file name's prefix (`dense_step_k3.json` → [`Kind::DenseStep`]; any
//!   suffix after the prefix and an underscore), else the file's own structure (its top-level
//!   keys); a file that fits neither is a failure ([`kind_of`]).
//! * **Models from the files**: layer sizes from the tensor shapes, activations, regularizer
//!   configurations through [`microfit::keras`], the optimizer from `config_given` (checked
//!   against `config_effective`), `keras_model_config` when present, the loss from the file (or
//!   the Keras class its description names) — through [`ModelSpec`](microfit::model::ModelSpec)
//!   / [`Sequential`](microfit::model::Sequential) and [`AnyOptimizer`](microfit::core::optim::AnyOptimizer),
//!   so a file with other shapes, batch sizes, factors, betas or step counts runs without new
//!   code. The stepping functions ([`trace_steps`], [`fit_trace`]) are generic over
//!   [`Trainable`](microfit::core::train::Trainable), so the typed tests
//!   (`tests/golden_typed.rs`) run the same code on `Network`s with compile-time shapes.
//! * **Counts**: each file's [`Summary`] has its cases, checks (bit-exact among them), worst
//!   errors, the schema-optional keys it lacks ([`Checker::absent`]: reported, never skipped
//!   silently) and the cases of features microfit does not have yet ([`Checker::unsupported`]:
//!   EMA, `exclude_from_weight_decay`, constraints, label smoothing, the regularization layers).
//! * **Tolerances** (`shared/golden/README.md`): forward values, losses and gradients
//!   `rtol 1e-5, atol 1e-6` ([`FWD`]); penalties relative with a floor proportional to the
//!   expected value or its f64 reference ([`penalty_tol`]); orthogonal gradients relative with a
//!   floor of the tensor's rounding noise ([`orthogonal_grad_tol`]); an optimizer update fed
//!   the recorded gradients and state bit-exact; Keras' `β^t` bit-exact; multi-step fits
//!   `rtol 1e-4, atol 1e-5` ([`FIT`]).
//!
//! [`run_dir`] runs a whole folder; `tests/tests/golden_files.rs` asserts every file's counts
//! are non-zero and every check passed.

mod activity_scaling;
mod adam_power;
mod check;
mod conv_step;
mod dense_step;
mod initializers;
mod losses;
mod mlp_fit;
mod named;
mod optimizer_long;
mod regularizer_config;
mod regularizers;
mod tensor;
mod toolbox;
mod trace;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use activity_scaling::DenseText;
pub use adam_power::{PowEntry, pow_entries};
pub use check::{
    Checker, ELEMENTWISE, FIT, FWD, Summary, Tol, json_same, orthogonal_grad_tol, penalty_tol,
    penalty_tol_with,
};
pub use conv_step::{
    ConvCase, ConvOutcome, check_geometry, conv_cases, run_conv_case, run_runtime,
};
pub use dense_step::{DenseStepCase, OptimizerRun, dense_step_cases, dense_step_runtime_trace};
pub use mlp_fit::{MlpFit, mlp_fit, mlp_runtime_fit, mlp_runtime_replay};
pub use optimizer_long::NOT_YET;
pub use tensor::{
    build_with, floats, labels, layer_order, num, penalty_key, set_tensors, shape, tensors,
    var_index, weights_in_order, without_regularizers,
};
pub use trace::{
    FitTrace, StepTrace, batches, fit_trace, forward_one, same_bits, same_fit, same_metrics,
    same_penalties, same_report, same_tensors, same_trace, trace_steps,
};

/// Environment variable naming the folder of the golden files.
pub const ENV: &str = "MICROFIT_GOLDEN_DIR";

/// The golden folder for a value of [`ENV`] (`None`: `<workspace>/../shared/golden`).
///
/// # Errors
/// A message naming the folder and [`ENV`] if the folder does not exist.
pub fn resolve_golden_dir(env: Option<std::ffi::OsString>) -> Result<PathBuf, String> {
    let dir = match env {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden")),
    };
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "the Keras golden folder {} does not exist: set {ENV} to the folder holding \
             regularizers_k3.json, dense_step_k3.json, ... (see shared/golden/README.md)",
            dir.display()
        ))
    }
}

/// The golden folder: `$MICROFIT_GOLDEN_DIR` or `<workspace>/../shared/golden`.
///
/// # Panics
/// If the folder does not exist, with a message naming [`ENV`].
pub fn golden_dir() -> PathBuf {
    resolve_golden_dir(std::env::var_os(ENV)).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether [`ENV`] points somewhere else than the shipped folder (a hold-out set of files).
pub fn is_default_dir() -> bool {
    std::env::var_os(ENV).is_none_or(|d| {
        let shipped = resolve_golden_dir(None)
            .ok()
            .and_then(|p| p.canonicalize().ok());
        Path::new(&d).canonicalize().ok() == shipped
    })
}

/// Reads and parses one golden file of the golden folder.
///
/// # Panics
/// If the file is missing or not JSON (naming the file and [`ENV`]).
pub fn load(file: &str) -> Value {
    read_json(&golden_dir().join(file)).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads and parses a JSON file.
///
/// # Errors
/// If it cannot be read or parsed (the message names the file and [`ENV`]).
pub fn read_json(p: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(p).map_err(|e| {
        format!(
            "cannot read golden file {} ({e}); set {ENV} to the golden folder",
            p.display()
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| format!("golden file {} is not valid JSON: {e}", p.display()))
}

/// The shipped file `file` for a test whose types are written for the shipped shapes, or
/// `None` — after a loud note on stderr — when the golden folder holds other files (no such
/// file, or `fits` says its shapes are not the shipped ones). The file-driven runner checks
/// such files; the typed test has nothing to compare against.
pub fn shipped_or_skip(
    test: &str,
    file: &str,
    fits: impl Fn(&Value) -> Result<(), String>,
) -> Option<Value> {
    use std::io::Write;
    let p = golden_dir().join(file);
    let why = match read_json(&p) {
        Ok(v) => match fits(&v) {
            Ok(()) => return Some(v),
            Err(e) => format!("its shapes are not the shipped ones ({e})"),
        },
        Err(_) => "there is no such file".to_string(),
    };
    // Straight to the process's stderr: libtest captures `eprintln!`, not this.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: written for the shipped {file}, but in {} {why}. \
         The file-driven runner (golden_files.rs) checks this folder instead.\n",
        golden_dir().display()
    );
    None
}

/// The kind of a golden file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `regularizers_*.json`: penalties and gradients of every regularizer.
    Regularizers,
    /// `regularizer_config_*.json`: `get`, `serialize`, `deserialize`.
    RegularizerConfig,
    /// `initializers_*.json`: fans and Glorot limits.
    Initializers,
    /// `losses_*.json`: loss values and gradients, the cached-logits shortcut.
    Losses,
    /// `dense_step_*.json`: one Dense layer, forward at init and optimizer runs.
    DenseStep,
    /// `mlp_fit_*.json`: an MLP's `fit`, its eager replay and an `l2_loss` custom loop.
    MlpFit,
    /// `conv_step_*.json`: one conv layer, one step of SGD and Adam.
    ConvStep,
    /// `activity_scaling_*.json`: the activity penalty divided by the batch size.
    ActivityScaling,
    /// `adam_power_*.json`: TensorFlow's float32 `β^t`.
    AdamPower,
    /// `optimizer_long_*.json`: many steps of several optimizers, every update recorded.
    OptimizerLong,
    /// `constraints_*.json` (issue 12).
    Constraints,
    /// `label_smoothing_*.json` (issue 12).
    LabelSmoothing,
    /// `regularization_layers_*.json` (issue 12).
    RegularizationLayers,
}

/// Every kind, with its file-name prefix.
pub const KINDS: [(Kind, &str); 13] = [
    (Kind::Regularizers, "regularizers"),
    (Kind::RegularizerConfig, "regularizer_config"),
    (Kind::Initializers, "initializers"),
    (Kind::Losses, "losses"),
    (Kind::DenseStep, "dense_step"),
    (Kind::MlpFit, "mlp_fit"),
    (Kind::ConvStep, "conv_step"),
    (Kind::ActivityScaling, "activity_scaling"),
    (Kind::AdamPower, "adam_power"),
    (Kind::OptimizerLong, "optimizer_long"),
    (Kind::Constraints, "constraints"),
    (Kind::LabelSmoothing, "label_smoothing"),
    (Kind::RegularizationLayers, "regularization_layers"),
];

impl Kind {
    /// The file-name prefix of this kind.
    pub fn prefix(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, p)| p)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// The kind of the file `name` with contents `v`: by the name's prefix (the longest known
/// prefix that is the whole stem or is followed by `_`), else by its top-level keys.
///
/// # Errors
/// A message naming the file when neither places it.
pub fn kind_of(name: &str, v: &Value) -> Result<Kind, String> {
    let stem = name.strip_suffix(".json").unwrap_or(name);
    let by_name = KINDS
        .iter()
        .filter(|(_, p)| {
            stem == *p
                || stem
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('_'))
        })
        .max_by_key(|(_, p)| p.len())
        .map(|(k, _)| *k);
    if let Some(k) = by_name {
        return Ok(k);
    }
    let has = |k: &str| v.get(k).is_some();
    let first_case = |key: &str, field: &str| {
        v[key]
            .as_array()
            .and_then(|a| a.first())
            .is_some_and(|c| c.get(field).is_some())
    };
    let kind = if has("betas") {
        Kind::AdamPower
    } else if has("orthogonal_cases") || has("l2_loss_cases") || has("abs_gradient_check") {
        Kind::Regularizers
    } else if has("get") && has("serialize") {
        Kind::RegularizerConfig
    } else if has("dense_defaults") {
        Kind::Initializers
    } else if has("cached_logits_shortcut") || has("binary_crossentropy") {
        Kind::Losses
    } else if has("eager_replay_of_fit") || has("keras_model_config") {
        Kind::MlpFit
    } else if has("layer_losses_by_batch_size") {
        Kind::ActivityScaling
    } else if first_case("cases", "geometry_per_spatial_dim") {
        Kind::ConvStep
    } else if first_case("cases", "optimizer_runs") {
        Kind::DenseStep
    } else if has("functions") && (has("dense_training") || has("conv_training")) {
        Kind::Constraints
    } else if has("model_training") {
        Kind::LabelSmoothing
    } else if has("act_reg") || has("identity_at_inference") {
        Kind::RegularizationLayers
    } else if first_case("runs", "steps") {
        Kind::OptimizerLong
    } else {
        return Err(format!(
            "golden file {name}: cannot place it — its name starts with none of {} and its \
             keys ({}) match no known kind",
            KINDS.iter().map(|(_, p)| *p).collect::<Vec<_>>().join(", "),
            v.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ));
    };
    Ok(kind)
}

/// What a golden folder holds: its `*.json` files (sorted) and its sub-folders.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The JSON files.
    pub files: Vec<PathBuf>,
    /// Sub-folders (not entered: `keras_files/` belongs to issue 15).
    pub folders: Vec<PathBuf>,
    /// Other files (not golden files), e.g. `README.md`, `verify_golden.py`.
    pub others: Vec<PathBuf>,
}

/// Lists `dir`.
///
/// # Errors
/// If it cannot be read.
pub fn list(dir: &Path) -> Result<Listing, String> {
    let mut l = Listing::default();
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if p.is_dir() {
            l.folders.push(p);
        } else if p.extension().is_some_and(|x| x == "json") {
            l.files.push(p);
        } else {
            l.others.push(p);
        }
    }
    l.files.sort();
    l.folders.sort();
    l.others.sort();
    Ok(l)
}

/// Runs one file of kind `kind` (already parsed): every case, into a summary. A runner that
/// panics on a malformed file is reported as a failure of that file.
pub fn run_value(name: &str, kind: Kind, v: &Value) -> Summary {
    let mut c = Checker::new(name);
    c.set_kind(kind.prefix());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match kind {
            Kind::Regularizers => regularizers::run(&mut c, v),
            Kind::RegularizerConfig => regularizer_config::run(&mut c, v),
            Kind::Initializers => initializers::run(&mut c, v),
            Kind::Losses => losses::run(&mut c, v),
            Kind::DenseStep => dense_step::run(&mut c, v),
            Kind::MlpFit => mlp_fit::run(&mut c, v),
            Kind::ConvStep => conv_step::run(&mut c, v),
            Kind::ActivityScaling => activity_scaling::run(&mut c, v),
            Kind::AdamPower => adam_power::run(&mut c, v),
            Kind::OptimizerLong => optimizer_long::run(&mut c, v),
            Kind::Constraints => toolbox::constraints(&mut c, v),
            Kind::LabelSmoothing => toolbox::label_smoothing(&mut c, v),
            Kind::RegularizationLayers => toolbox::regularization_layers(&mut c, v),
        }
        c
    }));
    match outcome {
        Ok(c) => c.into_summary(),
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            let mut c = Checker::new(name);
            c.set_kind(kind.prefix());
            c.fail(format!("the runner stopped on this file: {msg}"));
            c.into_summary()
        }
    }
}

/// Reads, places and runs one file.
pub fn run_file(path: &Path) -> Summary {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let placed = read_json(path).and_then(|v| kind_of(&name, &v).map(|k| (k, v)));
    match placed {
        Ok((kind, v)) => run_value(&name, kind, &v),
        Err(e) => {
            let mut c = Checker::new(&name);
            c.set_kind("?");
            c.fail(e);
            c.into_summary()
        }
    }
}

/// Runs every file of `dir` whose kind is in `kinds` (all when `None`), printing each summary
/// (and the sub-folders it leaves alone).
///
/// # Panics
/// If the folder cannot be read.
pub fn run_dir(dir: &Path, kinds: Option<&[Kind]>) -> Vec<Summary> {
    let l = list(dir).unwrap_or_else(|e| panic!("{e}"));
    if kinds.is_none() {
        for f in &l.folders {
            println!(
                "golden: sub-folder {} not entered (not a file of this runner)",
                f.display()
            );
        }
    }
    let mut out = Vec::new();
    for p in &l.files {
        if let Some(ks) = kinds {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let k = read_json(p)
                .ok()
                .and_then(|v| kind_of(name.as_deref().unwrap_or(""), &v).ok());
            if !k.is_some_and(|k| ks.contains(&k)) {
                continue;
            }
        }
        let s = run_file(p);
        println!("{s}");
        out.push(s);
    }
    out
}

/// Panics listing every failure and every file that checked nothing: a supported file must
/// have at least one case and one passing check, a file of unsupported features at least one
/// counted case.
///
/// # Panics
/// As described.
pub fn assert_all_passed(summaries: &[Summary]) {
    let mut bad = Vec::new();
    for s in summaries {
        for f in &s.failures {
            bad.push(format!("{}: {f}", s.file));
        }
        let unsupported_only = s.checks == 0 && s.unsupported_cases() > 0 && s.cases == 0;
        if !unsupported_only && (s.cases == 0 || s.checks == 0) {
            bad.push(format!(
                "{}: {} cases and {} checks — a golden file must check something",
                s.file, s.cases, s.checks
            ));
        }
        if unsupported_only && s.unsupported_cases() == 0 {
            bad.push(format!("{}: no case counted", s.file));
        }
    }
    assert!(
        bad.is_empty(),
        "{} golden failure(s):\n  {}",
        bad.len(),
        bad.join("\n  ")
    );
}

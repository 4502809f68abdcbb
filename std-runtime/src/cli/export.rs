//! `microfit export`: a trained model (`model.mfit` or `.keras`) for a microcontroller
//! (`--target firmware`, the default) or as a Keras 3 `.keras` file (`--format keras`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::out::{line, note};
use super::{CliError, EXIT_OK, ensure_dir, write_text};
use crate::data::{ScalerKind, Target};
use crate::export::{
    EmbeddedData, ExportInput, firmware_workload, read_blob, rust_source, write_blob,
};
use crate::formats::KerasModel;
use crate::model::Sequential;
use crate::modelfile::{ModelFile, atomic_write};
use crate::spec::TrainConfig;

/// Export targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportTarget {
    /// `model.bin` (MFW1 blob) and `model.rs` (Rust `const` arrays) for a microcontroller.
    Firmware,
    /// A Keras 3 `.keras` file (architecture, weights, loss, optimizer and its state), which
    /// `keras.saving.load_model` reads.
    Keras,
}

/// `microfit export` flags.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The trained model (model.mfit, or a .keras file)
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// What to export for (`--format` is the same flag)
    #[arg(long, visible_alias = "format", value_enum, default_value = "firmware")]
    pub target: ExportTarget,
    /// Output directory for firmware [default: microfit-firmware], the file for keras
    /// [default: model.keras]
    #[arg(long, value_name = "DIR|FILE")]
    pub out: Option<PathBuf>,
    /// Also embed a dataset in model.rs as `X` (raw features) and `Y` (class indices or values)
    #[arg(long, value_name = "NAME|PATH.csv")]
    pub with_data: Option<String>,
    /// Label column of the --with-data CSV: a header name, a 0-based index, or `last`
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    /// Epochs the firmware trains when it builds from workload.json [default: the model's]
    #[arg(long, value_name = "N")]
    pub fw_epochs: Option<u32>,
}

/// Runs `microfit export`.
///
/// # Errors
/// A [`CliError`] for a bad model file, data, or a file that cannot be written.
pub fn run(a: &ExportArgs) -> Result<u8, CliError> {
    let file = ModelFile::open(&a.model)?;
    let (cfg, model) = file.build_model(&a.model)?;
    if a.target == ExportTarget::Keras {
        return keras(a, &file, &cfg, &model);
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("microfit-firmware"));
    ensure_dir(&out)?;
    // Every weight in model order, the frozen layers' too (the blob is for inference).
    let mut all = crate::model::VecParams::default();
    for (name, values) in model.weights() {
        let shape = [&model.params, &model.frozen]
            .iter()
            .find_map(|p| {
                p.names
                    .iter()
                    .position(|n| n == name)
                    .map(|i| p.shapes[i].clone())
            })
            .unwrap_or_else(|| vec![values.len()]);
        let i = all.push(name.to_string(), shape);
        all.tensors[i].copy_from_slice(values);
    }
    let input = ExportInput {
        spec: &cfg.model,
        weights: &all,
        layer_names: &model.layer_names,
        scaler: &file.scaler,
        class_names: &file.data.class_names,
        feature_names: &file.data.feature_names,
        classification: file.data.classification,
    };
    let blob = write_blob(&input)
        .map_err(|e| CliError::new(format!("{}: cannot export: {e}", a.model.display())))?;
    // Read it back before writing: what lands on disk is checked bit for bit.
    let back = read_blob(&blob)?;
    let same = back.tensors.len() == all.tensors.len()
        && back.tensors.iter().zip(&all.tensors).all(|(a, b)| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        });
    if !same {
        return Err(CliError::new(
            "internal error: the blob does not read back to the model's weights",
        ));
    }
    let bin = out.join("model.bin");
    atomic_write(&bin, &blob).map_err(|e| CliError::new(format!("{}: {e}", bin.display())))?;

    let data = match &a.with_data {
        Some(src) => Some(super::evaluate::load_raw_for_model(
            &file,
            src,
            a.label.as_deref(),
        )?),
        None => None,
    };
    let embedded = data.as_ref().map(|d| EmbeddedData {
        source: a.with_data.as_deref().unwrap_or_default(),
        x: &d.features,
        classes: match &d.target {
            Target::Classes { labels, .. } => Some(&labels[..]),
            Target::Regression { .. } => None,
        },
        values: match &d.target {
            Target::Regression { values } => Some(&values[..]),
            Target::Classes { .. } => None,
        },
    });
    let src = rust_source(&input, &a.model.display().to_string(), embedded.as_ref());
    let rs = out.join("model.rs");
    write_text(&rs, &src)?;

    // On-device training: the firmware builds from `workload.json` (MICROFIT_FW_WORKLOAD).
    let mut workload = None;
    if let (Some(d), Some(source)) = (&data, &a.with_data) {
        let mut scaled = d.clone();
        file.scaler.transform(&mut scaled)?;
        let epochs = a.fw_epochs.unwrap_or(cfg.epochs);
        match firmware_workload(&cfg, &model.params, &model.frozen, &scaled, epochs, source) {
            Ok(w) => {
                let path = out.join("workload.json");
                let text = serde_json::to_string(&w)
                    .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
                write_text(&path, &text)?;
                workload = Some(path);
            }
            Err(why) => note(&format!(
                "note: no workload.json (firmware training): {why}"
            )),
        }
    }
    line(&format!(
        "Wrote {} ({} bytes: {} layers, {} weights, CRC32 checked) and {}{}.",
        bin.display(),
        blob.len(),
        back.layers.len(),
        back.tensors.iter().map(Vec::len).sum::<usize>(),
        rs.display(),
        data.as_ref().map_or(String::new(), |d| format!(
            " with {} samples as X/Y",
            d.n_samples()
        ))
    ))?;
    if let Some(w) = workload {
        line(&format!(
            "Wrote {}: train it on the microcontroller with MICROFIT_FW_WORKLOAD={} cargo fw",
            w.display(),
            w.display()
        ))?;
    }
    Ok(EXIT_OK)
}

/// `--format keras`: the model, its loss and its optimizer with the optimizer's state, as a
/// `.keras` file.
fn keras(
    a: &ExportArgs,
    file: &ModelFile,
    cfg: &TrainConfig,
    model: &Sequential,
) -> Result<u8, CliError> {
    if a.with_data.is_some() || a.fw_epochs.is_some() {
        return Err(CliError::usage(
            "--with-data and --fw-epochs are firmware settings; a .keras file holds the model only",
        ));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("model.keras"));
    let mut optimizer = cfg
        .optimizer
        .build_run(&model.params)
        .map_err(|e| CliError::new(format!("{}: optimizer: {e}", a.model.display())))?;
    file.optimizer
        .restore_run(&mut optimizer)
        .map_err(|e| CliError::new(format!("{}: {e}", a.model.display())))?;
    let mut k = KerasModel::from_run(model, (&cfg.optimizer, &optimizer), Some(cfg.loss));
    k.metrics = vec![
        if file.data.classification {
            "accuracy"
        } else {
            "mse"
        }
        .into(),
    ];
    k.save(&out)?;
    line(&format!(
        "Wrote {} ({} weights, {} optimizer at iteration {}): keras.saving.load_model reads it.",
        out.display(),
        model.weights().iter().map(|(_, w)| w.len()).sum::<usize>(),
        cfg.optimizer.kind.name(),
        file.optimizer.iterations
    ))?;
    if cfg.scaling != ScalerKind::None {
        note(&format!(
            "note: the model was trained on {}-scaled features; the .keras file holds the model \
             only, so scale its inputs as x' = (x - offset) * scale with the scaler of \
             `microfit export --target firmware` (model.rs), or train with --scale none",
            crate::spec::scaling_name(cfg.scaling)
        ));
    }
    Ok(EXIT_OK)
}

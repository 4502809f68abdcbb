//! What `microfit train` and `microfit export` do, through the library: a TOML spec, the
//! training driver, the report, and the firmware blob read back bit for bit.
//!
//! ```text
//! cargo run --release -p microfit --example train_api
//! ```

use microfit::export::{ExportInput, read_blob, write_blob};
use microfit::report;
use microfit::spec::{ModelOverrides, SpecFile};
use microfit::train_run::{Silent, data_shape, final_metrics, load_dataset, prepare, train};

const SPEC: &str = r#"
epochs = 60
batch_size = 16

[data]
source = "wine"

[early_stopping]
patience = 10

[[layers]]
type = "dense"
units = 12
activation = "relu"
kernel_regularizer = { l1 = 1e-4, l2 = 1e-3 }

[[layers]]
type = "dense"
units = 3
activation = "softmax"
kernel_regularizer = { l2 = 1e-3 }
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = SpecFile::parse("example spec", SPEC)?;
    let dataset = load_dataset(&spec.data_config("example spec")?)?;
    let cfg = spec.resolve(
        "example spec",
        &data_shape(&dataset),
        None,
        &ModelOverrides::default(),
    )?;
    let data = prepare(&dataset, &cfg)?;
    let outcome = train(&cfg, &data, None, None, &mut Silent)?;
    println!(
        "{} epochs: {}\n",
        outcome.progress.epochs_done,
        outcome.stop.describe()
    );

    let mut model = outcome.model;
    let metrics = final_metrics(&mut model, &cfg, &data)?;
    println!("{}", report::build(&mut model, &metrics, &data)?.to_text());

    let input = ExportInput {
        spec: &cfg.model,
        weights: &model.params,
        layer_names: &model.layer_names,
        scaler: &data.scaler,
        class_names: &data.info.class_names,
        feature_names: &data.info.feature_names,
        classification: true,
    };
    let blob = write_blob(&input)?;
    let back = read_blob(&blob)?;
    let same = back
        .tensors
        .iter()
        .zip(&model.params.tensors)
        .all(|(a, b)| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    println!(
        "firmware blob: {} bytes, weights read back bit-exact: {same}",
        blob.len()
    );
    Ok(())
}

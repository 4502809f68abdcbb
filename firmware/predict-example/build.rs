//! Generates `$OUT_DIR/model.rs` from a workload file (`MICROFIT_MODEL`, default the bundled
//! `firmware/data/w1.json`): the typed model, its weights as a `static` (in flash on a
//! microcontroller) and `predictor()`. No dataset (`no_data`).

use std::env;
use std::path::PathBuf;

use microfit_workload::{Options, Workload};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-env-changed=MICROFIT_MODEL");
    let path = env::var_os("MICROFIT_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("../data/w1.json"));
    println!("cargo:rerun-if-changed={}", path.display());
    let w = Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let src = microfit_workload::generate(
        &w,
        &Options {
            symbols: false,
            no_data: true,
            source: Some(path.display().to_string()),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("model.rs");
    std::fs::write(out, src).expect("write model.rs");
}

//! Every case of every Keras golden file (see `microfit_tests::golden`). Run with
//! `--nocapture` to see one summary line per file.

use microfit_tests::golden;

#[test]
fn golden_regularizers() {
    golden::run_regularizers();
}

#[test]
fn golden_regularizer_config() {
    golden::run_regularizer_config();
}

#[test]
fn golden_initializers() {
    golden::run_initializers();
}

#[test]
fn golden_losses() {
    golden::run_losses();
}

#[test]
fn golden_dense_step() {
    golden::run_dense_step();
}

#[test]
fn golden_mlp_fit() {
    golden::run_mlp_fit();
}

#[test]
fn golden_activity_scaling() {
    golden::run_activity_scaling();
}

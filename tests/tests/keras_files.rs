//! Real `.keras` files (Keras 3.15.1) through microfit: inference, `fit`, continuing Keras'
//! optimizer, round trips and the unsupported-layer error (see `microfit_tests::keras_files`).
//! Run with `--nocapture` to see each case and the summary line.

#[test]
fn keras_files() {
    microfit_tests::keras_files::run_keras_files();
}

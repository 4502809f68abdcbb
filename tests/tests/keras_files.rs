//! Real `.keras` files (Keras 3.15.1) through microfit: inference, `fit`, continuing Keras'
//! optimizer, round trips and the unsupported-layer error (see `microfit_tests::keras_files`).
//! Run with `--nocapture` to see each case and the summary line.

#[test]
fn keras_files() {
    microfit_tests::keras_files::run_keras_files();
}

/// Writes microfit-trained `.keras` files for the manual Keras check: set
/// `MICROFIT_KERAS_CHECK_OUT=<dir>`, run with `--ignored`, then
/// `python std-runtime/tests/keras_check/check_load.py <dir>`.
#[test]
#[ignore = "manual: writes files for std-runtime/tests/keras_check/check_load.py"]
fn keras_files_for_manual_check() {
    let dir = std::env::var_os("MICROFIT_KERAS_CHECK_OUT")
        .expect("set MICROFIT_KERAS_CHECK_OUT to the folder to write");
    microfit_tests::keras_files::write_manual_check(std::path::Path::new(&dir));
}

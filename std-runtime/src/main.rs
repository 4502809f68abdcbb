//! The `microfit` command line (see `microfit --help`, or `microfit::cli`).

fn main() -> std::process::ExitCode {
    microfit::cli::run(std::env::args_os())
}

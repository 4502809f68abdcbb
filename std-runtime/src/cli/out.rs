//! Writing to stdout and stderr without panicking.
//!
//! `println!` panics when stdout is closed (`microfit predict … | head -1`). Everything the CLI
//! prints goes through [`line()`] / [`text()`] instead: a closed pipe becomes
//! [`CliError::broken_pipe`], which ends the program quietly with [`EXIT_BROKEN_PIPE`] (what a
//! shell reports for a program stopped by `SIGPIPE`). Messages on stderr use [`note`], which
//! ignores a closed stderr.

use std::io::Write as _;

use super::CliError;

/// Exit status after stdout was closed: 128 + `SIGPIPE` (13), as shells report `yes | head -1`.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Maps a write error: a closed pipe is the quiet [`CliError::broken_pipe`], anything else an
/// error naming stdout.
pub fn stdout_error(e: &std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::broken_pipe()
    } else {
        CliError::new(format!("cannot write to stdout: {e}"))
    }
}

/// Writes `s` and a newline to stdout, flushed.
///
/// # Errors
/// See [`stdout_error`].
pub fn line(s: &str) -> Result<(), CliError> {
    raw_line(s).map_err(|e| stdout_error(&e))
}

/// [`line()`] with the raw I/O error (for the training observers).
///
/// # Errors
/// The write error.
pub fn raw_line(s: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes `s` to stdout as it is, flushed.
///
/// # Errors
/// See [`stdout_error`].
pub fn text(s: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| stdout_error(&e))
}

/// Writes `s` and a newline to stderr, ignoring errors (a closed stderr has no reader).
pub fn note(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.write_all(b"\n");
}

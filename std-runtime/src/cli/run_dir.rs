//! Run folders as transactions.
//!
//! A run writes into `<out>.partial/`, a fresh folder beside `--out`. Only when it has a model
//! to show (training completed, stopped early, or stopped on a NaN after at least one good
//! epoch) does [`RunDir::commit`] replace `--out` with it: the old folder is renamed aside,
//! the new one renamed into place, then the old one removed. Otherwise `--out` is left as it
//! was, and the partial run stays in `<out>.partial/` (where `--resume` finds it).
//!
//! A folder that holds files but no run (no `model.mfit`, `checkpoint.mfit`, `spec.toml` or
//! `sweep.csv`) is never replaced: the run is refused before it starts.

use std::path::{Path, PathBuf};

use super::CliError;
use super::out::note;

/// Files that mark a folder as a microfit run (or sweep) folder.
const RUN_MARKERS: [&str; 5] = [
    "model.mfit",
    "checkpoint.mfit",
    "spec.toml",
    "sweep.csv",
    "history.csv",
];

/// The output folder of a run and its partial twin.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// `--out`.
    pub out: PathBuf,
    /// `<out>.partial`, where the run is written.
    pub partial: PathBuf,
}

impl RunDir {
    /// The folders for `out` (no file is touched).
    ///
    /// # Errors
    /// `out` does not name a folder (`.`, `/`).
    pub fn new(out: &Path) -> Result<RunDir, CliError> {
        let name = out.file_name().ok_or_else(|| {
            CliError::usage(format!(
                "--out {}: give the run its own folder (e.g. --out runs/first); it is replaced \
                 as a whole when the run ends",
                out.display()
            ))
        })?;
        let mut partial_name = name.to_os_string();
        partial_name.push(".partial");
        Ok(RunDir {
            out: out.to_path_buf(),
            partial: out.with_file_name(partial_name),
        })
    }

    /// Checks that `out` may be replaced: it does not exist, is empty, or holds a run.
    ///
    /// # Errors
    /// `out` is a file, or a folder with other files in it.
    pub fn check_replaceable(&self) -> Result<(), CliError> {
        let out = &self.out;
        if !out.exists() {
            return Ok(());
        }
        if !out.is_dir() {
            return Err(CliError::new(format!(
                "--out {}: is a file, not a folder",
                out.display()
            )));
        }
        let mut entries =
            std::fs::read_dir(out).map_err(|e| CliError::new(format!("{}: {e}", out.display())))?;
        let empty = entries.next().is_none();
        if empty || RUN_MARKERS.iter().any(|m| out.join(m).exists()) {
            Ok(())
        } else {
            Err(CliError::new(format!(
                "--out {}: the folder holds files but no microfit run; a run replaces its \
                 folder as a whole, so give a new or empty folder",
                out.display()
            )))
        }
    }

    /// Starts a fresh run: an empty `<out>.partial/` (a partial run left there before is
    /// discarded, with a note).
    ///
    /// # Errors
    /// `out` cannot be replaced, or the folder cannot be created.
    pub fn begin(&self) -> Result<(), CliError> {
        self.check_replaceable()?;
        if self.partial.exists() {
            note(&format!(
                "note: discarding the unfinished run in {} (train with --resume to continue one)",
                self.partial.display()
            ));
            // Renamed aside first (atomic), so a kill never leaves half of the old partial run.
            let trash = self.aside("discarded");
            std::fs::rename(&self.partial, &trash)
                .and_then(|()| std::fs::remove_dir_all(&trash))
                .map_err(|e| CliError::new(format!("{}: {e}", self.partial.display())))?;
        }
        self.create_partial()
    }

    /// Creates `<out>.partial/` (and its parents) if needed.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn create_partial(&self) -> Result<(), CliError> {
        super::ensure_dir(&self.partial)
    }

    /// A hidden name beside `out` for a folder on its way out: `.<name>.<what>-<pid>`.
    fn aside(&self, what: &str) -> PathBuf {
        let mut name = std::ffi::OsString::from(".");
        name.push(self.out.file_name().unwrap_or_default());
        name.push(format!(".{what}-{}", std::process::id()));
        self.out.with_file_name(name)
    }

    /// Replaces `out` with the partial folder.
    ///
    /// # Errors
    /// A rename fails (the old folder is put back when it can be).
    pub fn commit(&self) -> Result<(), CliError> {
        let fail = |what: &str, e: std::io::Error| {
            CliError::new(format!(
                "cannot move the finished run from {} to {} ({what}: {e}); it is complete in {}",
                self.partial.display(),
                self.out.display(),
                self.partial.display()
            ))
        };
        if !self.out.exists() {
            return std::fs::rename(&self.partial, &self.out).map_err(|e| fail("rename", e));
        }
        let old = self.aside("old");
        std::fs::rename(&self.out, &old).map_err(|e| fail("moving the old run aside", e))?;
        if let Err(e) = std::fs::rename(&self.partial, &self.out) {
            let _ = std::fs::rename(&old, &self.out);
            return Err(fail("rename", e));
        }
        if let Err(e) = std::fs::remove_dir_all(&old) {
            note(&format!(
                "warning: the previous run was moved to {} but could not be removed: {e}",
                old.display()
            ));
        }
        Ok(())
    }
}

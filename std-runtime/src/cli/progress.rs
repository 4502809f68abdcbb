//! What `train` prints while it trains, as Keras' `verbose`:
//!
//! * `0`: nothing;
//! * `1`: a progress bar on stderr, and one line per epoch kept above it (the default in a
//!   terminal);
//! * `2`: one line per epoch on stdout, `Epoch 3/100 - 12ms - loss: 0.6412 - accuracy: 0.7250
//!   - val_loss: …` (the default when stdout is not a terminal: logs, CI, pipes).
//!
//! With `--json`, one JSON object per epoch instead. Events (early stopping, TerminateOnNaN)
//! go to stderr, or above the bar.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::out::{note, raw_line};
use crate::history::{json_f32, json_object, json_string};
use crate::report::num;
use crate::train_run::EpochObserver;

/// Keras' `verbose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Nothing.
    Silent,
    /// A progress bar and a kept line per epoch.
    Bar,
    /// One line per epoch.
    Lines,
    /// One JSON object per epoch.
    Json,
}

impl Verbosity {
    /// From `--verbose`, `--quiet` and `--json`; without `--verbose`, a bar in a terminal and
    /// lines elsewhere.
    pub fn choose(verbose: Option<u8>, quiet: bool, json: bool) -> Verbosity {
        if json {
            return Verbosity::Json;
        }
        if quiet {
            return Verbosity::Silent;
        }
        match verbose {
            Some(0) => Verbosity::Silent,
            Some(1) => Verbosity::Bar,
            Some(_) => Verbosity::Lines,
            None if super::interactive() => Verbosity::Bar,
            None => Verbosity::Lines,
        }
    }
}

/// The history keys shown per epoch: the loss and the metrics, training then validation.
const SHOWN: [&str; 6] = ["loss", "accuracy", "mse", "rmse", "mae", "r2"];

/// `1.23s` or `45ms`.
fn duration(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `Epoch 3/100 - 12ms - loss: 0.6412 - accuracy: 0.7250 - val_loss: 0.6391 - …`.
pub fn epoch_line(epoch: u32, total: u32, row: &[(String, f32)], elapsed: Duration) -> String {
    let mut s = format!("Epoch {}/{total} - {}", epoch + 1, duration(elapsed));
    for (k, v) in row {
        if SHOWN.contains(&k.strip_prefix("val_").unwrap_or(k)) {
            s.push_str(&format!(" - {k}: {}", num(*v)));
        }
    }
    s
}

/// The training observer of the CLI.
#[derive(Debug)]
pub struct Ui {
    mode: Verbosity,
    bar: Option<ProgressBar>,
}

impl Ui {
    /// An observer printing as `mode` says.
    pub fn new(mode: Verbosity) -> Ui {
        use std::io::IsTerminal as _;
        // indicatif draws nothing when stderr is not a terminal: the lines then go to stderr.
        let bar = (mode == Verbosity::Bar && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "epoch {pos:>4}/{len} [{bar:30.cyan/blue}] {elapsed_precise} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Ui { mode, bar }
    }

    /// Removes the bar (the kept lines stay).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// Prints a line the way this mode prints events.
    pub fn message(&self, message: &str) {
        match (&self.bar, self.mode) {
            (Some(b), _) => b.println(message),
            (None, Verbosity::Silent) => {}
            (None, _) => note(message),
        }
    }
}

impl EpochObserver for Ui {
    fn on_start(&mut self, first: u32, total: u32) -> std::io::Result<()> {
        if let Some(b) = &self.bar {
            b.set_length(u64::from(total));
            b.set_position(u64::from(first));
            b.reset_eta();
        }
        Ok(())
    }

    fn on_epoch(
        &mut self,
        epoch: u32,
        total: u32,
        row: &[(String, f32)],
        elapsed: Duration,
    ) -> std::io::Result<()> {
        match self.mode {
            Verbosity::Silent => Ok(()),
            Verbosity::Json => {
                let mut pairs = vec![
                    ("event".to_string(), json_string("epoch")),
                    ("epoch".to_string(), (epoch + 1).to_string()),
                    ("epochs".to_string(), total.to_string()),
                    ("seconds".to_string(), json_f32(elapsed.as_secs_f32())),
                ];
                pairs.extend(row.iter().map(|(k, v)| (k.clone(), json_f32(*v))));
                raw_line(&json_object(&pairs))
            }
            Verbosity::Lines => raw_line(&epoch_line(epoch, total, row, elapsed)),
            Verbosity::Bar => {
                let line = epoch_line(epoch, total, row, elapsed);
                match &self.bar {
                    Some(b) => {
                        b.println(line);
                        b.set_position(u64::from(epoch + 1));
                    }
                    None => note(&line),
                }
                Ok(())
            }
        }
    }

    fn on_event(&mut self, message: &str) -> std::io::Result<()> {
        if self.mode == Verbosity::Json {
            return raw_line(&json_object(&[
                ("event".into(), json_string("message")),
                ("message".into(), json_string(message)),
            ]));
        }
        self.message(message);
        Ok(())
    }
}

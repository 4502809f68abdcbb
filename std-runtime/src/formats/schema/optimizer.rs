//! [`OptimizerConfig`]: an optimizer as Keras configures it (`SGD`, `Adam`, `AdamW` and their
//! arguments), the schema's one form of an optimizer. It builds the core's [`AnyOptimizer`]
//! ([`OptimizerConfig::build`], the one place that decides which core optimizer a
//! configuration is), checks its values ([`OptimizerConfig::validate`]) and names its slots in
//! Keras' order ([`OptimizerConfig::slot_names`]).
//!
//! Its serde form is the TOML spec's `[optimizer]` table:
//!
//! ```toml
//! [optimizer]
//! name = "sgd"                 # "sgd", "adam" (default) or "adamw"
//! learning_rate = 0.05         # the initial rate with a schedule
//! momentum = 0.9               # SGD: momentum, nesterov
//! nesterov = true              # Adam/AdamW: beta_1, beta_2, epsilon
//! clipnorm = 1.0               # every optimizer: weight_decay, clipnorm, clipvalue, global_clipnorm
//! schedule = { type = "exponential_decay", decay_steps = 100, decay_rate = 0.9, staircase = false }
//! ```
//!
//! ```
//! use microfit::formats::schema::{OptimizerConfig, OptimizerKind};
//! let o: OptimizerConfig = toml::from_str("name = \"adamw\"\nlearning_rate = 0.01\n")?;
//! assert_eq!((o.kind, o.common.weight_decay), (OptimizerKind::AdamW, Some(0.004)));
//! assert_eq!(o.slot_names(), ["m", "v"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use microfit_core::optim::clip::Clip;
use microfit_core::optim::schedule::{ExponentialDecay, Schedule};
use microfit_core::optim::{Adam, AdamConfig, AnyOptimizer, Common, Momentum, Sgd};
use microfit_core::params::Params;
use serde::{Deserialize, Serialize};

/// Default learning rate of a spec that does not give one (microfit's, for the small models of
/// the CLI; Keras' own default, 0.001 for Adam, applies to Keras configs).
pub const DEFAULT_LEARNING_RATE: f32 = 0.01;

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Keras `SGD` (with momentum when `momentum != 0`).
    Sgd,
    /// Keras `Adam`.
    Adam,
    /// Keras `AdamW`.
    AdamW,
}

impl OptimizerKind {
    /// `"sgd"`, `"adam"` or `"adamw"`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sgd" => Some(OptimizerKind::Sgd),
            "adam" => Some(OptimizerKind::Adam),
            "adamw" => Some(OptimizerKind::AdamW),
            _ => None,
        }
    }
}

/// An optimizer configuration (Keras' arguments; see the module docs for its TOML form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "OptimizerForm", into = "OptimizerForm")]
pub struct OptimizerConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate or schedule.
    pub learning_rate: Schedule,
    /// SGD momentum (0: plain SGD, no slot).
    pub momentum: f32,
    /// SGD Nesterov momentum (no effect without momentum, as in Keras).
    pub nesterov: bool,
    /// Adam β1.
    pub beta_1: f32,
    /// Adam β2.
    pub beta_2: f32,
    /// Adam ε.
    pub epsilon: f32,
    /// Weight decay and clipping.
    pub common: Common,
}

impl Default for OptimizerConfig {
    /// Adam at [`DEFAULT_LEARNING_RATE`].
    fn default() -> Self {
        OptimizerConfig::adam(DEFAULT_LEARNING_RATE)
    }
}

impl OptimizerConfig {
    /// Keras' `AdamW` default weight decay.
    pub const ADAMW_WEIGHT_DECAY: f32 = 0.004;

    /// `kind` with `learning_rate` and Keras' other defaults (`AdamW`: weight decay 0.004).
    pub fn new(kind: OptimizerKind, learning_rate: Schedule) -> Self {
        let d = AdamConfig::default();
        OptimizerConfig {
            kind,
            learning_rate,
            momentum: 0.0,
            nesterov: false,
            beta_1: d.beta_1,
            beta_2: d.beta_2,
            epsilon: d.epsilon,
            common: Common {
                weight_decay: (kind == OptimizerKind::AdamW).then_some(Self::ADAMW_WEIGHT_DECAY),
                ..Common::default()
            },
        }
    }

    /// Adam with `learning_rate` and Keras' other defaults.
    pub fn adam(learning_rate: f32) -> Self {
        OptimizerConfig::new(OptimizerKind::Adam, Schedule::Constant(learning_rate))
    }

    /// Whether this is SGD with momentum: Keras' rule, `momentum != 0` (Nesterov without
    /// momentum is plain SGD).
    pub fn has_momentum(&self) -> bool {
        self.kind == OptimizerKind::Sgd && self.momentum != 0.0
    }

    /// The optimizer's slots per variable, in Keras' order (`optimizer/vars` of a `.keras`
    /// file): Adam `m`, `v`; SGD with momentum `momentum`; plain SGD none.
    pub fn slot_names(&self) -> &'static [&'static str] {
        match self.kind {
            OptimizerKind::Adam | OptimizerKind::AdamW => &["m", "v"],
            OptimizerKind::Sgd if self.has_momentum() => &["momentum"],
            OptimizerKind::Sgd => &[],
        }
    }

    /// The optimizer for parameters shaped like `like`, with fresh state.
    ///
    /// # Errors
    /// A core [`microfit_core::Error::InvalidHyperparameter`] for a bad value.
    pub fn build<P: Params>(&self, like: &P) -> Result<AnyOptimizer<P>, microfit_core::Error> {
        Ok(match self.kind {
            OptimizerKind::Sgd if self.has_momentum() => AnyOptimizer::Momentum(Momentum::with(
                self.learning_rate,
                self.momentum,
                self.nesterov,
                self.common,
                like,
            )?),
            OptimizerKind::Sgd => AnyOptimizer::Sgd(Sgd::with(self.learning_rate, self.common)?),
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                AnyOptimizer::Adam(Adam::with_config(self.adam_config(), like)?)
            }
        })
    }

    /// Checks every value (the core's ranges: rates > 0, β in `[0, 1)`, momentum in `[0, 1]`,
    /// clipping exclusivity, ...).
    ///
    /// # Errors
    /// The core's [`microfit_core::Error::InvalidHyperparameter`], naming the argument.
    pub fn validate(&self) -> Result<(), microfit_core::Error> {
        self.build(&()).map(|_| ())
    }

    /// Adam's configuration (rate, betas, epsilon, decay and clipping).
    pub fn adam_config(&self) -> AdamConfig {
        AdamConfig {
            learning_rate: self.learning_rate,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            common: self.common,
        }
    }

    /// The initial learning rate.
    pub fn initial_learning_rate(&self) -> f32 {
        match self.learning_rate {
            Schedule::Constant(lr) => lr,
            Schedule::Exponential(e) => e.initial_learning_rate,
        }
    }
}

/// The `[optimizer]` table as written: every key optional, unknown keys refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizerForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    learning_rate: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    momentum: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nesterov: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    beta_1: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    beta_2: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epsilon: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight_decay: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clipnorm: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clipvalue: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    global_clipnorm: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleForm>,
}

/// `schedule = { type = "exponential_decay", decay_steps, decay_rate, staircase }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleForm {
    #[serde(rename = "type")]
    kind: String,
    decay_steps: u32,
    decay_rate: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    staircase: Option<bool>,
}

impl TryFrom<OptimizerForm> for OptimizerConfig {
    type Error = String;

    fn try_from(o: OptimizerForm) -> Result<Self, String> {
        let kind = match o.name.as_deref() {
            None => OptimizerKind::Adam,
            Some(n) => OptimizerKind::from_name(n).ok_or_else(|| {
                format!("name: unknown optimizer {n:?}; expected \"sgd\", \"adam\" or \"adamw\"")
            })?,
        };
        let not_used = |name: &str, set: bool, sgd_setting: bool| -> Result<(), String> {
            match (set, sgd_setting, kind == OptimizerKind::Sgd) {
                (true, true, false) => Err(format!(
                    "{name}: is an SGD setting, not used by {}",
                    kind.name()
                )),
                (true, false, true) => Err(format!("{name}: is an Adam setting, not used by sgd")),
                _ => Ok(()),
            }
        };
        not_used("momentum", o.momentum.is_some(), true)?;
        not_used("nesterov", o.nesterov.is_some(), true)?;
        not_used("beta_1", o.beta_1.is_some(), false)?;
        not_used("beta_2", o.beta_2.is_some(), false)?;
        not_used("epsilon", o.epsilon.is_some(), false)?;
        let lr = o.learning_rate.unwrap_or(DEFAULT_LEARNING_RATE);
        let learning_rate = match o.schedule {
            None => Schedule::Constant(lr),
            Some(s) if s.kind == "exponential_decay" => Schedule::Exponential(ExponentialDecay {
                initial_learning_rate: lr,
                decay_steps: s.decay_steps,
                decay_rate: s.decay_rate,
                staircase: s.staircase.unwrap_or(false),
            }),
            Some(s) => {
                return Err(format!(
                    "schedule.type: unknown schedule {:?}; expected \"exponential_decay\"",
                    s.kind
                ));
            }
        };
        let mut c = OptimizerConfig::new(kind, learning_rate);
        c.momentum = o.momentum.unwrap_or(c.momentum);
        c.nesterov = o.nesterov.unwrap_or(c.nesterov);
        c.beta_1 = o.beta_1.unwrap_or(c.beta_1);
        c.beta_2 = o.beta_2.unwrap_or(c.beta_2);
        c.epsilon = o.epsilon.unwrap_or(c.epsilon);
        c.common.weight_decay = o.weight_decay.or(c.common.weight_decay);
        c.common.clip = Clip {
            clipvalue: o.clipvalue,
            clipnorm: o.clipnorm,
            global_clipnorm: o.global_clipnorm,
        };
        Ok(c)
    }
}

impl From<OptimizerConfig> for OptimizerForm {
    /// Every setting of the kind, AdamW's default weight decay left out.
    fn from(o: OptimizerConfig) -> Self {
        let (lr, schedule) = match o.learning_rate {
            Schedule::Constant(lr) => (lr, None),
            Schedule::Exponential(e) => (
                e.initial_learning_rate,
                Some(ScheduleForm {
                    kind: "exponential_decay".into(),
                    decay_steps: e.decay_steps,
                    decay_rate: e.decay_rate,
                    staircase: Some(e.staircase),
                }),
            ),
        };
        let sgd = o.kind == OptimizerKind::Sgd;
        let weight_decay = match (o.kind, o.common.weight_decay) {
            (OptimizerKind::AdamW, Some(w)) if w == OptimizerConfig::ADAMW_WEIGHT_DECAY => None,
            (_, w) => w,
        };
        OptimizerForm {
            name: Some(o.kind.name().to_string()),
            learning_rate: Some(lr),
            momentum: (sgd && o.momentum != 0.0).then_some(o.momentum),
            nesterov: (sgd && o.nesterov).then_some(true),
            beta_1: (!sgd).then_some(o.beta_1),
            beta_2: (!sgd).then_some(o.beta_2),
            epsilon: (!sgd).then_some(o.epsilon),
            weight_decay,
            clipnorm: o.common.clip.clipnorm,
            clipvalue: o.common.clip.clipvalue,
            global_clipnorm: o.common.clip.global_clipnorm,
            schedule,
        }
    }
}

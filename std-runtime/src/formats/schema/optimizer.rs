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
//! exclude_from_weight_decay = ["bias"]   # Keras' var_names: plain substrings of kernel, bias
//! use_ema = true               # Keras' EMA of the weights: ema_momentum (0.99),
//! ema_momentum = 0.99          # ema_overwrite_frequency (none)
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
use microfit_core::optim::{
    Adam, AdamConfig, AnyOptimizer, Common, Ema, EmaConfig, ExcludeFromWeightDecay, Momentum,
    Optimizer, Sgd,
};
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
    /// Weight decay (with its `exclude_from_weight_decay`) and clipping.
    pub common: Common,
    /// Keras `use_ema=True` with its `ema_momentum` and `ema_overwrite_frequency` (`None`:
    /// `use_ema=False`, the default).
    pub ema: Option<EmaConfig>,
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
            ema: None,
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
        if let Some(e) = &self.ema {
            e.validate()?;
        }
        self.build(&()).map(|_| ())
    }

    /// The optimizer the training driver steps: [`OptimizerConfig::build`], wrapped in Keras'
    /// moving average of the weights when `use_ema` is on.
    ///
    /// # Errors
    /// As [`OptimizerConfig::build`], or a bad EMA setting.
    pub fn build_run<P: Params>(&self, like: &P) -> Result<RunOptimizer<P>, microfit_core::Error> {
        let o = self.build(like)?;
        Ok(match self.ema {
            Some(e) => RunOptimizer::Ema(Ema::new(o, e, like)?),
            None => RunOptimizer::Plain(o),
        })
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

/// The optimizer a run steps: the configured one ([`AnyOptimizer`]), or it inside the core's
/// [`Ema`] when `use_ema` is on ([`OptimizerConfig::build_run`]). Every step, the iteration
/// count and `finalize_variable_values` are the core's.
#[derive(Debug, Clone)]
pub enum RunOptimizer<P: Params> {
    /// Without `use_ema`.
    Plain(AnyOptimizer<P>),
    /// With `use_ema`: the averages are the slot `average` (Keras' optimizer variables).
    Ema(Ema<AnyOptimizer<P>, P>),
}

impl<P: Params> RunOptimizer<P> {
    /// The configured optimizer (inside the EMA, if any).
    pub fn any(&self) -> &AnyOptimizer<P> {
        match self {
            RunOptimizer::Plain(o) => o,
            RunOptimizer::Ema(e) => &e.inner,
        }
    }

    /// Mutable [`RunOptimizer::any`].
    pub fn any_mut(&mut self) -> &mut AnyOptimizer<P> {
        match self {
            RunOptimizer::Plain(o) => o,
            RunOptimizer::Ema(e) => &mut e.inner,
        }
    }

    /// The moving averages of the weights (`None` without `use_ema`).
    pub fn average(&self) -> Option<&P> {
        match self {
            RunOptimizer::Plain(_) => None,
            RunOptimizer::Ema(e) => Some(e.average()),
        }
    }

    /// Mutable [`RunOptimizer::average`] (restoring a checkpoint).
    pub fn average_mut(&mut self) -> Option<&mut P> {
        match self {
            RunOptimizer::Plain(_) => None,
            RunOptimizer::Ema(e) => Some(e.average_mut()),
        }
    }
}

impl<P: Params> From<AnyOptimizer<P>> for RunOptimizer<P> {
    fn from(o: AnyOptimizer<P>) -> Self {
        RunOptimizer::Plain(o)
    }
}

impl<P: Params> Optimizer<P> for RunOptimizer<P> {
    /// The most slots a run may hold (Adam's two and the average); the run-time model
    /// allocates its slots itself.
    const SLOTS: usize = 3;

    fn step<B: microfit_core::backend::Backend>(&mut self, w: &mut P, g: &mut P) {
        match self {
            RunOptimizer::Plain(o) => o.step::<B>(w, g),
            RunOptimizer::Ema(e) => e.step::<B>(w, g),
        }
    }

    /// The plain optimizer's own (it computes the L2 penalties' `Σw²` in its update); an EMA
    /// takes the default (no sums).
    fn step_sq<B: microfit_core::backend::Backend>(
        &mut self,
        w: &mut P,
        g: &mut P,
        sq: &mut microfit_core::regularizer::SumSqs,
    ) {
        match self {
            RunOptimizer::Plain(o) => o.step_sq::<B>(w, g, sq),
            RunOptimizer::Ema(e) => e.step_sq::<B>(w, g, sq),
        }
    }

    fn iterations(&self) -> u32 {
        self.any().iterations()
    }

    fn reset(&mut self) {
        match self {
            RunOptimizer::Plain(o) => o.reset(),
            RunOptimizer::Ema(e) => e.reset(),
        }
    }

    fn finalize_variable_values(&self, w: &mut P) {
        if let RunOptimizer::Ema(e) = self {
            e.finalize_variable_values(w);
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exclude_from_weight_decay: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    use_ema: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ema_momentum: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ema_overwrite_frequency: Option<u32>,
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
        if let Some(names) = &o.exclude_from_weight_decay {
            c.common.exclude_from_weight_decay = ExcludeFromWeightDecay::from_var_names(names)
                .map_err(|e| format!("exclude_from_weight_decay: {e}"))?;
        }
        if o.use_ema != Some(true)
            && (o.ema_momentum.is_some() || o.ema_overwrite_frequency.is_some())
        {
            return Err(
                "use_ema: ema_momentum and ema_overwrite_frequency need use_ema = true".into(),
            );
        }
        c.ema = (o.use_ema == Some(true)).then(|| EmaConfig {
            ema_momentum: o.ema_momentum.unwrap_or(EmaConfig::default().ema_momentum),
            ema_overwrite_frequency: o.ema_overwrite_frequency,
        });
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
            exclude_from_weight_decay: exclusion_names(o.common.exclude_from_weight_decay),
            use_ema: o.ema.map(|_| true),
            ema_momentum: o.ema.map(|e| e.ema_momentum),
            ema_overwrite_frequency: o.ema.and_then(|e| e.ema_overwrite_frequency),
        }
    }
}

/// Keras `var_names` that exclude exactly the variables of `e` (`None`: nothing excluded).
pub fn exclusion_names(e: ExcludeFromWeightDecay) -> Option<Vec<String>> {
    let names: Vec<String> = [("kernel", e.kernel), ("bias", e.bias)]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n.to_string())
        .collect();
    (!names.is_empty()).then_some(names)
}

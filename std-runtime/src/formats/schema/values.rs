//! The serde forms of the core's values inside the schema, one per kind of value:
//!
//! | value | form | example |
//! |---|---|---|
//! | [`Reg`] | [`RegForm`] | `{ l2 = 1e-3 }`, `{ l1 = 1e-4, l2 = 1e-3 }`, `{ orthogonal = 0.01, mode = "rows" }` |
//! | [`Initializer`] | [`InitForm`] | `"he_normal"`, `{ constant = 0.1 }` |
//! | [`Constraint`] | [`ConstraintForm`] | `{ name = "max_norm", max_value = 2.0, axis = 0 }`, `{ name = "non_neg" }` |
//! | [`Activation`] | [`activation_from`] / [`activation_to`] | `activation = "leaky_relu"`, `negative_slope = 0.1` |
//! | [`Loss`] | [`loss`] | `"mse"`, `{ name = "categorical_crossentropy", from_logits = true, label_smoothing = 0.1 }` |
//! | sizes | [`sizes`] | `3` or `[3, 3]` |
//!
//! A new kind of value gets its form here, next to these. Values are only
//! read into their type here; their ranges are checked by the schema's validation
//! ([`super::ModelSpec::shapes`], [`super::OptimizerConfig::validate`]), which names the field.

use microfit_core::activation::Activation;
use microfit_core::constraint::{Axes, Constraint};
use microfit_core::init::Initializer;
use microfit_core::loss::Loss;
use microfit_core::regularizer::{OrthoMode, Reg};
use serde::{Deserialize, Serialize};

/// The form of a regularizer: `{ l1 }`, `{ l2 }`, `{ l1, l2 }` or `{ orthogonal, mode }`
/// (converted with `Reg::try_from` and `RegForm::from`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l1: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l2: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    orthogonal: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
}

impl From<&Reg> for RegForm {
    fn from(r: &Reg) -> Self {
        match *r {
            Reg::L1 { l1 } => RegForm {
                l1: Some(l1),
                ..RegForm::default()
            },
            Reg::L2 { l2 } => RegForm {
                l2: Some(l2),
                ..RegForm::default()
            },
            Reg::L1L2 { l1, l2 } => RegForm {
                l1: Some(l1),
                l2: Some(l2),
                ..RegForm::default()
            },
            Reg::Orthogonal { factor, mode } => RegForm {
                orthogonal: Some(factor),
                mode: Some(
                    match mode {
                        OrthoMode::Rows => "rows",
                        OrthoMode::Columns => "columns",
                    }
                    .into(),
                ),
                ..RegForm::default()
            },
            // A new kind of regularizer needs its form here; until then it is written as an
            // empty table, which reading refuses.
            _ => RegForm::default(),
        }
    }
}

impl TryFrom<RegForm> for Reg {
    type Error = String;

    fn try_from(r: RegForm) -> Result<Reg, String> {
        if let Some(factor) = r.orthogonal {
            if r.l1.is_some() || r.l2.is_some() {
                return Err("orthogonal cannot be combined with l1/l2 in one regularizer".into());
            }
            let mode = match r.mode.as_deref() {
                None | Some("rows") => OrthoMode::Rows,
                Some("columns") => OrthoMode::Columns,
                Some(m) => {
                    return Err(format!(
                        "mode: unknown mode {m:?}; expected \"rows\" or \"columns\""
                    ));
                }
            };
            return Ok(Reg::Orthogonal { factor, mode });
        }
        if r.mode.is_some() {
            return Err("mode: only used with orthogonal".into());
        }
        match (r.l1, r.l2) {
            (Some(l1), None) => Ok(Reg::L1 { l1 }),
            (None, Some(l2)) => Ok(Reg::L2 { l2 }),
            (Some(l1), Some(l2)) => Ok(Reg::L1L2 { l1, l2 }),
            (None, None) => Err(
                "empty regularizer; give l1, l2 (or both), or orthogonal (e.g. { l2 = 1e-3 })"
                    .into(),
            ),
        }
    }
}

/// The form of a weight constraint: Keras' class in snake case as `name`, with Keras' arguments
/// (missing ones take Keras' defaults): `{ name = "max_norm", max_value = 2.0, axis = 0 }`,
/// `{ name = "min_max_norm", min_value = 0.0, max_value = 1.0, rate = 1.0, axis = 0 }`,
/// `{ name = "unit_norm", axis = [0, 1] }`, `{ name = "non_neg" }` (converted with
/// `Constraint::try_from` and `ConstraintForm::from`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintForm {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_value: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_value: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    axis: Option<Axes>,
}

/// The constraint names of [`ConstraintForm`].
pub const CONSTRAINT_NAMES: [&str; 4] = ["max_norm", "min_max_norm", "non_neg", "unit_norm"];

impl From<&Constraint> for ConstraintForm {
    fn from(c: &Constraint) -> Self {
        let named = |name: &str| ConstraintForm {
            name: name.into(),
            ..ConstraintForm::default()
        };
        match *c {
            Constraint::MaxNorm { max_value, axis } => ConstraintForm {
                max_value: Some(max_value),
                axis: Some(axis),
                ..named("max_norm")
            },
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axis,
            } => ConstraintForm {
                min_value: Some(min_value),
                max_value: Some(max_value),
                rate: Some(rate),
                axis: Some(axis),
                ..named("min_max_norm")
            },
            Constraint::UnitNorm { axis } => ConstraintForm {
                axis: Some(axis),
                ..named("unit_norm")
            },
            // A new kind of constraint needs its form here; until then its Keras class is
            // written, which reading refuses.
            _ => named(c.keras_class()),
        }
    }
}

impl TryFrom<ConstraintForm> for Constraint {
    type Error = String;

    fn try_from(f: ConstraintForm) -> Result<Constraint, String> {
        let key: String = f
            .name
            .chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let axis = f.axis.unwrap_or(Axes::one(0));
        let unused = |used: &[&str]| -> Result<(), String> {
            for (k, set) in [
                ("min_value", f.min_value.is_some()),
                ("max_value", f.max_value.is_some()),
                ("rate", f.rate.is_some()),
                ("axis", f.axis.is_some()),
            ] {
                if set && !used.contains(&k) {
                    return Err(format!("{k}: is not an argument of {}", f.name));
                }
            }
            Ok(())
        };
        Ok(match key.as_str() {
            "maxnorm" => {
                unused(&["max_value", "axis"])?;
                Constraint::max_norm(f.max_value.unwrap_or(2.0), axis)
            }
            "minmaxnorm" => {
                unused(&["min_value", "max_value", "rate", "axis"])?;
                Constraint::min_max_norm(
                    f.min_value.unwrap_or(0.0),
                    f.max_value.unwrap_or(1.0),
                    f.rate.unwrap_or(1.0),
                    axis,
                )
            }
            "nonneg" => {
                unused(&[])?;
                Constraint::NonNeg
            }
            "unitnorm" => {
                unused(&["axis"])?;
                Constraint::unit_norm(axis)
            }
            _ => {
                return Err(format!(
                    "name: unknown constraint {:?}; expected {}",
                    f.name,
                    CONSTRAINT_NAMES.join(", ")
                ));
            }
        })
    }
}

/// The form of an initializer: a Keras name or `{ constant = x }` (converted with
/// `Initializer::try_from` and `InitForm::from`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InitForm {
    /// `"glorot_uniform"`, `"he_normal"`, `"zeros"`, ...
    Name(String),
    /// `{ constant = 0.1 }`.
    Constant {
        /// The value.
        constant: f32,
    },
}

impl From<Initializer> for InitForm {
    fn from(i: Initializer) -> Self {
        let name = match i {
            Initializer::GlorotUniform => "glorot_uniform",
            Initializer::GlorotNormal => "glorot_normal",
            Initializer::HeUniform => "he_uniform",
            Initializer::HeNormal => "he_normal",
            Initializer::Zeros => "zeros",
            Initializer::Ones => "ones",
            Initializer::Constant(constant) => return InitForm::Constant { constant },
        };
        InitForm::Name(name.into())
    }
}

impl TryFrom<InitForm> for Initializer {
    type Error = String;

    fn try_from(i: InitForm) -> Result<Initializer, String> {
        match i {
            InitForm::Constant { constant } if constant.is_finite() => {
                Ok(Initializer::Constant(constant))
            }
            InitForm::Constant { .. } => Err("constant: must be finite".into()),
            InitForm::Name(n) => Ok(match n.to_ascii_lowercase().as_str() {
                "glorot_uniform" | "glorotuniform" => Initializer::GlorotUniform,
                "glorot_normal" | "glorotnormal" => Initializer::GlorotNormal,
                "he_uniform" | "heuniform" => Initializer::HeUniform,
                "he_normal" | "henormal" => Initializer::HeNormal,
                "zeros" => Initializer::Zeros,
                "ones" => Initializer::Ones,
                _ => {
                    return Err(format!(
                        "unknown initializer {n:?}; expected glorot_uniform, glorot_normal, \
                         he_uniform, he_normal, zeros, ones or {{ constant = x }}"
                    ));
                }
            }),
        }
    }
}

/// An activation from its Keras name and, for `leaky_relu`, its `negative_slope`.
///
/// # Errors
/// An unknown name, a slope that is not finite, or a slope without `leaky_relu`, as
/// `"<field>: <reason>"`.
pub fn activation_from(name: Option<&str>, slope: Option<f32>) -> Result<Activation, String> {
    let a = match name {
        None => Activation::Linear,
        Some(n) => Activation::from_keras_name(n).ok_or_else(|| {
            format!(
                "activation: unknown activation {n:?}; expected linear, relu, sigmoid, tanh, \
                 softmax or leaky_relu"
            )
        })?,
    };
    match (a, slope) {
        (Activation::LeakyRelu(_), Some(s)) if s.is_finite() => Ok(Activation::LeakyRelu(s)),
        (Activation::LeakyRelu(_), Some(_)) => Err("negative_slope: must be finite".into()),
        (_, Some(_)) => Err("negative_slope: only used with activation = \"leaky_relu\"".into()),
        (a, None) => Ok(a),
    }
}

/// The Keras name of an activation and, for a leaky ReLU, its slope.
pub fn activation_to(a: Activation) -> (String, Option<f32>) {
    let slope = match a {
        Activation::LeakyRelu(s) => Some(s),
        _ => None,
    };
    (a.keras_name().to_string(), slope)
}

/// The Keras loss names the schema accepts (each also under its Keras class name).
pub const LOSS_NAMES: [&str; 5] = [
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mean_squared_error (mse)",
    "mean_absolute_error (mae)",
];

/// The form of a [`Loss`]: its Keras name (`"mse"`), or
/// `{ name = ..., from_logits = true, label_smoothing = 0.1 }`.
/// Use with `#[serde(with = "loss")]`, or `loss::option` on an `Option<Loss>`.
pub mod loss {
    use super::{LOSS_NAMES, Loss};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Form {
        Name(String),
        Table {
            name: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            from_logits: Option<bool>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            label_smoothing: Option<f32>,
        },
    }

    /// The loss of a name, its `from_logits` and its `label_smoothing` (Keras' names; a
    /// missing value takes Keras' default).
    ///
    /// # Errors
    /// An unknown name (listing the supported ones), logits for a loss without them, label
    /// smoothing outside `[0, 1]` or for a loss without it.
    pub fn from_parts(
        name: &str,
        from_logits: Option<bool>,
        label_smoothing: Option<f32>,
    ) -> Result<Loss, String> {
        let mut l = Loss::from_keras_name(name).ok_or_else(|| {
            format!(
                "unknown loss {name:?}; supported: {}",
                LOSS_NAMES.join(", ")
            )
        })?;
        match (&mut l, from_logits) {
            (
                Loss::BinaryCrossentropy { from_logits, .. }
                | Loss::CategoricalCrossentropy { from_logits, .. }
                | Loss::SparseCategoricalCrossentropy { from_logits },
                Some(v),
            ) => *from_logits = v,
            (_, Some(true)) => {
                return Err("from_logits: only cross-entropy losses take logits".into());
            }
            _ => {}
        }
        match (&mut l, label_smoothing) {
            (_, Some(ls)) if !(0.0..=1.0).contains(&ls) => {
                return Err("label_smoothing: must be in [0, 1]".into());
            }
            (
                Loss::BinaryCrossentropy {
                    label_smoothing, ..
                }
                | Loss::CategoricalCrossentropy {
                    label_smoothing, ..
                },
                Some(v),
            ) => *label_smoothing = v,
            (_, Some(v)) if v != 0.0 => {
                return Err(format!(
                    "label_smoothing: only binary and categorical cross-entropy smooth labels \
                     (not {name})"
                ));
            }
            _ => {}
        }
        Ok(l)
    }

    fn form(loss: &Loss) -> Form {
        let from_logits = match loss {
            Loss::BinaryCrossentropy { from_logits, .. }
            | Loss::CategoricalCrossentropy { from_logits, .. }
            | Loss::SparseCategoricalCrossentropy { from_logits } => *from_logits,
            _ => false,
        };
        let ls = loss.label_smoothing();
        let name = loss.keras_name().to_string();
        if from_logits || ls != 0.0 {
            Form::Table {
                name,
                from_logits: from_logits.then_some(true),
                label_smoothing: (ls != 0.0).then_some(ls),
            }
        } else {
            Form::Name(name)
        }
    }

    fn parse(f: Form) -> Result<Loss, String> {
        match f {
            Form::Name(n) => from_parts(&n, None, None),
            Form::Table {
                name,
                from_logits,
                label_smoothing,
            } => from_parts(&name, from_logits, label_smoothing),
        }
    }

    /// Serializes a loss.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(loss: &Loss, s: S) -> Result<S::Ok, S::Error> {
        form(loss).serialize(s)
    }

    /// Deserializes a loss.
    ///
    /// # Errors
    /// Not a name or table, or [`from_parts`]' errors.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Loss, D::Error> {
        parse(Form::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    /// The same form for an `Option<Loss>` (use with `#[serde(default, with = ...)]`).
    pub mod option {
        use super::{Form, Loss, form, parse};
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        /// Serializes an optional loss.
        ///
        /// # Errors
        /// The serializer's.
        pub fn serialize<S: Serializer>(loss: &Option<Loss>, s: S) -> Result<S::Ok, S::Error> {
            loss.as_ref().map(form).serialize(s)
        }

        /// Deserializes an optional loss.
        ///
        /// # Errors
        /// As [`super::deserialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Loss>, D::Error> {
            Option::<Form>::deserialize(d)?
                .map(parse)
                .transpose()
                .map_err(serde::de::Error::custom)
        }
    }
}

/// The form of a list of sizes: one number for every axis (`3`) or one per axis (`[3, 3]`);
/// written as the list. Use with `#[serde(deserialize_with = "sizes::deserialize")]`, or
/// `sizes::option` on an `Option<Vec<usize>>`.
pub mod sizes {
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{self, SeqAccess, Visitor};

    struct Sizes;

    impl<'de> Visitor<'de> for Sizes {
        type Value = Vec<usize>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size or a list of sizes")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<usize>, E> {
            usize::try_from(v)
                .map(|v| vec![v])
                .map_err(|_| E::custom(format!("{v} is too large")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<usize>, E> {
            usize::try_from(v)
                .map(|v| vec![v])
                .map_err(|_| E::custom(format!("{v} is not a size")))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<usize>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<usize>()? {
                out.push(v);
            }
            Ok(out)
        }
    }

    /// Deserializes `3` or `[3, 3]` as a list.
    ///
    /// # Errors
    /// Anything else.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
        d.deserialize_any(Sizes)
    }

    /// [`deserialize`] for an optional list (with `#[serde(default)]`).
    pub mod option {
        use serde::Deserializer;

        /// Deserializes `3`, `[3, 3]` or nothing.
        ///
        /// # Errors
        /// Anything else.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<usize>>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

/// The field a message starts with (`"mode: unknown mode"` → `"mode"`), by the schema's
/// convention for the errors of its forms: `"<field>: <reason>"`, the field relative to the
/// value being read.
pub fn relative_field(msg: &str) -> Option<&str> {
    msg.split_once(": ").map(|(head, _)| head).filter(|head| {
        !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
    })
}

/// Joins a field path and a message that may start with a relative field
/// (`join_field("layers[0]", "mode: unknown")` → `"layers[0].mode: unknown"`,
/// `join_field("loss", "unknown loss")` → `"loss: unknown loss"`).
pub fn join_field(prefix: &str, msg: &str) -> String {
    match (prefix.is_empty(), relative_field(msg)) {
        (true, _) => msg.to_string(),
        (false, Some(head)) => {
            let sep = if head.starts_with('[') { "" } else { "." };
            format!("{prefix}{sep}{msg}")
        }
        (false, None) => format!("{prefix}: {msg}"),
    }
}

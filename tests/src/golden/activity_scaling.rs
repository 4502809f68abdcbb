//! `activity_scaling_*.json`: the activity penalty is divided by the batch size (Keras ≥ 3.14),
//! for every batch size the file lists, and `fit`'s loss uses the divided value.
//!
//! The file gives its two models only in prose — `meta.description` ("Dense(5,
//! kernel=ones), kernel L1(0.01), activity L2(0.01), x = 2*ones((B,5))") and `fit_check.model`
//! ("Dense(2, kernel=ones, bias=0, activity L1(0.1)), x 4x3, y zeros, mse, …") — so the
//! layer (units, constant kernel and bias, the three regularizers), the input and the loss are
//! parsed from that prose ([`DenseText`]); every other number comes from the file's values.

use microfit::core::activation::Activation;
use microfit::core::layer::PenaltyKind;
use microfit::core::loss::Loss;
use microfit::core::regularizer::{Reg, Regularizer};
use microfit::core::train::{Rows, Samples, Targets, compute_gradients};
use microfit::model::{LayerSpec, ModelSpec, Sequential};
use serde_json::{Value, json};

use super::check::{Checker, FWD};
use super::regularizer_config::constructor_config;
use super::regularizers::reg_of;
use super::tensor::{build_with, floats, loss_in_text, num, shape};

/// A Dense layer as the prose describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseText {
    /// `Dense(units, ...)`.
    pub units: usize,
    /// Every kernel weight (`kernel=ones` → 1).
    pub kernel: f32,
    /// Every bias (`bias=0`; Keras' default is zeros).
    pub bias: f32,
    /// `kernel L1(0.01)`.
    pub kernel_reg: Option<Reg>,
    /// `bias L2(...)`.
    pub bias_reg: Option<Reg>,
    /// `activity L2(0.01)`.
    pub activity_reg: Option<Reg>,
}

/// A constant named in prose: `ones`, `zeros` or a number.
fn constant(s: &str) -> f32 {
    match s.trim() {
        "ones" => 1.0,
        "zeros" => 0.0,
        n => n
            .parse()
            .unwrap_or_else(|_| panic!("not a constant: {n:?}")),
    }
}

/// A regularizer written as `L1(0.01)`, `L2(l2=0.5)` or `L1L2(l1=0.01, l2=0.02)`.
pub(super) fn reg_call(s: &str) -> Reg {
    let (class, cfg) = constructor_config(s);
    reg_of(&json!(class), &cfg)
}

impl DenseText {
    /// Parses the first `Dense(...)` of `text` and the `kernel|bias|activity <Reg>(...)`
    /// regularizers written anywhere in it.
    ///
    /// # Panics
    /// If there is no `Dense(units...`.
    pub fn parse(text: &str) -> DenseText {
        let start = text
            .find("Dense(")
            .expect("a Dense(...) in the description")
            + 6;
        let head: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let mut d = DenseText {
            units: head.parse().expect("Dense(units"),
            kernel: 1.0,
            bias: 0.0,
            kernel_reg: None,
            bias_reg: None,
            activity_reg: None,
        };
        for (key, field) in [("kernel=", &mut d.kernel), ("bias=", &mut d.bias)] {
            if let Some(i) = text.find(key) {
                let v: String = text[i + key.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                *field = constant(&v);
            }
        }
        for (key, field) in [
            ("kernel ", &mut d.kernel_reg),
            ("bias ", &mut d.bias_reg),
            ("activity ", &mut d.activity_reg),
        ] {
            if let Some(i) = text.find(key) {
                let rest = &text[i + key.len()..];
                if rest.starts_with('L')
                    && let Some(end) = rest.find(')')
                {
                    *field = Some(reg_call(&rest[..=end]));
                }
            }
        }
        d
    }

    /// The layer on `n_in` inputs, its weights set to the constants.
    pub fn build(&self, n_in: usize) -> Sequential {
        let mut l = LayerSpec::dense(self.units, Activation::Linear);
        let c = l.dense_config_mut().expect("dense");
        c.kernel_regularizer = self.kernel_reg;
        c.bias_regularizer = self.bias_reg;
        c.activity_regularizer = self.activity_reg;
        let spec = ModelSpec {
            input_shape: vec![n_in],
            layers: vec![l],
        };
        build_with(
            &spec,
            &[
                vec![self.kernel; n_in * self.units],
                vec![self.bias; self.units],
            ],
        )
    }

    /// Keras' `layer.losses` order: the activity penalty (added during the call), then the
    /// kernel's and the bias' regularization.
    fn loss_order(&self) -> Vec<PenaltyKind> {
        [
            (self.activity_reg.is_some(), PenaltyKind::Activity),
            (self.kernel_reg.is_some(), PenaltyKind::Kernel),
            (self.bias_reg.is_some(), PenaltyKind::Bias),
        ]
        .into_iter()
        .filter_map(|(on, k)| on.then_some(k))
        .collect()
    }
}

/// `x = 2*ones((B,5))` → `(2, 5)`.
fn ones_input(text: &str) -> (f32, usize) {
    let i = text
        .find("ones((")
        .expect("x = c*ones((B,n)) in the description");
    let before = text[..i].trim_end_matches('*');
    let c: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    let dims = &text[i + 6..];
    let n: String = dims
        .split(',')
        .nth(1)
        .expect("(B,n)")
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (
        if c.is_empty() { 1.0 } else { constant(&c) },
        n.parse().expect("n"),
    )
}

/// Zero targets for `b` samples of `width`, with the samples.
fn zero_targets<'a>(x: &'a [f32], n_in: usize, y: &'a [f32], width: usize) -> Samples<'a> {
    Samples::new(x, n_in, Targets::Dense { values: y, width }).expect("samples")
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    let desc = v["meta"]["description"].as_str().expect("meta.description");
    let layer = DenseText::parse(desc);
    let (xc, n_in) = ones_input(desc);
    let order = layer.loss_order();
    let cases = c
        .optional(v, "layer_losses_by_batch_size", "")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for case in &cases {
        c.case();
        let b = case["batch_size"].as_u64().expect("batch_size") as usize;
        let what = format!("B = {b}");
        let mut m = layer.build(n_in);
        let x = vec![xc; b * n_in];
        let y = vec![0.0f32; b * layer.units];
        let s = zero_targets(&x, n_in, &y, layer.units);
        let rep = compute_gradients::<microfit::core::backend::Portable, _>(
            &mut m,
            Loss::MeanSquaredError,
            &s,
            Rows::Range(0, b),
        )
        .expect("step");
        let ll = case["layer_losses"].as_array().expect("layer_losses");
        c.truth(
            &format!("{what}: {} layer losses, as Keras lists", order.len()),
            ll.len() == order.len(),
        );
        for (kind, e) in order.iter().zip(ll) {
            c.penalty(
                &format!("{what}: layer loss {kind:?} (activity / B)"),
                rep.penalties.get(0, *kind),
                num(e),
                None,
            );
        }
        c.penalty(
            &format!("{what}: sum"),
            rep.penalties.total(),
            num(&case["sum"]),
            None,
        );
        let raw_key = case
            .as_object()
            .and_then(|o| o.keys().find(|k| k.starts_with("activity_raw")).cloned());
        match (raw_key, layer.activity_reg) {
            (Some(k), Some(ar)) => {
                let mut raw = 0.0f32;
                for i in 0..b {
                    let (y, _) = super::forward_one(&mut m, s.input(i), false);
                    raw += ar.penalty(&y, layer.units);
                }
                c.penalty(
                    &format!("{what}: raw activity (undivided)"),
                    raw,
                    num(&case[&k]),
                    None,
                );
            }
            _ => c.absent("layer_losses_by_batch_size[].activity_raw_*"),
        }
    }
    let Some(fc) = c.optional(v, "fit_check", "") else {
        return;
    };
    c.case();
    let model_desc = fc["model"].as_str().expect("fit_check.model");
    let fl = DenseText::parse(model_desc);
    let loss = loss_in_text(model_desc);
    let x = floats(&fc["x"]);
    let sh = shape(&fc["x"]);
    let (b, n_in) = (sh[0], sh[1..].iter().product());
    let mut m = fl.build(n_in);
    let y = vec![0.0f32; b * fl.units];
    let s = zero_targets(&x, n_in, &y, fl.units);
    let rep = compute_gradients::<microfit::core::backend::Portable, _>(
        &mut m,
        loss,
        &s,
        Rows::Range(0, b),
    )
    .expect("step");
    if let Some(e) = c.optional(fc, "mse", "fit_check.") {
        c.close1("fit_check: data loss", rep.data_loss, num(e), FWD);
    }
    if let Some(e) = c.optional(fc, "activity_raw", "fit_check.") {
        c.penalty(
            "fit_check: raw activity",
            rep.penalties.get(0, PenaltyKind::Activity) * b as f32,
            num(e),
            None,
        );
    }
    c.close1(
        "fit_check: fit loss",
        rep.total_loss,
        num(&fc["fit_loss"]),
        FWD,
    );
    if let Some(e) = c.optional(fc, "expected_if_divided", "fit_check.") {
        c.close1(
            "fit_check: expected_if_divided",
            rep.total_loss,
            num(e),
            FWD,
        );
    }
    if let Some(e) = c.optional(fc, "expected_if_not_divided", "fit_check.") {
        let e = num(e);
        if b > 1 {
            c.truth(
                "fit_check: not the undivided (Keras < 3.14) value",
                !FWD.accepts(f64::from(rep.total_loss), e),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_shipped_prose() {
        let d = DenseText::parse(
            "Dense(5, kernel=ones), kernel L1(0.01), activity L2(0.01), x = 2*ones((B,5)): out",
        );
        assert_eq!(d.units, 5);
        assert_eq!((d.kernel, d.bias), (1.0, 0.0));
        assert_eq!(d.kernel_reg, Some(Reg::l1(0.01)));
        assert_eq!(d.activity_reg, Some(Reg::l2(0.01)));
        assert_eq!(d.bias_reg, None);
        assert_eq!(ones_input("x = 2*ones((B,5)): output"), (2.0, 5));
        let f = DenseText::parse(
            "Dense(2, kernel=ones, bias=0, activity L1(0.1)), x 4x3, y zeros, mse",
        );
        assert_eq!((f.units, f.activity_reg), (2, Some(Reg::l1(0.1))));
        let g = DenseText::parse("Dense(7, kernel=0.5, bias=-1), activity L1L2(l1=0.01, l2=0.02)");
        assert_eq!((g.units, g.kernel, g.bias), (7, 0.5, -1.0));
        assert_eq!(g.activity_reg, Some(Reg::l1l2(0.01, 0.02)));
    }
}

//! Checks of the named tensors and penalties of a step (`"<layer>/<kernel|bias|activity>"`).

use std::collections::BTreeMap;

use microfit::core::train::StepReport;
use serde_json::Value;

use super::check::{Checker, Tol};
use super::tensor::{floats, num, penalty_key, var_index};

/// The named penalties of a step against the recorded `reg_losses` (an object keyed by
/// `"<layer>/<kind>"`), each within [`penalty_tol_with`](super::penalty_tol_with)`(rtol)`, and
/// the same set of named penalties.
pub(super) fn check_reg_losses(
    c: &mut Checker,
    what: &str,
    layers: &[String],
    rep: &StepReport,
    rec: &Value,
    rtol: f64,
) {
    let rec = rec.as_object().expect("reg_losses");
    for (k, val) in rec {
        let (i, kind) = penalty_key(layers, k);
        c.penalty_with(
            rtol,
            &format!("{what}: reg_losses[{k}]"),
            rep.penalties.get(i, kind),
            num(val),
            None,
        );
    }
    c.truth(
        &format!(
            "{what}: the same named penalties as Keras ({} recorded, {} computed)",
            rec.len(),
            rep.penalties.entries().len()
        ),
        rec.len() == rep.penalties.entries().len(),
    );
}

/// Tensors in model order against the recorded named ones: within `tol`, or bit for bit when
/// `None`.
pub(super) fn check_named(
    c: &mut Checker,
    what: &str,
    layers: &[String],
    got: &[Vec<f32>],
    rec: &Value,
    tol: Option<Tol>,
) {
    for (k, t) in rec.as_object().expect("named tensors") {
        if t.get("data").is_none() {
            continue;
        }
        let i = var_index(layers, k);
        match tol {
            Some(tol) => c.close32(&format!("{what}[{k}]"), &got[i], &floats(t), tol),
            None => c.bits(&format!("{what}[{k}]"), &got[i], &floats(t)),
        }
    }
}

/// Slots recorded as `{"dense/kernel": {"m": tensor, "v": tensor}, ...}` → by slot name, model
/// order (two tensors per layer).
pub(super) fn recorded_slots(layers: &[String], rec: &Value) -> BTreeMap<String, Vec<Vec<f32>>> {
    let mut out: BTreeMap<String, Vec<Vec<f32>>> = BTreeMap::new();
    for (var, slots) in rec.as_object().expect("slots_after") {
        let i = var_index(layers, var);
        for (slot, t) in slots.as_object().expect("slots") {
            let e = out
                .entry(slot.clone())
                .or_insert_with(|| vec![Vec::new(); 2 * layers.len()]);
            e[i] = floats(t);
        }
    }
    out
}

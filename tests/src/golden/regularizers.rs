//! `regularizers_*.json`: penalty and gradient of every regularizer × array (L1, L2, L1L2,
//! orthogonal), `tf.nn.l2_loss` through [`Reg::from_l2_loss`], and the gradient of `|x|` at ±0.

use microfit::core::regularizer::{Reg, Regularizer};
use microfit::keras::{regularizer_from_keras, regularizer_to_keras};
use serde_json::{Value, json};

use super::check::{Checker, ELEMENTWISE, orthogonal_grad_tol};
use super::tensor::{floats, num, shape};

/// The regularizer of a `{regularizer, config}` pair, through `microfit::keras`.
pub(super) fn reg_of(class: &Value, config: &Value) -> Reg {
    regularizer_from_keras(&json!({ "class_name": class, "config": config }))
        .unwrap_or_else(|e| panic!("regularizer {class} {config}: {e}"))
        .unwrap_or_else(|| panic!("regularizer {class} is null"))
}

/// The cases of group `key`, or none (reported absent).
fn group<'a>(c: &mut Checker, v: &'a Value, key: &str) -> &'a [Value] {
    match c.optional(v, key, "") {
        Some(a) => a
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("{key} is not a list")),
        None => &[],
    }
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    let plain = group(c, v, "cases");
    let ortho = group(c, v, "orthogonal_cases");
    for (i, case) in plain.iter().chain(ortho).enumerate() {
        c.case();
        let name = format!(
            "case {i} {}{} on {}",
            case["regularizer"].as_str().unwrap_or("?"),
            case["config"],
            case["array_name"]
        );
        let reg = reg_of(&case["regularizer"], &case["config"]);
        if let Some(gc) = c.optional(case, "get_config", "cases[].") {
            c.json_eq(
                &format!("{name}: get_config"),
                &regularizer_to_keras(&reg)["config"],
                gc,
            );
        }
        let x = floats(&case["x"]);
        let cols = *shape(&case["x"]).last().unwrap_or(&1);
        let p = reg.penalty(&x, cols);
        let reference = c
            .optional(case, "penalty_f64_reference", "cases[].")
            .map(num);
        c.penalty(
            &format!("{name}: penalty"),
            p,
            num(&case["penalty"]),
            reference,
        );
        let mut g = vec![0.0f32; x.len()];
        reg.add_grad(&x, cols, &mut g, 1.0);
        let expected = floats(&case["grad"]);
        if matches!(reg, Reg::Orthogonal { .. }) {
            // The floor is the rounding noise of the row (mode rows) or column (columns) the
            // element belongs to: each is normalised on its own, its gradient scales with
            // 1/|row| and its radial part cancels.
            let (rows, cols) = (x.len() / cols, cols);
            let by_rows = case["config"]["mode"].as_str().unwrap_or("rows") == "rows";
            let unit = |i: usize| if by_rows { i / cols } else { i % cols };
            let units = if by_rows { rows } else { cols };
            let mut largest = vec![0.0f64; units];
            for (i, e) in expected.iter().enumerate() {
                largest[unit(i)] = largest[unit(i)].max(f64::from(e.abs()));
            }
            let e64: Vec<f64> = expected.iter().map(|&v| f64::from(v)).collect();
            c.close_each(&format!("{name}: grad"), &g, &e64, |i| {
                orthogonal_grad_tol(largest[unit(i)])
            });
        } else {
            c.close32(&format!("{name}: grad"), &g, &expected, ELEMENTWISE);
        }
    }
    for (i, case) in group(c, v, "l2_loss_cases").iter().enumerate() {
        c.case();
        let name = format!("l2_loss case {i} on {}", case["array_name"]);
        let reg = Reg::from_l2_loss(1.0);
        let x = floats(&case["x"]);
        let p = reg.penalty(&x, 1);
        let reference = c
            .optional(case, "l2_loss_f64_reference", "l2_loss_cases[].")
            .map(num);
        c.penalty(
            &format!("{name}: value"),
            p,
            num(&case["l2_loss"]),
            reference,
        );
        let mut g = vec![0.0f32; x.len()];
        reg.add_grad(&x, 1, &mut g, 1.0);
        // d/dx Σx²/2 = x, exactly (as a value: our gradient buffer starts at +0, so -0 becomes +0).
        c.exact(&format!("{name}: grad"), &g, &floats(&case["grad"]));
    }
    if let Some(a) = c.optional(v, "abs_gradient_check", "") {
        c.case();
        let x = floats(&a["x"]);
        let mut g = vec![0.0f32; x.len()];
        Reg::L1 { l1: 1.0 }.add_grad(&x, 1, &mut g, 1.0);
        c.bits(
            "abs_gradient_check: d/dx sum|x| (0 at ±0)",
            &g,
            &floats(&a["grad_of_sum_abs"]),
        );
    }
}

//! Comparisons, tolerances and the per-file [`Summary`].

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// A relative/absolute tolerance: `|got - expected| <= atol + rtol·|expected|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tol {
    /// Relative part.
    pub rtol: f64,
    /// Absolute part.
    pub atol: f64,
}

impl Tol {
    /// Whether `got` is within this tolerance of `expected` (never for a NaN).
    pub fn accepts(self, got: f64, expected: f64) -> bool {
        (got - expected).abs() <= self.atol + self.rtol * expected.abs()
    }
}

/// Forward values, losses, gradients (README).
pub const FWD: Tol = Tol {
    rtol: 1e-5,
    atol: 1e-6,
};
/// The 12-step MLP fit (README).
pub const FIT: Tol = Tol {
    rtol: 1e-4,
    atol: 1e-5,
};
/// Elementwise regularizer gradients (`verify_golden.py`'s `reg.grad` tolerance).
pub const ELEMENTWISE: Tol = Tol {
    rtol: 1e-6,
    atol: 1e-30,
};

/// The smallest normal f32 (`2^-126`): TensorFlow runs in flush-to-zero mode, so a result (or
/// a term of a sum) below it is 0 in Keras where the core keeps the subnormal value.
const F32_MIN_NORMAL: f64 = 1.175_494_350_822_287_5e-38;

/// A regularization penalty (a sum of non-negative terms, so its rounding error is relative):
/// `rtol 1e-5` of the expected value plus a floor of `1e-6·scale` and the smallest normal f32
/// (`2^-126`, TensorFlow's flush to zero), where `scale = max(|expected|, |f64 reference|)`. A
/// zero penalty must come out below `2^-126`, and a penalty of `2.5e-12` is judged at
/// `2.8e-17`, not at the README's absolute `1e-6`.
pub fn penalty_tol(expected: f64, reference: Option<f64>) -> Tol {
    penalty_tol_with(FWD.rtol, expected, reference)
}

/// [`penalty_tol`] with another relative part (`FIT.rtol` after some steps of training).
pub fn penalty_tol_with(rtol: f64, expected: f64, reference: Option<f64>) -> Tol {
    let scale = expected.abs().max(reference.map_or(0.0, f64::abs));
    Tol {
        rtol,
        atol: 1e-6 * scale + F32_MIN_NORMAL,
    }
}

/// An element of an orthogonal-regularizer gradient: `rtol 1e-5` plus a floor of
/// `8·2^-24 ≈ 4.8e-7` times the largest expected gradient of its row (mode `rows`) or column
/// (`columns`). Each row is normalised on its own, so its gradient scales with `1/|row|` and
/// its radial part cancels: an element that is 0 analytically comes out as rounding noise of
/// its row's scale (TensorFlow's own noise and ours stay below `4.2·2^-24` of it in
/// `regularizers_k3.json`); the floor is that noise, not the README's `1e-6` absolute.
pub fn orthogonal_grad_tol(largest: f64) -> Tol {
    Tol {
        rtol: 1e-5,
        atol: 8.0 * f64::from(f32::EPSILON) / 2.0 * largest,
    }
}

/// What one golden file gave.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// The file.
    pub file: String,
    /// Its kind (`dense_step`, ...).
    pub kind: String,
    /// Cases run.
    pub cases: usize,
    /// Checks passed (each compared value or property counts once).
    pub checks: usize,
    /// Of those, checks that were bit-exact comparisons.
    pub bit_exact: usize,
    /// Largest `|got - expected|` over the tolerance checks.
    pub max_abs: f64,
    /// Largest `|got - expected| / |expected|` over the tolerance checks with `expected != 0`.
    pub max_rel: f64,
    /// Where the largest absolute error was seen.
    pub max_abs_at: String,
    /// Where the largest relative error was seen.
    pub max_rel_at: String,
    /// Keys the schema makes optional that the file does not have, with how often.
    pub absent: BTreeMap<String, usize>,
    /// Cases of features microfit does not have yet: `(feature, cases)`.
    pub unsupported: Vec<(String, usize)>,
    /// Failed checks.
    pub failures: Vec<String>,
}

impl Summary {
    /// Cases of features not supported yet.
    pub fn unsupported_cases(&self) -> usize {
        self.unsupported.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "golden {} [{}]: {} cases, {} checks passed ({} bit-exact), {} failed; max abs err {:.3e} ({}), max rel err {:.3e} ({})",
            self.file,
            self.kind,
            self.cases,
            self.checks,
            self.bit_exact,
            self.failures.len(),
            self.max_abs,
            self.max_abs_at,
            self.max_rel,
            self.max_rel_at
        )?;
        for (key, n) in &self.absent {
            write!(f, "\n    absent (optional in the schema): {key} ({n}×)")?;
        }
        for (feature, n) in &self.unsupported {
            write!(f, "\n    not supported yet: {feature} ({n} cases)")?;
        }
        Ok(())
    }
}

/// Collects the checks of one file.
#[derive(Debug)]
pub struct Checker {
    s: Summary,
}

impl Checker {
    /// A checker for `file`.
    pub fn new(file: &str) -> Self {
        Checker {
            s: Summary {
                file: file.to_string(),
                ..Summary::default()
            },
        }
    }

    /// Sets the kind shown in the summary.
    pub fn set_kind(&mut self, kind: &str) {
        self.s.kind = kind.to_string();
    }

    /// Counts one case.
    pub fn case(&mut self) {
        self.s.cases += 1;
    }

    /// Records a failed check.
    pub fn fail(&mut self, msg: String) {
        self.s.failures.push(msg);
    }

    /// Records that the optional key `key` is absent (reported in the summary, never silent).
    pub fn absent(&mut self, key: &str) {
        *self.s.absent.entry(key.to_string()).or_insert(0) += 1;
    }

    /// `v[key]` if present, else records it as [absent](Self::absent).
    pub fn optional<'a>(&mut self, v: &'a Value, key: &str, what: &str) -> Option<&'a Value> {
        match v.get(key) {
            Some(x) if !x.is_null() => Some(x),
            _ => {
                self.absent(&format!("{what}{key}"));
                None
            }
        }
    }

    /// Records `cases` cases of a feature microfit does not have yet.
    pub fn unsupported(&mut self, feature: &str, cases: usize) {
        match self.s.unsupported.iter_mut().find(|(f, _)| f == feature) {
            Some((_, n)) => *n += cases,
            None => self.s.unsupported.push((feature.to_string(), cases)),
        }
    }

    /// `got` against `expected` elementwise within `tol`.
    pub fn close(&mut self, what: &str, got: &[f32], expected: &[f64], tol: Tol) {
        self.close_each(what, got, expected, |_| tol);
    }

    /// `got` against `expected` elementwise, element `i` within `tol(i)`.
    pub fn close_each(
        &mut self,
        what: &str,
        got: &[f32],
        expected: &[f64],
        tol: impl Fn(usize) -> Tol,
    ) {
        if got.len() != expected.len() {
            self.fail(format!(
                "{what}: {} values, expected {}",
                got.len(),
                expected.len()
            ));
            return;
        }
        let mut ok = true;
        for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
            let g = f64::from(g);
            let err = (g - e).abs();
            let t = tol(i);
            if !t.accepts(g, e) {
                self.fail(format!(
                    "{what}[{i}]: got {g:e}, expected {e:e} (abs err {err:.3e}, rtol {}, atol {:e})",
                    t.rtol, t.atol
                ));
                ok = false;
                continue;
            }
            if err > self.s.max_abs {
                self.s.max_abs = err;
                self.s.max_abs_at = format!("{what}[{i}]");
            }
            if e != 0.0 && err / e.abs() > self.s.max_rel {
                self.s.max_rel = err / e.abs();
                self.s.max_rel_at = format!("{what}[{i}]: {g:e} vs {e:e}");
            }
        }
        if ok {
            self.s.checks += 1;
        }
    }

    /// `got` against the f32 values of `expected` elementwise within `tol`.
    pub fn close32(&mut self, what: &str, got: &[f32], expected: &[f32], tol: Tol) {
        let e: Vec<f64> = expected.iter().map(|&x| f64::from(x)).collect();
        self.close(what, got, &e, tol);
    }

    /// One scalar within `tol`.
    pub fn close1(&mut self, what: &str, got: f32, expected: f64, tol: Tol) {
        self.close(what, &[got], &[expected], tol);
    }

    /// A penalty against its expected value and, when given, its f64 reference
    /// ([`penalty_tol`]).
    pub fn penalty(&mut self, what: &str, got: f32, expected: f64, reference: Option<f64>) {
        self.penalty_with(FWD.rtol, what, got, expected, reference);
    }

    /// [`Checker::penalty`] with another relative part ([`penalty_tol_with`]).
    pub fn penalty_with(
        &mut self,
        rtol: f64,
        what: &str,
        got: f32,
        expected: f64,
        reference: Option<f64>,
    ) {
        self.close1(
            what,
            got,
            expected,
            penalty_tol_with(rtol, expected, reference),
        );
        if let Some(r) = reference {
            self.close1(
                &format!("{what} vs f64 reference"),
                got,
                r,
                penalty_tol_with(rtol, r, Some(expected)),
            );
        }
    }

    /// Bit-for-bit equality of f32 values (`to_bits`: `-0 ≠ +0`).
    pub fn bits(&mut self, what: &str, got: &[f32], expected: &[f32]) {
        if got.len() != expected.len() {
            self.fail(format!(
                "{what}: {} values, expected {}",
                got.len(),
                expected.len()
            ));
            return;
        }
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            if g.to_bits() != e.to_bits() {
                self.fail(format!(
                    "{what}[{i}]: got {g:e} ({:#010x}), expected {e:e} ({:#010x}), not bit-exact",
                    g.to_bits(),
                    e.to_bits()
                ));
                return;
            }
        }
        self.s.checks += 1;
        self.s.bit_exact += 1;
    }

    /// Exact equality of values (`-0 == +0`; NaN never equal).
    pub fn exact(&mut self, what: &str, got: &[f32], expected: &[f32]) {
        if got.len() != expected.len() {
            self.fail(format!(
                "{what}: {} values, expected {}",
                got.len(),
                expected.len()
            ));
            return;
        }
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            if g != e {
                self.fail(format!("{what}[{i}]: got {g:e}, expected exactly {e:e}"));
                return;
            }
        }
        self.s.checks += 1;
    }

    /// A property that must hold.
    pub fn truth(&mut self, what: &str, ok: bool) {
        if ok {
            self.s.checks += 1;
        } else {
            self.fail(format!("{what}: does not hold"));
        }
    }

    /// JSON equality, numbers compared by value (both floats or both integers, equal as f64):
    /// `serde_json`'s `arbitrary_precision` feature (switched on in this crate's test graph by
    /// `defmt-decoder`) keeps numbers as text, and `1e-05` and `0.00001` are the same float.
    pub fn json_eq(&mut self, what: &str, got: &Value, expected: &Value) {
        if json_same(got, expected) {
            self.s.checks += 1;
        } else {
            self.fail(format!("{what}: got {got}, expected {expected}"));
        }
    }

    /// The summary, failures included (printing nothing).
    pub fn into_summary(self) -> Summary {
        self.s
    }

    /// Prints the summary line and returns it.
    ///
    /// # Panics
    /// If any check failed, listing them all.
    pub fn finish(self) -> Summary {
        let s = self.s;
        println!("{s}");
        assert!(
            s.failures.is_empty(),
            "{}: {} check(s) failed:\n  {}",
            s.file,
            s.failures.len(),
            s.failures.join("\n  ")
        );
        s
    }
}

/// Structural JSON equality with numbers compared by value (see [`Checker::json_eq`]).
pub fn json_same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.is_f64() == y.is_f64() && x.as_f64() == y.as_f64()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_same(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small expected penalties of `regularizers_k3.json` (L2(1e-4) and L1(1e-4) on `small_4`,
    /// an orthogonal penalty) and their f64 references.
    const SMALL: [(f64, f64); 3] = [
        (6.250_899_862_829_395e-14, 6.250_900_526_376_065e-14),
        (2.530_999_854_144_511e-9, 2.530_999_873_961_3e-9),
        (4.433_734_342_455_864e-3, 4.433_734_342_455_864e-3),
    ];

    #[test]
    fn every_tolerance_rejects_a_1e_minus_3_relative_error_of_a_small_penalty() {
        for (e, r) in SMALL {
            let bad = [e * (1.0 + 1e-3), e * (1.0 - 1e-3)];
            for tol in [
                penalty_tol(e, Some(r)),
                penalty_tol(e, None),
                penalty_tol_with(FIT.rtol, e, Some(r)),
                orthogonal_grad_tol(e),
                ELEMENTWISE,
            ] {
                assert!(tol.accepts(e, e), "{tol:?} rejects the exact value {e:e}");
                for b in bad {
                    assert!(!tol.accepts(b, e), "{tol:?} accepts {b:e} for {e:e}");
                }
            }
            // The check against the f64 reference too.
            assert!(penalty_tol(r, Some(e)).accepts(e, r));
            assert!(!penalty_tol(r, Some(e)).accepts(e * (1.0 + 1e-3), r));
        }
        // A zero penalty must be zero, up to what TensorFlow flushes (subnormals).
        assert!(penalty_tol(0.0, Some(0.0)).accepts(0.0, 0.0));
        assert!(penalty_tol(0.0, Some(6.3e-41)).accepts(6.3e-41, 0.0));
        assert!(!penalty_tol(0.0, Some(0.0)).accepts(2e-38, 0.0));
        // The README's absolute 1e-6 would have accepted 1000× the truth: not any more.
        assert!(FWD.accepts(SMALL[0].0 * 1000.0, SMALL[0].0));
        assert!(
            !penalty_tol(SMALL[0].0, Some(SMALL[0].1)).accepts(SMALL[0].0 * 1000.0, SMALL[0].0)
        );
    }

    #[test]
    fn checker_counts_and_reports() {
        let mut c = Checker::new("x.json");
        c.case();
        c.penalty("p", 2.5e-9, 2.5e-9, Some(2.5e-9));
        c.bits("b", &[-0.0], &[0.0]);
        c.absent("get_config");
        c.absent("get_config");
        c.unsupported("EMA", 1);
        let s = c.into_summary();
        assert_eq!((s.cases, s.checks, s.failures.len()), (1, 2, 1));
        assert_eq!(s.absent["get_config"], 2);
        assert_eq!(s.unsupported_cases(), 1);
        assert!(s.to_string().contains("not supported yet: EMA (1 cases)"));
    }
}

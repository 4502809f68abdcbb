//! `adam_power_*.json`: TensorFlow's float32 `β^t` as Keras' Adam/AdamW computes it, for every
//! `β` and `t` of the file, against [`microfit::core::math::powf`] — bit for bit.

use microfit::core::math::powf;
use serde_json::Value;

use super::check::Checker;

/// One entry of the file: `β^t` has the bits `bits`.
#[derive(Debug, Clone, Copy)]
pub struct PowEntry {
    /// `β` as the f32 Keras casts it to.
    pub beta: f32,
    /// `t = iterations + 1`.
    pub t: u32,
    /// The bits of TensorFlow's `β^t`.
    pub bits: u32,
}

/// Every entry of an `adam_power` file, `β` by `β` in file order (the keys are the decimal `β`s).
///
/// # Panics
/// On a malformed file.
pub fn pow_entries(v: &Value) -> Vec<PowEntry> {
    let betas = v["betas"].as_object().expect("betas");
    let mut out = Vec::new();
    for (key, d) in betas {
        let beta: f32 = key.parse().unwrap_or_else(|_| panic!("beta {key:?}"));
        let ts = d["t"].as_array().expect("t");
        let bits = d["pow_bits"].as_array().expect("pow_bits");
        assert_eq!(
            ts.len(),
            bits.len(),
            "beta {key}: t and pow_bits differ in length"
        );
        for (t, b) in ts.iter().zip(bits) {
            let t = t.as_u64().expect("t") as u32;
            let b = match b {
                Value::String(s) => u32::from_str_radix(s.trim_start_matches("0x"), 16)
                    .unwrap_or_else(|_| panic!("bits {s:?}")),
                n => n.as_u64().expect("bits") as u32,
            };
            out.push(PowEntry { beta, t, bits: b });
        }
    }
    out
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    let entries = pow_entries(v);
    let mut beta = None;
    for e in &entries {
        if beta != Some(e.beta.to_bits()) {
            beta = Some(e.beta.to_bits());
            c.case(); // one case per β
        }
        let got = powf(e.beta, e.t as f32);
        c.bits(
            &format!("β = {} ({:#010x}), t = {}", e.beta, e.beta.to_bits(), e.t),
            &[got],
            &[f32::from_bits(e.bits)],
        );
    }
}

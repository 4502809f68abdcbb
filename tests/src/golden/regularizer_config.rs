//! `regularizer_config_*.json`: `get(identifier)` for every identifier (errors included),
//! `serialize` / `get_config` / the deserialize round trip of every constructor, `get` from a
//! dict or a string, and a Dense layer's regularizer entries.

use microfit::keras::{regularizer_from_keras, regularizer_to_keras};
use serde_json::{Value, json};

use super::check::Checker;
use super::regularizers::reg_of;

/// Parses a Python constructor call as written in the file's labels: `L1(0.1)`,
/// `L1L2(l1=0.01, l2=0.02)`, `OrthogonalRegularizer(0.1, 'columns')`, `L2()`.
pub(super) fn constructor_config(label: &str) -> (String, Value) {
    let (name, rest) = label
        .split_once('(')
        .unwrap_or_else(|| panic!("not a call: {label}"));
    let args = rest
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("not a call: {label}"));
    let class = match name {
        "l1_l2" => "L1L2", // Keras 3: `l1_l2` is an alias of the class L1L2
        other => other,
    };
    let positional: &[&str] = match class {
        "L1" => &["l1"],
        "L2" => &["l2"],
        "L1L2" => &["l1", "l2"],
        "OrthogonalRegularizer" => &["factor", "mode"],
        other => panic!("unknown constructor {other}"),
    };
    let mut cfg = serde_json::Map::new();
    for (i, a) in args
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .enumerate()
    {
        let (k, val) = match a.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim()),
            None => (positional[i].to_string(), a),
        };
        let val = if let Some(s) = val.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            json!(s)
        } else {
            json!(
                val.parse::<f64>()
                    .unwrap_or_else(|_| panic!("bad argument {val} in {label}"))
            )
        };
        cfg.insert(k, val);
    }
    (class.to_string(), Value::Object(cfg))
}

pub(super) fn run(c: &mut Checker, v: &Value) {
    let check_get = |c: &mut Checker, what: &str, input: &Value, rec: &Value| {
        let r = regularizer_from_keras(input);
        if rec.get("error").is_some() {
            c.truth(
                &format!("{what}: is an error ({})", rec["error"]),
                r.is_err(),
            );
            return;
        }
        match r {
            Ok(Some(reg)) => {
                c.json_eq(
                    &format!("{what}: class_name"),
                    &json!(reg.keras_class()),
                    &rec["class_name"],
                );
                c.json_eq(
                    &format!("{what}: get_config"),
                    &regularizer_to_keras(&reg)["config"],
                    &rec["get_config"],
                );
            }
            other => c.truth(&format!("{what}: parses ({other:?})"), false),
        }
    };
    let empty = serde_json::Map::new();
    let group = |c: &mut Checker, key: &str| {
        c.optional(v, key, "")
            .map(|g| {
                g.as_object()
                    .unwrap_or_else(|| panic!("{key} is not an object"))
            })
            .unwrap_or(&empty)
    };
    for (ident, rec) in group(c, "get") {
        c.case();
        check_get(c, &format!("get({ident:?})"), &json!(ident), rec);
    }
    for (label, rec) in group(c, "serialize") {
        c.case();
        // From the constructor arguments to Keras' serialized form.
        let (class, cfg) = constructor_config(label);
        let reg = reg_of(&json!(class), &cfg);
        c.json_eq(
            &format!("serialize({label})"),
            &regularizer_to_keras(&reg),
            &rec["serialize"],
        );
        c.json_eq(
            &format!("{label}.get_config()"),
            &regularizer_to_keras(&reg)["config"],
            &rec["get_config"],
        );
        // Keras' serialized form back to the same regularizer, and round trip.
        let back = regularizer_from_keras(&rec["serialize"]);
        c.truth(
            &format!("deserialize(serialize({label})) == {label}"),
            back == Ok(Some(reg)),
        );
        check_get(
            c,
            &format!("deserialize(serialize({label}))"),
            &regularizer_to_keras(&reg),
            &rec["deserialize_roundtrip"],
        );
    }
    for (label, rec) in group(c, "get_from_dict_or_string") {
        c.case();
        check_get(
            c,
            &format!("get_from_dict_or_string.{label}"),
            &rec["input"],
            rec,
        );
    }
    for (key, rec) in group(c, "dense_layer_get_config_regularizer_entries") {
        c.case();
        let reg = regularizer_from_keras(rec).ok().flatten();
        c.truth(&format!("Dense.{key} parses"), reg.is_some());
        if let Some(reg) = reg {
            c.json_eq(
                &format!("Dense.{key} written back"),
                &regularizer_to_keras(&reg),
                rec,
            );
        }
    }
}

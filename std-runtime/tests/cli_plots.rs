//! The plots (issue 13, item 7), read back from their SVG: legends never over a curve, a log
//! axis when the loss spans decades, the penalty as its own line, the best epoch and the chosen
//! λ marked, weights and biases counted apart, and every tick label inside the image.

mod common;
use common::*;

use std::path::Path;

/// A `<text>` element.
#[derive(Debug)]
struct Text {
    x: f64,
    anchor: String,
    size: f64,
    content: String,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let k = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[k..].split('"').next()?.to_string())
}

fn texts(svg: &str) -> Vec<Text> {
    svg.split("<text")
        .skip(1)
        .map(|rest| {
            let end = rest.find('>').unwrap();
            let tag = &rest[..end];
            let content = rest[end + 1..rest.find("</text>").unwrap()]
                .trim()
                .to_string();
            Text {
                x: attr(tag, "x").unwrap().parse().unwrap(),
                anchor: attr(tag, "text-anchor").unwrap_or_else(|| "start".into()),
                size: attr(tag, "font-size").unwrap().parse().unwrap(),
                content,
            }
        })
        .collect()
}

/// The points of the polylines and circles drawn in `color` (`#1F77B4`).
fn points(svg: &str, color: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for tag in svg.split('<').filter(|t| t.contains(color)) {
        if let Some(p) = attr(tag, "points") {
            for xy in p.split_whitespace() {
                let (x, y) = xy.split_once(',').unwrap();
                out.push((x.parse().unwrap(), y.parse().unwrap()));
            }
        }
        if tag.starts_with("circle") {
            out.push((
                attr(tag, "cx").unwrap().parse().unwrap(),
                attr(tag, "cy").unwrap().parse().unwrap(),
            ));
        }
    }
    out
}

fn svg(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn find<'a>(t: &'a [Text], content: &str) -> &'a Text {
    t.iter().find(|t| t.content == content).unwrap_or_else(|| {
        panic!(
            "no text {content:?} in {:?}",
            t.iter().map(|t| &t.content).collect::<Vec<_>>()
        )
    })
}

/// Whether the texts, read in order (a legend label may wrap over two lines), say `label`.
fn says(t: &[Text], label: &str) -> bool {
    let all: Vec<&str> = t.iter().map(|t| t.content.as_str()).collect();
    all.join(" ").contains(label)
}

/// Every curve point lies left of the legend texts.
fn legend_clear_of_curves(svg: &str, labels: &[&str]) {
    let t = texts(svg);
    let mut pts = points(svg, "#1F77B4");
    pts.extend(points(svg, "#FF7F0E"));
    assert!(!pts.is_empty());
    let right = pts.iter().map(|p| p.0).fold(f64::MIN, f64::max);
    for l in labels {
        let text = find(&t, l);
        assert!(
            text.x > right,
            "legend {l:?} at x = {} is over the curves (they reach x = {right})",
            text.x
        );
    }
}

#[test]
fn legends_sit_beside_the_curves() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    train_quiet(&out, &["--epochs", "15"]);
    legend_clear_of_curves(
        &svg(&out.join("loss.svg")),
        &["training loss", "validation loss"],
    );
    let sweep = tmp.path().join("sweep");
    microfit()
        .args([
            "sweep",
            "--quiet",
            "--l2",
            "0,1e-5,1e-4,1e-3,1e-2",
            "--epochs",
            "5",
            "--out",
        ])
        .arg(&sweep)
        .assert()
        .success();
    legend_clear_of_curves(&svg(&sweep.join("sweep.svg")), &["training", "validation"]);
}

/// `--save-best-only` marks the saved epoch (an early-stopped run marks the restored one, see
/// `cli_train::early_stopping_stops_after_patience_and_restores_the_best_epoch`).
#[test]
fn the_best_epoch_is_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("best");
    train_quiet(
        &out,
        &[
            "--data",
            "wine",
            "--lr",
            "0.3",
            "--epochs",
            "20",
            "--save-best-only",
        ],
    );
    let val = history(&out).get("val_loss").unwrap().to_vec();
    let best = (0..val.len())
        .min_by(|&a, &b| val[a].total_cmp(&val[b]))
        .unwrap()
        + 1;
    let label = format!("best epoch {best} (lowest val_loss; saved)");
    for plot in ["loss.svg", "accuracy.svg"] {
        assert!(
            says(&texts(&svg(&out.join(plot))), &label),
            "{plot}: no {label:?}"
        );
    }
}

/// A sweep marks the λ it chose, printed as in the summary line.
#[test]
fn the_chosen_lambda_is_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep");
    let stdout = microfit()
        .args(["sweep", "--l2", "1e-5,1e-3,0.3", "--epochs", "8", "--out"])
        .arg(&sweep)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(stdout).unwrap();
    let best = stdout
        .lines()
        .find_map(|l| l.split_once("validation data loss: ").map(|(_, r)| r))
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let label = format!("chosen λ = {best} (lowest validation data loss)");
    assert!(
        says(&texts(&svg(&sweep.join("sweep.svg"))), &label),
        "no {label:?}"
    );
}

/// A regression loss spanning decades gets a log axis, and the penalty is its own line.
#[test]
fn a_loss_over_decades_gets_a_log_axis_and_the_penalty_a_line() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("big.csv");
    let mut text = String::from("x1,x2,y\n");
    for i in 0..80 {
        let (a, b) = (f64::from(i % 9), f64::from(i % 13));
        text.push_str(&format!("{a},{b},{}\n", 40.0 * a - 25.0 * b + 300.5));
    }
    std::fs::write(&csv, text).unwrap();
    let out = tmp.path().join("reg");
    microfit()
        .args([
            "train", "--quiet", "--epochs", "60", "--lr", "0.05", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let s = svg(&out.join("loss.svg"));
    let t = texts(&s);
    find(&t, "loss (log scale)");
    assert!(says(&t, "penalty (loss − data loss)"));
    assert!(!points(&s, "#D62728").is_empty(), "no penalty line drawn");
    assert!(
        !out.join("mse.png").exists(),
        "mse.png duplicated the loss plot"
    );
}

/// Titles count weights and biases apart; the last epoch tick ("1000") is inside the image.
#[test]
fn weights_and_biases_are_counted_apart_and_ticks_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("long");
    train_quiet(
        &out,
        &[
            "--epochs",
            "1000",
            "--batch-size",
            "150",
            "--validation-split",
            "0",
        ],
    );
    let w = texts(&svg(&out.join("weights.svg")));
    assert!(
        w.iter()
            .any(|t| t.content.starts_with("dense: 64 weights + 16 biases")),
        "{:?}",
        w.iter().map(|t| &t.content).collect::<Vec<_>>()
    );
    for plot in ["loss.svg", "accuracy.svg"] {
        let s = svg(&out.join(plot));
        let width: f64 = attr(&s[s.find("<svg").unwrap()..], "width")
            .unwrap()
            .parse()
            .unwrap();
        for t in texts(&s) {
            // Generous glyph width: 0.62 em per character.
            let w = 0.62 * t.size * t.content.chars().count() as f64;
            let right = match t.anchor.as_str() {
                "middle" => t.x + w / 2.0,
                "end" => t.x,
                _ => t.x + w,
            };
            assert!(
                right <= width,
                "{plot}: {:?} ends at x = {right} > {width}",
                t.content
            );
        }
        find(&texts(&s), "1000");
    }
}

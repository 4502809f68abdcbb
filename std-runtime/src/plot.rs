//! Plots with `plotters`, each written as PNG and SVG.
//!
//! * `loss.png/svg`: training and validation loss per epoch, the training data loss (dashed)
//!   and the penalty part of the loss (`loss − data loss`); a log axis when the values span
//!   more than two decades.
//! * `accuracy.png/svg` (classification) or `r2.png/svg` (regression: R², the MSE being the
//!   loss plot): the metric per epoch.
//! * The best (or restored) epoch, when there is one, is a dashed vertical line on both.
//! * `weights.png/svg`: a histogram of the weights of each layer (kernel and bias together).
//! * `sweep.png/svg`: train and validation accuracy (R²) and data loss against the
//!   regularization strength λ on a log axis, the chosen λ marked.
//!
//! Legends sit in a strip to the right of the charts, never over a curve.
//!
//! Text uses the DejaVu Sans font embedded in the binary (`assets/DejaVuSans.ttf`, see
//! `assets/DejaVuSans-LICENSE.txt`), so plots look the same on every machine. Every file is
//! written atomically (temporary file, then rename).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::series::DashedLineSeries;
use plotters::style::FontStyle;

use crate::history::History;
use crate::model::Sequential;
use crate::modelfile::atomic_write;

/// Width of every plot, pixels.
pub const WIDTH: u32 = 900;
/// Height of a single plot, pixels.
pub const HEIGHT: u32 = 560;

const FONT: &str = "sans-serif";
static REGISTER: Once = Once::new();

/// A plot that could not be drawn or written.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub reason: String,
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: cannot draw the plot: {}",
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for PlotError {}

/// Registers the embedded font with plotters (once).
fn ensure_font() {
    REGISTER.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        // A failure leaves the font missing; drawing text then reports an error.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

type DrawResult = Result<(), String>;

fn e2s<E: fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Draws with `draw` into `stem.png` and `stem.svg` in `dir`, `rows` plot heights tall.
fn write_both(
    dir: &Path,
    stem: &str,
    size: (u32, u32),
    draw: &dyn Fn(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
    draw_svg: &dyn Fn(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> Result<Vec<PathBuf>, PlotError> {
    ensure_font();
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    // PNG: drawn to a temporary `.png` next to the target, then renamed.
    let tmp = dir.join(format!(".{stem}.tmp-{}.png", std::process::id()));
    let res = (|| {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(e2s)?;
        draw(&root)?;
        root.present().map_err(e2s)
    })();
    if let Err(reason) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(PlotError { path: png, reason });
    }
    std::fs::rename(&tmp, &png).map_err(|e| PlotError {
        path: png.clone(),
        reason: e.to_string(),
    })?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        let res = (|| {
            root.fill(&WHITE).map_err(e2s)?;
            draw_svg(&root)?;
            root.present().map_err(e2s)
        })();
        res.map_err(|reason| PlotError {
            path: svg.clone(),
            reason,
        })?;
    }
    atomic_write(&svg, text.as_bytes()).map_err(|e| PlotError {
        path: svg.clone(),
        reason: e.to_string(),
    })?;
    Ok(vec![png, svg])
}

/// `(lo, hi)` of the finite values, padded by 5 %, never empty.
fn range_of<'a>(vals: impl Iterator<Item = &'a f32>) -> (f64, f64) {
    range_f64(vals.map(|&v| f64::from(v)))
}

fn range_f64(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6 * hi.abs().max(1.0));
    (lo - pad, hi + pad)
}

/// Tick label of an integer axis: the integer, or nothing between integers.
fn integer_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VAL: RGBColor = RGBColor(255, 127, 14);
const PENALTY: RGBColor = RGBColor(214, 39, 40);
const MARK: RGBColor = RGBColor(60, 60, 60);

/// Width of the legend strip to the right of a chart, pixels.
pub const LEGEND_WIDTH: u32 = 250;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stroke {
    Solid(u32),
    Dashed,
}

/// One legend entry.
struct Entry {
    label: String,
    color: RGBColor,
    stroke: Stroke,
}

/// Draws the legend entries in their own area (to the right of the charts, so that it never
/// hides a curve).
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[Entry]) -> DrawResult {
    let (w, _) = area.dim_in_pixel();
    let max_chars = ((w as i32 - 50) / 7).max(8) as usize;
    let mut y = 60;
    for e in entries {
        let line = [(8, y), (36, y)];
        match e.stroke {
            Stroke::Solid(width) => area
                .draw(&PathElement::new(line, e.color.stroke_width(width)))
                .map_err(e2s)?,
            Stroke::Dashed => area
                .draw(&DashedPathElement::new(line, 5, 3, e.color.stroke_width(2)))
                .map_err(e2s)?,
        }
        // Long labels wrap onto a second line.
        let mut lines: Vec<String> = vec![String::new()];
        for word in e.label.split(' ') {
            let cur = lines.last_mut().map_or(0, |l| l.chars().count());
            if cur > 0 && cur + 1 + word.chars().count() > max_chars {
                lines.push(String::new());
            }
            let l = lines.last_mut().ok_or("empty legend")?;
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(word);
        }
        for (k, l) in lines.iter().enumerate() {
            area.draw(&Text::new(
                l.clone(),
                (44, y - 8 + 18 * k as i32),
                (FONT, 14).into_font().color(&BLACK),
            ))
            .map_err(e2s)?;
        }
        y += 18 * lines.len() as i32 + 12;
    }
    Ok(())
}

/// A marked epoch (the best or restored one): a dashed vertical line and a legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMark {
    /// 0-based epoch.
    pub epoch: u32,
    /// Legend text (`best epoch 12 (weights restored)`).
    pub label: String,
}

/// A series of an epoch chart.
struct Line<'a> {
    label: String,
    color: RGBColor,
    stroke: Stroke,
    values: &'a [f32],
}

/// Whether positive values span more than two decades (then a log axis shows them better).
fn spans_decades(values: &[f32]) -> bool {
    let pos = values.iter().filter(|v| v.is_finite() && **v > 0.0);
    let (lo, hi) = pos.fold((f32::INFINITY, 0.0f32), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    lo.is_finite() && hi / lo > 100.0
}

/// The tick label of a log10 axis: the power of ten at whole exponents, nothing between.
fn log_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        crate::report::g(10f64.powi(v.round() as i32) as f32)
    } else {
        String::new()
    }
}

/// Line chart of several series over epochs, the legend to the right. With `log_y` the values
/// are drawn on a log10 axis (non-positive values left out); `y_floor` clamps values below it
/// (named in the title).
fn epoch_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    lines: &[Line<'_>],
    mark: Option<&EpochMark>,
    log_y: bool,
    y_floor: Option<f64>,
) -> DrawResult {
    let root = root.titled(title, (FONT, 22)).map_err(e2s)?;
    let (w, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(w.saturating_sub(LEGEND_WIDTH));
    let n = lines
        .iter()
        .map(|l| l.values.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let map = |v: f32| -> Option<f64> {
        let v = f64::from(v);
        let v = match y_floor {
            Some(f) => v.max(f),
            None => v,
        };
        if !v.is_finite() {
            None
        } else if log_y {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    };
    let pts = |vals: &[f32]| -> Vec<(f64, f64)> {
        vals.iter()
            .enumerate()
            .filter_map(|(i, &y)| map(y).map(|y| ((i + 1) as f64, y)))
            .collect()
    };
    let (ylo, yhi) = range_f64(lines.iter().flat_map(|l| pts(l.values)).map(|p| p.1));
    let (xlo, xhi) = if n == 1 { (0.5, 1.5) } else { (1.0, n as f64) };
    let mut chart = ChartBuilder::on(&plot)
        .margin(10)
        .margin_right(36)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .map_err(e2s)?;
    let y_desc = if log_y {
        format!("{y_desc} (log scale)")
    } else {
        y_desc.to_string()
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(n.clamp(2, 10))
        .x_label_formatter(&integer_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16));
    // Linear ticks with as many decimals as their spacing needs (and no "-0.0").
    let decimals = (-((yhi - ylo) / 5.0).log10()).ceil().clamp(0.0, 8.0) as usize;
    let linear_label = move |v: &f64| {
        let v = if v.abs() < 1e-12 { 0.0 } else { *v };
        format!("{v:.decimals$}")
    };
    if log_y {
        mesh.y_label_formatter(&log_label);
    } else {
        mesh.y_label_formatter(&linear_label);
    }
    mesh.draw().map_err(e2s)?;
    let mut entries = Vec::new();
    for l in lines {
        let p = pts(l.values);
        if p.is_empty() {
            continue;
        }
        let c = l.color;
        match l.stroke {
            Stroke::Solid(width) => {
                chart
                    .draw_series(LineSeries::new(p.clone(), c.stroke_width(width)))
                    .map_err(e2s)?;
                if p.len() <= 60 && width >= 2 {
                    chart
                        .draw_series(p.iter().map(|&q| Circle::new(q, 2, c.filled())))
                        .map_err(e2s)?;
                }
            }
            Stroke::Dashed => {
                chart
                    .draw_series(DashedLineSeries::new(p, 6, 4, c.stroke_width(2)))
                    .map_err(e2s)?;
            }
        }
        entries.push(Entry {
            label: l.label.clone(),
            color: c,
            stroke: l.stroke,
        });
    }
    if let Some(m) = mark {
        let x = f64::from(m.epoch + 1);
        chart
            .draw_series(DashedLineSeries::new(
                [(x, ylo), (x, yhi)],
                6,
                4,
                MARK.stroke_width(2),
            ))
            .map_err(e2s)?;
        entries.push(Entry {
            label: m.label.clone(),
            color: MARK,
            stroke: Stroke::Dashed,
        });
    }
    draw_legend(&legend, &entries)
}

fn draw_loss<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &History,
    mark: Option<&EpochMark>,
) -> DrawResult {
    let empty: &[f32] = &[];
    let loss = h.get("loss").unwrap_or(empty);
    let data = h.get("data_loss").unwrap_or(empty);
    let penalty: Vec<f32> = loss.iter().zip(data).map(|(l, d)| l - d).collect();
    let has_penalty = penalty.iter().any(|p| *p > 0.0);
    let mut lines = vec![Line {
        label: "training loss".into(),
        color: TRAIN,
        stroke: Stroke::Solid(2),
        values: loss,
    }];
    if let Some(v) = h.get("val_loss") {
        lines.push(Line {
            label: "validation loss".into(),
            color: VAL,
            stroke: Stroke::Solid(2),
            values: v,
        });
    }
    if has_penalty {
        lines.push(Line {
            label: "training data loss (no penalty)".into(),
            color: TRAIN,
            stroke: Stroke::Dashed,
            values: data,
        });
        lines.push(Line {
            label: "penalty (loss − data loss)".into(),
            color: PENALTY,
            stroke: Stroke::Solid(2),
            values: &penalty,
        });
    }
    let all: Vec<f32> = lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .collect();
    epoch_chart(
        root,
        "Loss (Keras: data loss + penalties)",
        "loss",
        &lines,
        mark,
        spans_decades(&all),
        None,
    )
}

fn draw_metric<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &History,
    key: &str,
    mark: Option<&EpochMark>,
) -> DrawResult {
    let empty: &[f32] = &[];
    let train = h.get(key).unwrap_or(empty);
    let val_key = format!("val_{key}");
    let mut lines = vec![Line {
        label: format!("training {key}"),
        color: TRAIN,
        stroke: Stroke::Solid(2),
        values: train,
    }];
    if let Some(v) = h.get(&val_key) {
        lines.push(Line {
            label: format!("validation {key}"),
            color: VAL,
            stroke: Stroke::Solid(2),
            values: v,
        });
    }
    if key == "accuracy" {
        return epoch_chart(root, "Accuracy", key, &lines, mark, false, None);
    }
    // R² can start far below 0; below -1 it is drawn at -1 so that the rest stays readable.
    let clamped = lines
        .iter()
        .flat_map(|l| l.values.iter())
        .any(|v| *v < -1.0);
    let title = if clamped {
        "R² = 1 − MSE / var(y)  (values below −1 drawn at −1)"
    } else {
        "R² = 1 − MSE / var(y)"
    };
    epoch_chart(root, title, "R²", &lines, mark, false, Some(-1.0))
}

/// The metric plot of a history: `accuracy` (classification) or `r2` (regression, since the
/// MSE is already the loss plot).
pub fn metric_plot_key(h: &History) -> &'static str {
    if h.get("accuracy").is_some() {
        "accuracy"
    } else {
        "r2"
    }
}

/// Writes `loss.png/svg` and `accuracy.png/svg` (or `r2.png/svg` for regression) for a
/// history, with `mark` (the best or restored epoch) drawn on both.
///
/// # Errors
/// [`PlotError`] naming the file.
pub fn plot_history(
    h: &History,
    dir: &Path,
    mark: Option<&EpochMark>,
) -> Result<Vec<PathBuf>, PlotError> {
    let mut out = write_both(
        dir,
        "loss",
        (WIDTH, HEIGHT),
        &|r| draw_loss(r, h, mark),
        &|r| draw_loss(r, h, mark),
    )?;
    let key = metric_plot_key(h);
    out.extend(write_both(
        dir,
        key,
        (WIDTH, HEIGHT),
        &|r| draw_metric(r, h, key, mark),
        &|r| draw_metric(r, h, key, mark),
    )?);
    Ok(out)
}

/// The weights of each layer with weights: (name, kernel values, bias values).
fn layer_weights(model: &Sequential) -> Vec<(String, Vec<f32>, Vec<f32>)> {
    let mut out = Vec::new();
    for name in &model.layer_names {
        let prefix = format!("{name}/");
        let (mut kernel, mut bias) = (Vec::new(), Vec::new());
        for (n, t) in model.params.names.iter().zip(&model.params.tensors) {
            match n.strip_prefix(&prefix) {
                Some("bias") => bias.extend_from_slice(t),
                Some(_) => kernel.extend_from_slice(t),
                None => {}
            }
        }
        if !kernel.is_empty() || !bias.is_empty() {
            out.push((name.clone(), kernel, bias));
        }
    }
    out
}

fn draw_hist<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    name: &str,
    kernel: &[f32],
    bias: &[f32],
) -> DrawResult {
    const BINS: usize = 30;
    let vals: Vec<f32> = kernel.iter().chain(bias).copied().collect();
    let (lo, hi) = {
        let (a, b) = range_of(vals.iter());
        let m = a.abs().max(b.abs()).max(1e-3);
        (-m, m)
    };
    let w = (hi - lo) / BINS as f64;
    let mut counts = [0u32; BINS];
    for &v in &vals {
        if v.is_finite() {
            let k = (((f64::from(v) - lo) / w) as usize).min(BINS - 1);
            counts[k] += 1;
        }
    }
    let top = f64::from(counts.iter().copied().max().unwrap_or(1).max(1)) * 1.1;
    let zeros = vals
        .iter()
        .filter(|v| v.abs() < crate::report::NEAR_ZERO)
        .count();
    let title = format!(
        "{name}: {} weights + {} biases ({zeros} of them with |v| < 1e-3)",
        kernel.len(),
        bias.len()
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(8)
        .margin_right(24)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(e2s)?;
    chart
        .configure_mesh()
        .x_desc("value")
        .y_desc("count")
        .y_label_formatter(&integer_label)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(e2s)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(k, &c)| {
            let x0 = lo + k as f64 * w;
            Rectangle::new([(x0, 0.0), (x0 + w, f64::from(c))], TRAIN.mix(0.8).filled())
        }))
        .map_err(e2s)?;
    Ok(())
}

fn draw_weights<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    layers: &[(String, Vec<f32>, Vec<f32>)],
) -> DrawResult {
    let root = root
        .titled("Weight histograms per layer (kernel and bias)", (FONT, 22))
        .map_err(e2s)?;
    let n = layers.len().max(1);
    let cols = if n == 1 { 1 } else { 2 };
    let rows = n.div_ceil(cols);
    let areas = root.split_evenly((rows, cols));
    for ((name, kernel, bias), area) in layers.iter().zip(areas.iter()) {
        draw_hist(area, name, kernel, bias)?;
    }
    Ok(())
}

/// Writes `weights.png/svg`: one histogram per layer with weights.
///
/// # Errors
/// [`PlotError`] naming the file.
pub fn plot_weights(model: &Sequential, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let layers = layer_weights(model);
    let n = layers.len().max(1);
    let rows = if n == 1 { 1 } else { n.div_ceil(2) } as u32;
    let size = (WIDTH, 60 + rows * 320);
    write_both(dir, "weights", size, &|r| draw_weights(r, &layers), &|r| {
        draw_weights(r, &layers)
    })
}

/// One point of a regularization sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// The strength λ.
    pub lambda: f32,
    /// Final training accuracy (classification) or MSE.
    pub train_metric: f32,
    /// Final validation accuracy or MSE.
    pub val_metric: f32,
    /// Final training data loss (no penalty).
    pub train_loss: f32,
    /// Final validation data loss (no penalty).
    pub val_loss: f32,
}

fn draw_sweep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    pts: &[SweepPoint],
    param: &str,
    metric: &str,
    chosen: Option<f32>,
) -> DrawResult {
    // λ whose runs have no result (a NaN from the first epoch) stay off the axis.
    let pts: Vec<SweepPoint> = pts
        .iter()
        .filter(|p| p.val_loss.is_finite() || p.train_loss.is_finite())
        .cloned()
        .collect();
    let pts = &pts[..];
    let positive: Vec<f64> = pts
        .iter()
        .filter(|p| p.lambda > 0.0)
        .map(|p| f64::from(p.lambda))
        .collect();
    let min_pos = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let max_pos = positive.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (min_pos, max_pos) = if min_pos.is_finite() {
        (min_pos, max_pos)
    } else {
        (1e-4, 1e-2)
    };
    // λ = 0 has no place on a log axis: it is drawn one decade left of the smallest λ.
    let zero_at = min_pos / 10.0;
    let x = |l: f32| if l > 0.0 { f64::from(l) } else { zero_at };
    let has_zero = pts.iter().any(|p| p.lambda <= 0.0);
    let xlo = if has_zero { zero_at } else { min_pos } / 2.0;
    let xhi = max_pos * 2.0;
    let root = root
        .titled(
            &format!(
                "Regularization sweep: {param} (train vs validation){}",
                if has_zero {
                    format!("; λ = 0 drawn at {}", crate::report::g(zero_at as f32))
                } else {
                    String::new()
                }
            ),
            (FONT, 20),
        )
        .map_err(e2s)?;
    let (w, _) = root.dim_in_pixel();
    let (charts, legend) = root.split_horizontally(w.saturating_sub(LEGEND_WIDTH));
    let panels = charts.split_evenly((1, 2));
    let metric_name = match metric {
        "accuracy" => "accuracy",
        "r2" => "R²",
        other => other,
    };
    type Getter = fn(&SweepPoint) -> (f32, f32);
    let specs: [(&str, &str, Getter); 2] = [
        (metric_name, metric_name, |p| (p.train_metric, p.val_metric)),
        ("data loss (no penalty)", "loss", |p| {
            (p.train_loss, p.val_loss)
        }),
    ];
    let tick = |v: &f64| {
        if has_zero && (v / zero_at - 1.0).abs() < 1e-6 {
            "0".to_string()
        } else {
            crate::report::g(*v as f32)
        }
    };
    for (area, (title, ydesc, get)) in panels.iter().zip(specs.iter()) {
        let vals: Vec<f32> = pts
            .iter()
            .flat_map(|p| {
                let (a, b) = get(p);
                [a, b]
            })
            .collect();
        let (ylo, yhi) = range_of(vals.iter());
        let mut chart = ChartBuilder::on(area)
            .caption(*title, (FONT, 18))
            .margin(10)
            .margin_right(28)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((xlo..xhi).log_scale(), ylo..yhi)
            .map_err(e2s)?;
        chart
            .configure_mesh()
            .x_desc(format!("{param} strength λ (log scale)"))
            .y_desc(*ydesc)
            .x_label_formatter(&tick)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(e2s)?;
        let mut sorted: Vec<&SweepPoint> = pts.iter().collect();
        sorted.sort_by(|a, b| a.lambda.total_cmp(&b.lambda));
        for (color, which) in [(TRAIN, 0usize), (VAL, 1)] {
            let line: Vec<(f64, f64)> = sorted
                .iter()
                .map(|p| {
                    let (a, b) = get(p);
                    (x(p.lambda), f64::from(if which == 0 { a } else { b }))
                })
                .filter(|(_, y)| y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                .map_err(e2s)?;
            chart
                .draw_series(line.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(e2s)?;
        }
        if let Some(c) = chosen {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x(c), ylo), (x(c), yhi)],
                    6,
                    4,
                    MARK.stroke_width(2),
                ))
                .map_err(e2s)?;
        }
    }
    let mut entries = vec![
        Entry {
            label: "training".into(),
            color: TRAIN,
            stroke: Stroke::Solid(2),
        },
        Entry {
            label: "validation".into(),
            color: VAL,
            stroke: Stroke::Solid(2),
        },
    ];
    if let Some(c) = chosen {
        entries.push(Entry {
            label: format!(
                "chosen λ = {} (lowest validation data loss)",
                crate::report::g(c)
            ),
            color: MARK,
            stroke: Stroke::Dashed,
        });
    }
    draw_legend(&legend, &entries)
}

/// Writes `sweep.png/svg`: metric (`accuracy` or `r2`) and data loss against λ (log axis),
/// train and validation, with the `chosen` λ marked. `param` names what was swept
/// (`kernel L2`).
///
/// # Errors
/// [`PlotError`] naming the file.
pub fn plot_sweep(
    pts: &[SweepPoint],
    param: &str,
    metric: &str,
    chosen: Option<f32>,
    dir: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    write_both(
        dir,
        "sweep",
        (WIDTH + 300 + LEGEND_WIDTH, HEIGHT),
        &|r| draw_sweep(r, pts, param, metric, chosen),
        &|r| draw_sweep(r, pts, param, metric, chosen),
    )
}

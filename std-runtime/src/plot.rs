//! Plots with `plotters`, each written as PNG and SVG.
//!
//! * `loss.png/svg`: training and validation loss per epoch; the band between the training data
//!   loss and the training loss is the penalty part of the loss (shaded).
//! * `accuracy.png/svg` (classification) or `mse.png/svg` (regression): the metric per epoch.
//! * `weights.png/svg`: a histogram of the weights of each layer (kernel and bias together).
//! * `sweep.png/svg`: train and validation accuracy and loss against the regularization
//!   strength λ on a log axis.
//!
//! Text uses the DejaVu Sans font embedded in the binary (`assets/DejaVuSans.ttf`, see
//! `assets/DejaVuSans-LICENSE.txt`), so plots look the same on every machine. Every file is
//! written atomically (temporary file, then rename).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
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
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in vals {
        if v.is_finite() {
            lo = lo.min(f64::from(v));
            hi = hi.max(f64::from(v));
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

fn series(v: &[f32]) -> Vec<(f64, f64)> {
    v.iter()
        .enumerate()
        .filter(|(_, y)| y.is_finite())
        .map(|(i, y)| ((i + 1) as f64, f64::from(*y)))
        .collect()
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VAL: RGBColor = RGBColor(255, 127, 14);
const PENALTY: RGBColor = RGBColor(214, 39, 40);

/// Line chart of several series over epochs; `band` is `(upper, lower)` shaded between.
fn epoch_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    lines: &[(&str, RGBColor, &[f32])],
    band: Option<(&[f32], &[f32])>,
) -> DrawResult {
    let n = lines.iter().map(|l| l.2.len()).max().unwrap_or(0).max(1);
    let mut all: Vec<&f32> = lines.iter().flat_map(|l| l.2.iter()).collect();
    if let Some((a, b)) = band {
        all.extend(a.iter().chain(b.iter()));
    }
    let (ylo, yhi) = range_of(all.into_iter());
    let (xlo, xhi) = if n == 1 { (0.5, 1.5) } else { (1.0, n as f64) };
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 24))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .map_err(e2s)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(n.clamp(2, 10))
        .x_label_formatter(&integer_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(e2s)?;
    if let Some((upper, lower)) = band {
        let up = series(upper);
        let lo = series(lower);
        if up.len() >= 2 && up.len() == lo.len() {
            let mut poly = up.clone();
            poly.extend(lo.iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    PENALTY.mix(0.25).filled(),
                )))
                .map_err(e2s)?
                .label("penalty part of the training loss")
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 20, y + 6)], PENALTY.mix(0.25).filled())
                });
            chart
                .draw_series(LineSeries::new(lo, PENALTY.mix(0.8).stroke_width(1)))
                .map_err(e2s)?
                .label("training data loss (no penalty)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], PENALTY.mix(0.8)));
        }
    }
    for (name, color, v) in lines {
        let pts = series(v);
        let c = *color;
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(e2s)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        if pts.len() <= 60 {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 2, c.filled())))
                .map_err(e2s)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e2s)?;
    Ok(())
}

fn draw_loss<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &History) -> DrawResult {
    let empty: &[f32] = &[];
    let loss = h.get("loss").unwrap_or(empty);
    let mut lines: Vec<(&str, RGBColor, &[f32])> = vec![("training loss", TRAIN, loss)];
    if let Some(v) = h.get("val_loss") {
        lines.push(("validation loss", VAL, v));
    }
    let band = h.get("data_loss").map(|d| (loss, d));
    epoch_chart(
        root,
        "Loss (Keras: data loss + penalties)",
        "loss",
        &lines,
        band,
    )
}

fn draw_metric<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &History,
    key: &str,
) -> DrawResult {
    let empty: &[f32] = &[];
    let train = h.get(key).unwrap_or(empty);
    let val_key = format!("val_{key}");
    let mut lines: Vec<(&str, RGBColor, &[f32])> = vec![("training", TRAIN, train)];
    if let Some(v) = h.get(&val_key) {
        lines.push(("validation", VAL, v));
    }
    let title = if key == "accuracy" {
        "Accuracy"
    } else {
        "Mean squared error"
    };
    epoch_chart(root, title, key, &lines, None)
}

/// Writes `loss.png/svg` and `accuracy.png/svg` (or `mse.png/svg`) for a history.
///
/// # Errors
/// [`PlotError`] naming the file.
pub fn plot_history(h: &History, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let mut out = write_both(dir, "loss", (WIDTH, HEIGHT), &|r| draw_loss(r, h), &|r| {
        draw_loss(r, h)
    })?;
    let key = if h.get("accuracy").is_some() {
        "accuracy"
    } else {
        "mse"
    };
    out.extend(write_both(
        dir,
        key,
        (WIDTH, HEIGHT),
        &|r| draw_metric(r, h, key),
        &|r| draw_metric(r, h, key),
    )?);
    Ok(out)
}

/// The weights of each layer (all its tensors), for the histograms.
fn layer_weights(model: &Sequential) -> Vec<(String, Vec<f32>)> {
    let mut out: Vec<(String, Vec<f32>)> = Vec::new();
    for name in &model.layer_names {
        let prefix = format!("{name}/");
        let vals: Vec<f32> = model
            .params
            .names
            .iter()
            .zip(&model.params.tensors)
            .filter(|(n, _)| n.starts_with(&prefix))
            .flat_map(|(_, t)| t.iter().copied())
            .collect();
        if !vals.is_empty() {
            out.push((name.clone(), vals));
        }
    }
    out
}

fn draw_hist<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    name: &str,
    vals: &[f32],
) -> DrawResult {
    const BINS: usize = 30;
    let (lo, hi) = {
        let (a, b) = range_of(vals.iter());
        let m = a.abs().max(b.abs()).max(1e-3);
        (-m, m)
    };
    let w = (hi - lo) / BINS as f64;
    let mut counts = [0u32; BINS];
    for &v in vals {
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
    let title = format!("{name}: {} weights, {zeros} with |w| < 1e-3", vals.len());
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(e2s)?;
    chart
        .configure_mesh()
        .x_desc("weight")
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
    layers: &[(String, Vec<f32>)],
) -> DrawResult {
    let root = root
        .titled("Weight histograms per layer", (FONT, 22))
        .map_err(e2s)?;
    let n = layers.len().max(1);
    let cols = if n == 1 { 1 } else { 2 };
    let rows = n.div_ceil(cols);
    let areas = root.split_evenly((rows, cols));
    for ((name, vals), area) in layers.iter().zip(areas.iter()) {
        draw_hist(area, name, vals)?;
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
) -> DrawResult {
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
                    format!("; λ = 0 drawn at {zero_at:.0e}")
                } else {
                    String::new()
                }
            ),
            (FONT, 20),
        )
        .map_err(e2s)?;
    let panels = root.split_evenly((1, 2));
    let metric_name = if metric == "accuracy" {
        "accuracy"
    } else {
        "mse"
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
            format!("{v:.0e}")
        }
    };
    for (k, (area, (title, ydesc, get))) in panels.iter().zip(specs.iter()).enumerate() {
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
        for (label, color, which) in [("training", TRAIN, 0usize), ("validation", VAL, 1)] {
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
                .map_err(e2s)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(line.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(e2s)?;
        }
        chart
            .configure_series_labels()
            // Accuracy usually falls and loss rises at large λ: keep the legend on the left.
            .position(if k == 0 {
                SeriesLabelPosition::LowerLeft
            } else {
                SeriesLabelPosition::UpperLeft
            })
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e2s)?;
    }
    Ok(())
}

/// Writes `sweep.png/svg`: metric and data loss against λ (log axis), train and validation.
/// `param` names what was swept (`kernel L2`), `metric` is `accuracy` or `mse`.
///
/// # Errors
/// [`PlotError`] naming the file.
pub fn plot_sweep(
    pts: &[SweepPoint],
    param: &str,
    metric: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    write_both(
        dir,
        "sweep",
        (WIDTH + 300, HEIGHT),
        &|r| draw_sweep(r, pts, param, metric),
        &|r| draw_sweep(r, pts, param, metric),
    )
}

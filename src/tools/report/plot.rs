//! The report's PNG charts, drawn with plotters into an RGB buffer and encoded with `image`.
//!
//! Owns the font (DejaVu Sans, registered once for plotters' `ab_glyph` text), the chart
//! layouts (histogram, grouped bars, time series with an optional budget line) and the
//! style grid picture. It knows nothing about where the numbers come from.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use thiserror::Error;

use crate::frame::RgbImage;

/// Debian's fonts-dejavu-core (in the Makefile's APT_PKGS).
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FAMILY: &str = "sans-serif";
const CHART: (u32, u32) = (900, 480);

/// Line colours, in series order (colour-blind-safe Okabe-Ito picks).
pub const PALETTE: [RGBColor; 4] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
];
const BUDGET: RGBColor = RGBColor(213, 94, 0);

#[derive(Debug, Error)]
pub enum PlotError {
    #[error(
        "font {0} is missing: install Debian's fonts-dejavu-core (`make deps`) or pass --font FILE.ttf"
    )]
    FontMissing(PathBuf),
    #[error("font {0} is not a TrueType/OpenType font plotters can use")]
    FontInvalid(PathBuf),
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

static FONT: OnceLock<&'static [u8]> = OnceLock::new();

/// Registers the font for all charts; later calls with any path keep the first font.
pub fn load_font(path: &Path) -> Result<(), PlotError> {
    if FONT.get().is_some() {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|_| PlotError::FontMissing(path.into()))?;
    // plotters keeps registered fonts for the life of the process, so the bytes must too;
    // the OnceLock makes this one leak per process.
    let bytes: &'static [u8] = FONT.get_or_init(|| Box::leak(bytes.into_boxed_slice()));
    for style in [FontStyle::Normal, FontStyle::Bold] {
        register_font(FAMILY, style, bytes).map_err(|_| PlotError::FontInvalid(path.into()))?;
    }
    Ok(())
}

/// Draws into a white `w` x `h` buffer with `draw`, then writes it as PNG.
fn render(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<(), PlotError> {
    let fail = |message: String| PlotError::Draw {
        path: path.into(),
        message,
    };
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    image::save_buffer(path, &buf, w, h, image::ExtendedColorType::Rgb8).map_err(|e| {
        PlotError::Write {
            path: path.into(),
            message: e.to_string(),
        }
    })
}

fn text(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Pads a range so a flat series still gets a visible axis.
fn span(lo: f64, hi: f64) -> (f64, f64) {
    if (hi - lo).abs() < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi + (hi - lo) * 0.08)
    }
}

/// Histogram of several value sets over shared bins; an optional vertical budget line.
pub fn histogram(
    path: &Path,
    title: &str,
    x_label: &str,
    sets: &[(&str, &[f64])],
    budget: Option<f64>,
) -> Result<(), PlotError> {
    const BINS: usize = 24;
    let all = sets.iter().flat_map(|(_, v)| v.iter().copied());
    let max = all.fold(budget.unwrap_or(0.0), f64::max).max(1.0) * 1.05;
    let width = max / BINS as f64;
    let counts: Vec<Vec<usize>> = sets
        .iter()
        .map(|(_, v)| {
            let mut c = vec![0; BINS];
            for &x in v.iter() {
                c[((x / width) as usize).min(BINS - 1)] += 1;
            }
            c
        })
        .collect();
    let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    render(path, CHART, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, text(22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("samples")
            .label_style(text(14))
            .axis_desc_style(text(16))
            .draw()
            .map_err(|e| e.to_string())?;
        let slot = width / sets.len().max(1) as f64;
        for (k, ((name, _), c)) in sets.iter().zip(&counts).enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(
                    c.iter()
                        .enumerate()
                        .filter(|(_, n)| **n > 0)
                        .map(|(b, &n)| {
                            let x0 = b as f64 * width + k as f64 * slot;
                            Rectangle::new([(x0, 0.0), (x0 + slot * 0.9, n as f64)], color.filled())
                        }),
                )
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        if let Some(b) = budget {
            chart
                .draw_series(LineSeries::new(
                    [(b, 0.0), (b, top)],
                    BUDGET.stroke_width(3),
                ))
                .map_err(|e| e.to_string())?
                .label(format!("budget {b:.0}"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BUDGET.stroke_width(3)));
        }
        legend(&mut chart)
    })
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(text(14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}

/// Grouped bars: one group per category, one bar per series.
pub fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    categories: &[&str],
    series: &[(&str, Vec<f64>)],
) -> Result<(), PlotError> {
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max)
        .max(0.1)
        * 1.15;
    let n = categories.len().max(1);
    render(path, CHART, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, text(22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n as f64, 0.0..top)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = categories.iter().map(|s| s.to_string()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.01 {
                    names.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y_label)
            .label_style(text(14))
            .axis_desc_style(text(16))
            .draw()
            .map_err(|e| e.to_string())?;
        let slot = 0.8 / series.len().max(1) as f64;
        for (k, (name, values)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(values.iter().enumerate().map(|(i, &v)| {
                    let x0 = i as f64 + 0.1 + k as f64 * slot;
                    Rectangle::new([(x0, 0.0), (x0 + slot * 0.92, v)], color.filled())
                }))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        legend(&mut chart)
    })
}

/// Time series (x = seconds); `step` draws them as steps (levels), `budget` a dashed-looking
/// horizontal line.
pub fn series(
    path: &Path,
    title: &str,
    y_label: &str,
    lines: &[(&str, Vec<(f64, f64)>)],
    budget: Option<(f64, &str)>,
    step: bool,
) -> Result<(), PlotError> {
    let points = lines.iter().flat_map(|(_, p)| p.iter().copied());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for (x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if let Some((b, _)) = budget {
        y1 = y1.max(b);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    let (x0, x1) = span(x0, x1);
    let (y0, y1) = span(y0, y1.max(y0));
    render(path, CHART, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, text(22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc(y_label)
            .label_style(text(14))
            .axis_desc_style(text(16))
            .draw()
            .map_err(|e| e.to_string())?;
        for (k, (name, pts)) in lines.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let drawn: Vec<(f64, f64)> = if step {
                let mut v = Vec::with_capacity(pts.len() * 2);
                for w in pts.windows(2) {
                    v.extend([w[0], (w[1].0, w[0].1)]);
                }
                v.extend(pts.last().copied());
                v
            } else {
                pts.clone()
            };
            chart
                .draw_series(LineSeries::new(drawn, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        if let Some((b, label)) = budget {
            // Dashes: short segments along the budget value.
            let n = 60;
            let dx = (x1 - x0) / n as f64;
            let dashes = (0..n).step_by(2).map(|i| {
                let a = x0 + i as f64 * dx;
                PathElement::new([(a, b), (a + dx, b)], BUDGET.stroke_width(3))
            });
            chart
                .draw_series(dashes)
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BUDGET.stroke_width(3)));
        }
        legend(&mut chart)
    })
}

/// A grid of labelled tiles (all the same size), `cols` per row.
pub fn grid(path: &Path, tiles: &[(String, RgbImage)], cols: usize) -> Result<(), PlotError> {
    let Some((_, first)) = tiles.first() else {
        return Ok(());
    };
    const LABEL: u32 = 26;
    const GAP: u32 = 6;
    let cols = cols.max(1);
    let rows = tiles.len().div_ceil(cols) as u32;
    let (tw, th) = (first.width, first.height);
    let w = cols as u32 * (tw + GAP) + GAP;
    let h = rows * (th + LABEL + GAP) + GAP;
    render(path, (w, h), |root| {
        for (i, (label, img)) in tiles.iter().enumerate() {
            let x = GAP + (i % cols) as u32 * (tw + GAP);
            let y = GAP + (i / cols) as u32 * (th + LABEL + GAP);
            root.draw_text(label, &text(17), (x as i32 + 2, y as i32 + 3))
                .map_err(|e| e.to_string())?;
            let top = y + LABEL;
            for py in 0..img.height.min(th) {
                for px in 0..img.width.min(tw) {
                    let [r, g, b] = img.pixel(px, py);
                    root.draw_pixel(((x + px) as i32, (top + py) as i32), &RGBColor(r, g, b))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    })
}

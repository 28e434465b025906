//! The training curves as a PNG: loss on the left, train and test
//! accuracy on the right, one point per epoch. Labels use [`crate::font`].

use crate::error::{err, Result};
use crate::font;
use crate::train::EpochStats;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (960, 420);
const GRID: RGBColor = RGBColor(225, 225, 225);
const INK: RGBColor = RGBColor(60, 60, 60);
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(214, 39, 40);

/// Draw `s` at backend (whole-image) coordinates `(x, y)`.
fn text(area: &DrawingArea<BitMapBackend<'_>, Shift>, s: &str, x: i32, y: i32, c: &RGBColor) {
    let (bx, by) = area.get_base_pixel();
    font::render(s, x - bx, y - by, 2, |px, py| {
        let _ = area.draw_pixel((px, py), c);
    });
}

fn fmt_tick(v: f64, percent: bool) -> String {
    if percent {
        format!("{:.0}%", 100.0 * v)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A named, coloured series of `(epoch, value)` points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// One panel: series of `(epoch, value)` with colours and a legend.
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    series: &[Series<'_>],
    y: (f64, f64),
    epochs: usize,
    percent: bool,
) -> std::result::Result<(), String> {
    let x_max = (epochs as f64).max(2.0);
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(50)
        .margin_left(70)
        .margin_right(20)
        .build_cartesian_2d(1f64..x_max, y.0..y.1)
        .map_err(|e| e.to_string())?;
    // Grid and y ticks.
    let ticks = 5;
    for i in 0..=ticks {
        let v = y.0 + (y.1 - y.0) * i as f64 / ticks as f64;
        chart
            .draw_series(LineSeries::new([(1.0, v), (x_max, v)], GRID))
            .map_err(|e| e.to_string())?;
        let (px, py) = chart.backend_coord(&(1.0, v));
        let s = fmt_tick(v, percent);
        text(area, &s, px - font::width(&s, 2) - 8, py - 7, &INK);
    }
    // x ticks: first, last and a few between.
    let step = (epochs / 5).max(1);
    let mut xs: Vec<usize> = (1..=epochs).step_by(step).collect();
    if *xs.last().unwrap_or(&0) != epochs {
        xs.push(epochs);
    }
    for e in xs {
        let (px, py) = chart.backend_coord(&(e as f64, y.0));
        let s = e.to_string();
        text(area, &s, px - font::width(&s, 2) / 2, py + 8, &INK);
    }
    let (ox, oy) = chart.backend_coord(&(1.0, y.0));
    let (ex, _) = chart.backend_coord(&(x_max, y.0));
    let (_, ty) = chart.backend_coord(&(1.0, y.1));
    chart
        .draw_series(LineSeries::new([(1.0, y.0), (x_max, y.0)], INK))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new([(1.0, y.0), (1.0, y.1)], INK))
        .map_err(|e| e.to_string())?;
    text(
        area,
        "epoch",
        (ox + ex) / 2 - font::width("epoch", 2) / 2,
        oy + 24,
        &INK,
    );
    text(area, title, ox, ty - 32, &INK);
    // Curves and legend.
    let mut lx = ox + font::width(title, 2) + 30;
    for (name, color, pts) in series {
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
        let (bx, by) = area.get_base_pixel();
        let corners = [(lx - bx, ty - 28 - by), (lx + 18 - bx, ty - 24 - by)];
        area.draw(&Rectangle::new(corners, color.filled()))
            .map_err(|e| e.to_string())?;
        text(area, name, lx + 24, ty - 32, color);
        lx += 24 + font::width(name, 2) + 24;
    }
    Ok(())
}

/// Draw the loss and accuracy curves of a run into `path` (PNG).
pub fn curves(path: &Path, history: &[EpochStats]) -> Result<()> {
    let fail = |e: String| err(format!("cannot draw {}: {e}", path.display()));
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    let n = history.len();
    let pts = |f: &dyn Fn(&EpochStats) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .enumerate()
            .map(|(i, h)| ((i + 1) as f64, f(h)))
            .collect()
    };
    let max_loss = history.iter().map(|h| h.loss).fold(0.0, f64::max).max(1e-3);
    panel(
        &left,
        "loss",
        &[("train", TRAIN, pts(&|h| h.loss))],
        (0.0, max_loss * 1.05),
        n,
        false,
    )
    .map_err(fail)?;
    let min_acc = history
        .iter()
        .flat_map(|h| [h.train_acc, h.test_acc])
        .fold(1.0, f64::min);
    let lo = ((min_acc * 20.0).floor() / 20.0).clamp(0.0, 0.95);
    panel(
        &right,
        "accuracy",
        &[
            ("train", TRAIN, pts(&|h| h.train_acc)),
            ("test", TEST, pts(&|h| h.test_acc)),
        ],
        (lo, 1.0),
        n,
        true,
    )
    .map_err(fail)?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}

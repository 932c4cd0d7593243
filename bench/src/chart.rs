//! `bench/chart.svg`: one bar per target, its length the measured figure
//! relative to the target (≥ 1 = met), labelled with the figure itself.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::Check;

/// Draws the chart (SVG only: text is written as <text>, no fonts needed).
pub fn draw(checks: &[Check], path: &Path) {
    if let Err(e) = try_draw(checks, path) {
        eprintln!("warning: cannot draw {}: {e}", path.display());
    }
}

fn try_draw(checks: &[Check], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let rows: Vec<&Check> = checks.iter().filter(|c| c.value.valid()).collect();
    let n = rows.len().max(1);
    let height = 110 + 26 * n as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (lo, hi) = (0.01f64, 200f64);
    let labels: Vec<String> = rows
        .iter()
        .rev()
        .map(|c| format!("{}  (target {})", c.name, c.target_text()))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "redis-databroker: measured figure ÷ target (right of the line = target met)",
            ("sans-serif", 17),
        )
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(390)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_style(("sans-serif", 12))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("throughput ratios: measured ÷ target; latency and memory: target ÷ measured (log scale)")
        .x_label_formatter(&|v| format!("{v}"))
        .draw()?;
    let green = RGBColor(46, 139, 87);
    let red = RGBColor(200, 60, 50);
    chart.draw_series(rows.iter().rev().enumerate().map(|(i, c)| {
        let color = if c.met() == Some(true) { green } else { red };
        let s = c.score().clamp(lo, hi);
        Rectangle::new(
            [
                (lo, SegmentValue::Exact(i)),
                (s, SegmentValue::Exact(i + 1)),
            ],
            color.mix(0.75).filled(),
        )
    }))?;
    chart.draw_series(rows.iter().rev().enumerate().map(|(i, c)| {
        let s = c.score().clamp(lo, hi);
        Text::new(
            c.value_text(),
            (s * 1.08, SegmentValue::CenterOf(i)),
            TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
        BLACK.stroke_width(2),
    )))?;
    root.present()?;
    Ok(())
}

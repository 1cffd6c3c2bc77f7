//! `bnas bench --plot`: the runtime's per-layer times and the engines' latencies with the
//! speedups, as one SVG (written atomically).

use std::path::Path;

use anyhow::anyhow;
use bnas_runtime::write_atomic;
use plotters::prelude::*;

use super::report::BenchReport;

/// Colour of a step kind's bars.
fn colour(op: &str) -> RGBColor {
    match op {
        "binary conv" => RGBColor(31, 119, 180),
        "float conv" => RGBColor(214, 39, 40),
        "linear" => RGBColor(148, 103, 189),
        _ => RGBColor(127, 127, 127),
    }
}

/// Draws `report` to `path`.
pub fn write(report: &BenchReport, path: &Path) -> anyhow::Result<()> {
    let mut svg = String::new();
    draw(report, &mut svg).map_err(|e| anyhow!("drawing the plot: {e}"))?;
    Ok(write_atomic(path, svg.as_bytes())?)
}

fn draw(report: &BenchReport, svg: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (1400, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(1000);

    let layers = &report.layers;
    let slowest = layers.iter().map(|l| l.median_us).fold(0.0, f64::max).max(1e-3);
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!(
                "{}: runtime time per layer (batch {}, {} thread(s))",
                report.network, report.batch, report.threads
            ),
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..layers.len() as f64, 0f64..slowest * 1.05)?;
    chart.configure_mesh().x_desc("plan step").y_desc("median time (us)").disable_x_mesh().draw()?;
    for op in ["binary conv", "float conv", "linear", "other"] {
        let bars = layers.iter().enumerate().filter(|(_, l)| match op {
            "other" => !["binary conv", "float conv", "linear"].contains(&l.op),
            _ => l.op == op,
        });
        let style = colour(op).filled();
        chart
            .draw_series(
                bars.map(|(i, l)| {
                    Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, l.median_us)], style)
                }),
            )?
            .label(op)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], style));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;

    let engines = report.engine_list();
    let longest = engines.iter().map(|(_, s)| s.median_ms).fold(0.0, f64::max).max(1e-6);
    let mut chart = ChartBuilder::on(&right)
        .caption(
            format!(
                "{:.1}x vs ORT, {:.1}x vs OpenVINO, {:.1}x vs libtorch",
                report.speedup_vs_ort, report.speedup_vs_openvino, report.speedup_vs_torch
            ),
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..engines.len()).into_segmented(), 0f64..longest * 1.15)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("engine")
        .y_desc("median latency (ms)")
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => {
                engines.get(*i).map_or(String::new(), |(name, _)| (*name).to_owned())
            }
            _ => String::new(),
        })
        .draw()?;
    let bnas = report.engines.bnas.median_ms;
    chart.draw_series(engines.iter().enumerate().map(|(i, (_, stats))| {
        let fill = if i == 0 { colour("binary conv") } else { colour("other") };
        Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), stats.median_ms)],
            fill.filled(),
        )
    }))?;
    chart.draw_series(engines.iter().enumerate().map(|(i, (_, stats))| {
        Text::new(
            format!("{:.2} ms ({:.1}x)", stats.median_ms, stats.median_ms / bnas),
            (SegmentValue::Exact(i), stats.median_ms * 1.03),
            ("sans-serif", 14),
        )
    }))?;
    root.present()?;
    Ok(())
}

//! Training curves as an SVG: reward and the retrieval metric per step, the held-out metric
//! with the original query's as a flat line, and response lengths.
use std::path::Path;

use anyhow::Result;
use harness_rl::trainer::StepLog;

/// Lines through (step, value) points; an empty chart says there is nothing to show.
fn points(area: &plotters::drawing::DrawingArea<plotters::prelude::SVGBackend, plotters::coord::Shift>, title: &str, lines: &[(&str, Vec<(f64, f64)>, plotters::style::RGBColor)], steps: f64) -> Result<()> {
    use plotters::prelude::*;
    let values = lines.iter().flat_map(|(_, v, _)| v.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (lo, hi) = if lo < hi { (lo, hi) } else if lo <= hi { (lo - 0.05, hi + 0.05) } else { (0.0, 1.0) };
    let title = if lines.is_empty() { format!("{title}: no held-out evaluation in this run") } else { title.to_string() };
    let mut chart = ChartBuilder::on(area).caption(title, ("sans-serif", 18)).margin(10).x_label_area_size(30).y_label_area_size(50).build_cartesian_2d(0f64..steps, lo..hi)?;
    chart.configure_mesh().x_desc("step").draw()?;
    for (name, pts, color) in lines {
        let color = *color;
        chart.draw_series(LineSeries::new(pts.iter().copied(), color))?.label(*name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    if !lines.is_empty() {
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    }
    Ok(())
}

/// Reward, metric, held-out metric against the original query's, and lengths over steps.
pub fn plot(logs: &[StepLog], evals: &[super::HeldOut], original: Option<f64>, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let svg = {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, (900, 600)).into_drawing_area();
            root.fill(&WHITE)?;
            let (upper, rest) = root.split_vertically(300);
            let (middle, lower) = rest.split_vertically(300);
            let steps = logs.len().max(1) as f64;
            let series = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>, title: &str, lines: &[(&str, Vec<f64>, RGBColor)]| -> Result<()> {
                let (lo, hi) = lines.iter().flat_map(|(_, v, _)| v.iter().copied()).fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
                let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
                let mut chart = ChartBuilder::on(area)
                    .caption(title, ("sans-serif", 18))
                    .margin(10)
                    .x_label_area_size(30)
                    .y_label_area_size(50)
                    .build_cartesian_2d(0f64..steps, lo..hi)?;
                chart.configure_mesh().x_desc("step").draw()?;
                for (name, values, color) in lines {
                    let color = *color;
                    chart
                        .draw_series(LineSeries::new(values.iter().enumerate().map(|(i, v)| (i as f64 + 1.0, *v)), color))?
                        .label(*name)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
                }
                chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
                Ok(())
            };
            series(
                &upper,
                "reward and NDCG per step",
                &[("reward", logs.iter().map(|l| l.reward_mean).collect(), BLUE), ("ndcg", logs.iter().map(|l| l.metric_mean).collect(), GREEN)],
            )?;
            let mut held_out = Vec::new();
            if !evals.is_empty() {
                held_out.push(("held-out metric (greedy)", evals.iter().map(|e| (e.step as f64, e.metric_mean)).collect::<Vec<_>>(), GREEN));
            }
            if let Some(b) = original {
                held_out.push(("original query", vec![(0.0, b), (steps, b)], BLACK));
            }
            points(&middle, "held-out metric", &held_out, steps)?;
            series(
                &lower,
                "lengths (tokens)",
                &[
                    ("response", logs.iter().map(|l| l.response_tokens_mean).collect(), RED),
                    ("think", logs.iter().map(|l| l.think_tokens_mean).collect(), MAGENTA),
                    ("answer", logs.iter().map(|l| l.answer_tokens_mean).collect(), CYAN),
                ],
            )?;
            root.present()?;
        }
        text
    };
    harness_core::io::write_atomically(path, |w| w.write_all(svg.as_bytes()))?;
    Ok(())
}


//! `bnas-run compare`: per-example agreement of two engines' `--predictions` files (`bnas-run
//! eval`, `bnas eval`): same predicted class, and how far their logits are apart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bnas_runtime::report::{emit, PredictionLine, Table};
use clap::Args;
use serde::Serialize;

/// Flags of `bnas-run compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first predictions file (JSON lines: index, label, pred, logits).
    first: PathBuf,
    /// The second predictions file.
    second: PathBuf,
    /// Logit differences above this count as disagreements.
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The comparison.
#[derive(Debug, Serialize)]
struct CompareReport {
    first: String,
    second: String,
    examples: usize,
    same_prediction: usize,
    /// Examples whose logits differ by more than the tolerance somewhere.
    beyond_tolerance: usize,
    tolerance: f32,
    max_logit_difference: f32,
    first_top1: f64,
    second_top1: f64,
}

fn read(path: &Path) -> anyhow::Result<HashMap<usize, PredictionLine<'static>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let parsed: PredictionLine = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a predictions line", path.display(), number + 1))?;
        lines.insert(parsed.index, parsed);
    }
    Ok(lines)
}

/// Runs the command.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let (first, second) = (read(&args.first)?, read(&args.second)?);
    if first.len() != second.len() || first.keys().any(|k| !second.contains_key(k)) {
        bail!("the two files do not hold the same examples ({} and {} lines)", first.len(), second.len());
    }
    let (mut same, mut beyond, mut worst, mut correct) = (0, 0, 0.0f32, [0usize; 2]);
    for (index, a) in &first {
        let b = &second[index];
        if a.logits.len() != b.logits.len() || a.label != b.label {
            bail!("example {index}: the files disagree on its label or class count");
        }
        let difference =
            a.logits.iter().zip(b.logits.iter()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        worst = worst.max(difference);
        beyond += usize::from(difference > args.tolerance);
        same += usize::from(a.pred == b.pred);
        correct[0] += usize::from(a.pred == a.label);
        correct[1] += usize::from(b.pred == b.label);
    }
    let n = first.len();
    let report = CompareReport {
        first: args.first.display().to_string(),
        second: args.second.display().to_string(),
        examples: n,
        same_prediction: same,
        beyond_tolerance: beyond,
        tolerance: args.tolerance,
        max_logit_difference: worst,
        first_top1: correct[0] as f64 / n.max(1) as f64,
        second_top1: correct[1] as f64 / n.max(1) as f64,
    };
    if args.json {
        return Ok(emit(&serde_json::to_string_pretty(&report)?)?);
    }
    let percent = |k: usize| format!("{k} ({:.2}%)", 100.0 * k as f64 / n.max(1) as f64);
    let mut table = Table::new(&["metric", "value"], 1);
    for (metric, value) in [
        ("examples", n.to_string()),
        ("same predicted class", percent(same)),
        (&*format!("logits apart by > {:e}", args.tolerance), percent(beyond)),
        ("max |logit difference|", format!("{worst:.3e}")),
        ("top-1, first file", format!("{:.2}%", 100.0 * report.first_top1)),
        ("top-1, second file", format!("{:.2}%", 100.0 * report.second_top1)),
    ] {
        table.row(vec![metric.to_owned(), value]);
    }
    emit(&table.render())?;
    Ok(())
}

//! `bnas summary`: what a network costs, layer by layer (reference §8's glossary).

use bnas_models::{registry, NetworkConfig, Summary, Totals};
use clap::Args;
use serde::Serialize;

use bnas_runtime::cli::ModelArgs;
use bnas_runtime::report::{bytes, emit, render_summary, si, thousands, Table};

/// Flags of `bnas summary`.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Without --model: one line per named model.
    #[command(flatten)]
    model: Option<ModelArgs>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: &SummaryArgs) -> anyhow::Result<()> {
    match &args.model {
        Some(model) => {
            let summary = Summary::of(&model.config()?.spec()?);
            if args.json {
                emit(&serde_json::to_string_pretty(&summary)?)?;
            } else {
                emit(&render_summary(&summary))?;
            }
        }
        None => {
            let rows = registry::MODELS
                .iter()
                .map(|m| {
                    let config = NetworkConfig::named(m.name).expect("registry models resolve");
                    Ok(RegistryRow {
                        model: m.name,
                        top1: m.top1,
                        top5: m.top5,
                        totals: Summary::of(&config.spec()?).totals,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if args.json {
                emit(&serde_json::to_string_pretty(&rows)?)?;
            } else {
                emit(&render_registry(&rows))?;
            }
        }
    }
    Ok(())
}

/// One named model's totals with its published accuracy.
#[derive(Debug, Serialize)]
struct RegistryRow {
    model: &'static str,
    top1: f32,
    top5: Option<f32>,
    totals: Totals,
}

fn render_registry(rows: &[RegistryRow]) -> String {
    let mut table = Table::new(
        &[
            "model",
            "params",
            "float MACs",
            "binary MACs",
            "OPs",
            "fp32",
            "packed",
            "ratio",
            "peak act.",
            "top-1",
            "top-5",
        ],
        1,
    );
    for row in rows {
        let t = &row.totals;
        table.row(vec![
            row.model.to_owned(),
            thousands(t.params),
            si(t.float_macs as f64),
            si(t.binary_macs as f64),
            si(t.ops),
            bytes(t.fp32_bytes),
            bytes(t.packed_bytes),
            format!("{:.1}x", t.compression),
            bytes(t.peak_activation_bytes),
            format!("{:.2}", row.top1),
            row.top5.map_or("-".to_owned(), |t| format!("{t:.2}")),
        ]);
    }
    format!(
        "{}\n\nPer sample. OPs = float MACs + binary MACs / 64. top-1/top-5: published (CIFAR-10 / ImageNet).\nDetails: bnas summary --model <name>",
        table.render()
    )
}

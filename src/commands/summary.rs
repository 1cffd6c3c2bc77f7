//! `bnas summary`: what a network costs, layer by layer (spec §8's glossary).

use bnas_models::{registry, Liveness, NetworkConfig, Summary, Totals};
use clap::Args;
use serde::Serialize;

use crate::format::{bytes, emit, si, thousands, Table};
use crate::model_args::ModelArgs;

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
                emit(&render(&summary))?;
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

fn render(summary: &Summary) -> String {
    let c = &summary.config;
    let mut table = Table::new(
        &[
            "layer",
            "op",
            "precision",
            "output",
            "params",
            "1-bit",
            "packed",
            "activation",
            "float MACs",
            "binary MACs",
            "status",
        ],
        4,
    );
    for row in &summary.layers {
        let status = match row.liveness {
            Liveness::Live => "",
            Liveness::Zero => "pruned (zero)",
            Liveness::Dead => "pruned (dead)",
        };
        let count = |n: u64| if n == 0 { String::new() } else { thousands(n) };
        table.row(vec![
            row.name.clone(),
            row.op.clone(),
            row.precision.label().to_owned(),
            row.output.to_string(),
            count(row.params),
            count(row.binary_params),
            if row.params == 0 { String::new() } else { bytes(row.packed_bytes) },
            if row.activation_bytes == 0 { String::new() } else { bytes(row.activation_bytes) },
            count(row.float_macs),
            count(row.binary_macs),
            status.to_owned(),
        ]);
    }
    let t = &summary.totals;
    let pruned = summary.layers.iter().filter(|r| r.pruned).count();
    let totals = [
        (
            "Params",
            format!(
                "{} ({} binary weights; plus {} non-trainable BN statistics)",
                thousands(t.params),
                thousands(t.binary_params),
                thousands(t.buffers)
            ),
        ),
        ("Size fp32", format!("{} (live layers' parameters at 4 bytes)", bytes(t.fp32_bytes))),
        (
            "Size packed",
            format!(
                "{} (1 bit per binary weight, fp32 for the rest; {:.1}x smaller)",
                bytes(t.packed_bytes),
                t.compression
            ),
        ),
        ("Float MACs", format!("{} ({})", thousands(t.float_macs), si(t.float_macs as f64))),
        ("Binary MACs", format!("{} ({})", thousands(t.binary_macs), si(t.binary_macs as f64))),
        (
            "OPs",
            format!(
                "{} (float MACs + binary MACs / 64; {:.1}% of it float)",
                si(t.ops),
                100.0 * t.float_macs as f64 / t.ops.max(1.0)
            ),
        ),
        ("Peak activations", format!("{} (one sample, sequential schedule)", bytes(t.peak_activation_bytes))),
        (
            "Pruned layers",
            format!("{pruned} of {} (their rows' counts are not in these totals)", summary.layers.len()),
        ),
    ];
    let width = totals.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let totals: Vec<String> = totals.iter().map(|(k, v)| format!("{k:<width$}  {v}")).collect();
    let compat = if c.reference_compat { ", reference-compat" } else { "" };
    format!(
        "{}: {} topology, {} cells, C={}, {} classes, input {}{compat}\n{}\n\n{}\n\n{}",
        c.name,
        c.topology,
        c.layers,
        c.channels,
        c.classes,
        c.input,
        c.genotype,
        table.render(),
        totals.join("\n"),
    )
}

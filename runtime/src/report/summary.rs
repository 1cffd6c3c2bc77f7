//! The per-layer summary of a network: shapes, precision, parameters, sizes and cost.

use bnas_models::{Liveness, Summary};

use super::{bytes, si, thousands, Table};

/// The per-layer table of a network and its totals (`bnas summary --model`, `bnas-run summary`).
pub fn render_summary(summary: &Summary) -> String {
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

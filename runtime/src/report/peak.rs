//! The peak report (`bnas-run peak`, `bnas bench`) as text.

use super::{si, Table};
use crate::kernels::peak::PeakReport;

/// The clock, then one table per kind of work: XOR+popcount and FP32 FMA.
pub fn render_peak(report: &PeakReport) -> String {
    let mut binary = Table::new(&["isa", "loop body", "binary MAC/s", "bits/cycle", "instr/cycle"], 2);
    for p in &report.popcount {
        binary.row(vec![
            p.isa.clone(),
            p.loop_body.to_owned(),
            si(p.binary_macs_per_s),
            format!("{:.1}", p.bits_per_cycle),
            format!("{:.2}", p.instructions_per_cycle),
        ]);
    }
    let mut float = Table::new(&["isa", "FP32 FLOP/s", "FLOP/cycle", "FMA/cycle"], 1);
    for p in &report.fma {
        float.row(vec![
            p.isa.clone(),
            si(p.flops),
            format!("{:.1}", p.flops_per_cycle),
            format!("{:.2}", p.fma_per_cycle),
        ]);
    }
    let stated =
        report.stated_clock_hz.map_or(String::new(), |hz| format!(" (/proc/cpuinfo: {:.2} GHz)", hz / 1e9));
    format!(
            "{}: one core at {:.2} GHz measured{stated}\n\nXOR+popcount (1 bit = 1 binary MAC):\n{}\n\nFP32 FMA:\n{}",
            report.cpu.as_deref().unwrap_or("unknown CPU"),
            report.clock_hz / 1e9,
            binary.render(),
            float.render()
        )
}

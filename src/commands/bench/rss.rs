//! Peak resident memory of one engine. One process cannot attribute its memory to the engines
//! it holds, so each is measured in a child: the `bnas` binary re-executed with the hidden
//! `bench --rss-child <engine>` flag, which loads and runs only that engine and prints its
//! `VmHWM`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::engines::{EngineKind, ModelFiles};

/// What a child prints on stdout.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildReport {
    /// Its peak resident set size.
    pub peak_rss_bytes: u64,
}

/// This process's peak resident set size (`VmHWM` of `/proc/self/status`, Linux).
pub fn peak_rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (peak memory is measured on Linux only)")?;
    let line =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).context("no VmHWM in /proc/self/status")?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().context("VmHWM is not a number")?;
    Ok(kib * 1024)
}

/// The run a child repeats: the parent's flags.
#[derive(Debug, Clone, Copy)]
pub struct ChildRun {
    /// Worker threads.
    pub threads: usize,
    /// Samples per pass.
    pub batch: usize,
    /// Timed passes.
    pub iters: usize,
    /// Untimed passes.
    pub warmup: usize,
}

/// Runs `kind` alone in a child process on `files` and returns its peak resident memory.
pub fn measure_in_child(kind: EngineKind, files: ModelFiles<'_>, run: ChildRun) -> anyhow::Result<u64> {
    let exe = std::env::current_exe().context("locating the bnas binary")?;
    let arg = |p: &Path| p.as_os_str().to_owned();
    let output = Command::new(&exe)
        .arg("bench")
        .arg("--model")
        .arg(arg(files.bnas))
        .args(["--rss-child", kind.name(), "--child-onnx"])
        .arg(arg(files.onnx))
        .args(["--threads", &run.threads.to_string(), "--batch", &run.batch.to_string()])
        .args(["--iters", &run.iters.to_string(), "--warmup", &run.warmup.to_string()])
        .output()
        .with_context(|| format!("starting {}", exe.display()))?;
    if !output.status.success() {
        bail!(
            "measuring the memory of {} in a child process failed ({}): {}",
            kind.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let report: ChildReport = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the {} child's report", kind.name()))?;
    Ok(report.peak_rss_bytes)
}

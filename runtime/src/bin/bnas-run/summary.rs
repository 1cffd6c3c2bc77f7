//! `bnas-run summary`: what a `.bnas` file holds, or what a named network costs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use bnas_models::{Overrides, Summary};
use bnas_runtime::cli::ModelSource;
use bnas_runtime::format::{BnasFile, Metadata};
use bnas_runtime::report::{bytes, emit, render_summary};
use clap::Args;
use serde::Serialize;

/// Flags of `bnas-run summary`.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// A `.bnas` model file, or a network (named model, built-in cell or genotype file), which
    /// gets the layer table of `bnas summary`.
    #[arg(long, short)]
    model: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct FileReport<'a> {
    path: String,
    file_bytes: u64,
    tensors: usize,
    tensor_bytes_by_dtype: BTreeMap<String, u64>,
    metadata: &'a Metadata,
    summary: Summary,
}

/// Runs the command.
pub fn run(args: &SummaryArgs) -> anyhow::Result<()> {
    let path = match ModelSource::parse(&args.model) {
        ModelSource::File(path) => path,
        network @ ModelSource::Network(_) => {
            let summary = Summary::of(&network.config(&Overrides::default())?.spec()?);
            let text =
                if args.json { serde_json::to_string_pretty(&summary)? } else { render_summary(&summary) };
            return Ok(emit(&text)?);
        }
    };
    file_summary(&path, args.json)
}

/// The report on one `.bnas` file.
fn file_summary(path: &Path, json: bool) -> anyhow::Result<()> {
    let file = BnasFile::open(path).with_context(|| format!("reading {}", path.display()))?;
    let metadata = file.metadata();
    let spec = metadata.config.spec()?;
    let mut by_dtype = BTreeMap::new();
    for tensor in file.tensors() {
        *by_dtype.entry(format!("{:?}", tensor.dtype).to_lowercase()).or_insert(0) += tensor.byte_len();
    }
    let report = FileReport {
        path: path.display().to_string(),
        file_bytes: std::fs::metadata(path)?.len(),
        tensors: file.tensors().len(),
        tensor_bytes_by_dtype: by_dtype,
        metadata,
        summary: Summary::of(&spec),
    };
    if json {
        return Ok(emit(&serde_json::to_string_pretty(&report)?)?);
    }
    let p = &metadata.preprocess;
    let stored: Vec<String> =
        report.tensor_bytes_by_dtype.iter().map(|(d, b)| format!("{d} {}", bytes(*b))).collect();
    let lines = [
        format!(
            "file        {} ({}, {} tensors: {})",
            report.path,
            bytes(report.file_bytes),
            report.tensors,
            stored.join(", ")
        ),
        format!("provenance  {} from {}", metadata.provenance.producer, metadata.provenance.source),
        format!(
            "input       {:?} {}x{}, resize {:?}, mean {:?}, std {:?}",
            p.color, p.height, p.width, p.resize, p.mean, p.std
        ),
        format!("classes     {}", metadata.class_names.join(", ")),
    ];
    emit(&format!("{}\n\n{}", lines.join("\n"), render_summary(&report.summary)))?;
    Ok(())
}

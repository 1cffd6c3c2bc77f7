//! `bnas export`: a training checkpoint, a reference PyTorch checkpoint or an existing `.bnas`
//! to the bit-packed `.bnas` deployment file and to the float-equivalent ONNX model. It uses the
//! `bnas-export` crate, which reads checkpoints without libtorch.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bnas_models::Summary;
use bnas_runtime::cli::ModelArgs;
use bnas_runtime::format::{BnasFile, FloatStorage};
use bnas_runtime::report::{bytes, emit, Table};
use clap::{ArgGroup, Args};
use serde::Serialize;

/// Flags of `bnas export`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["checkpoint", "from_reference", "from_bnas"])))]
pub struct ExportArgs {
    /// A checkpoint directory written by `bnas train` (model.json, weights.safetensors,
    /// state.json).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// A checkpoint of the reference implementation (torch.save, legacy or zip format); the
    /// network comes from --model and the network flags, built in reference-compat mode.
    #[arg(long)]
    from_reference: Option<PathBuf>,
    /// An existing `.bnas` file, to write its ONNX model.
    #[arg(long)]
    from_bnas: Option<PathBuf>,
    /// The network of a reference checkpoint.
    #[command(flatten)]
    model: Option<ModelArgs>,
    /// Where to write the `.bnas` file [default: the source's path with the extension .bnas].
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Also write the float-equivalent ONNX model here.
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Compact file: float tensors (weights, BatchNorm, scales) as fp16, computed in fp32, and
    /// binary filters bit-dense (re-laid out on load).
    #[arg(long)]
    fp16: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// What was written.
#[derive(Debug, Serialize)]
struct ExportReport {
    source: String,
    model: String,
    params: u64,
    float_macs: u64,
    binary_macs: u64,
    ops: f64,
    /// Bytes of the live layers' learnable parameters in fp32.
    fp32_param_bytes: u64,
    bnas: Option<Written>,
    onnx: Option<Written>,
    /// Test top-1 recorded by the trainer, if any.
    top1: Option<f64>,
}

/// One written file.
#[derive(Debug, Serialize)]
struct Written {
    path: String,
    bytes: u64,
}

/// `dir/name` or `file.pt` with the extension `.bnas`.
fn default_out(source: &Path) -> PathBuf {
    source.with_extension("bnas")
}

/// Runs the command.
pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    if args.model.is_some() && args.from_reference.is_none() {
        bail!(
            "--model and the network flags describe a reference checkpoint: use them with --from-reference"
        );
    }
    let storage = if args.fp16 { FloatStorage::F16 } else { FloatStorage::F32 };
    let (source, file, bnas) = if let Some(path) = &args.from_bnas {
        if args.out.is_some() || args.fp16 {
            bail!("--from-bnas writes ONNX only: --out and --fp16 do not apply");
        }
        if args.onnx.is_none() {
            bail!("--from-bnas needs --onnx: there is nothing else to write");
        }
        let file = BnasFile::open(path).with_context(|| format!("reading {}", path.display()))?;
        (path.clone(), file, None)
    } else {
        let (source, writer) = if let Some(dir) = &args.checkpoint {
            let writer = bnas_export::from_checkpoint(dir, storage)
                .with_context(|| format!("exporting checkpoint {}", dir.display()))?;
            (dir.clone(), writer)
        } else {
            let path = args.from_reference.as_ref().expect("clap requires one source");
            let Some(model) = &args.model else {
                bail!(
                    "--from-reference needs --model (and the network flags the checkpoint was trained with)"
                );
            };
            let writer = bnas_export::from_reference(path, &model.config()?, storage)
                .with_context(|| format!("importing reference checkpoint {}", path.display()))?;
            (path.clone(), writer)
        };
        let out = args.out.clone().unwrap_or_else(|| default_out(&source));
        let bytes = writer.to_bytes();
        writer.write(&out).with_context(|| format!("writing {}", out.display()))?;
        let file = BnasFile::from_bytes(bytes).context("re-reading the written model")?;
        let size = std::fs::metadata(&out).with_context(|| format!("reading {}", out.display()))?.len();
        (source, file, Some(Written { path: out.display().to_string(), bytes: size }))
    };
    let onnx = match &args.onnx {
        Some(path) => {
            let size = bnas_export::onnx::write_onnx(&file, path)
                .with_context(|| format!("writing ONNX {}", path.display()))?;
            Some(Written { path: path.display().to_string(), bytes: size })
        }
        None => None,
    };
    let metadata = file.metadata();
    let totals = Summary::of(&metadata.config.spec()?).totals;
    let report = ExportReport {
        source: source.display().to_string(),
        model: metadata.config.name.clone(),
        params: totals.params,
        float_macs: totals.float_macs,
        binary_macs: totals.binary_macs,
        ops: totals.ops,
        fp32_param_bytes: totals.fp32_bytes,
        bnas,
        onnx,
        top1: metadata.training.as_ref().and_then(|t| t.top1),
    };
    if args.json {
        return Ok(emit(&serde_json::to_string_pretty(&report)?)?);
    }
    let mut table = Table::new(&["file", "bytes", "fp32 params / file"], 1);
    for written in [&report.bnas, &report.onnx].into_iter().flatten() {
        table.row(vec![
            written.path.clone(),
            bytes(written.bytes),
            format!("{:.2}x", report.fp32_param_bytes as f64 / written.bytes as f64),
        ]);
    }
    let accuracy =
        report.top1.map_or(String::new(), |t| format!(", trained to {:.2}% test top-1", 100.0 * t));
    emit(&format!(
        "{} from {}: {} params ({} in fp32){accuracy}\n\n{}",
        report.model,
        report.source,
        report.params,
        bytes(report.fp32_param_bytes),
        table.render()
    ))?;
    Ok(())
}

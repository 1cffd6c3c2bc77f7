//! `bnas-run predict`: classify image files.

use std::path::{Path, PathBuf};

use bnas_runtime::data::decode_image;
use bnas_runtime::report::{emit, ImagePrediction, Table, DEFAULT_TOP_K};
use bnas_runtime::{Model, Prediction};
use clap::Args;

use crate::RunArgs;

/// Flags of `bnas-run predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Images (PNG or JPEG); each is converted, resized and normalized as the model says.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = DEFAULT_TOP_K)]
    top_k: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn classify(model: &Model, path: &Path, k: usize) -> anyhow::Result<Vec<Prediction>> {
    let image = decode_image(path)?;
    Ok(model.predict(&image, k)?)
}

/// Runs the command. Every file is tried; the exit status is an error if any failed.
pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let model = args.run.load("predict")?;
    let results: Vec<ImagePrediction> = args
        .images
        .iter()
        .map(|path| {
            let file = Some(path.display().to_string());
            match classify(&model, path, args.top_k) {
                Ok(top_k) => ImagePrediction { file, top_k, error: None },
                Err(e) => ImagePrediction { file, top_k: Vec::new(), error: Some(format!("{e:#}")) },
            }
        })
        .collect();
    if args.json {
        emit(&serde_json::to_string_pretty(&results)?)?;
    } else {
        let mut table = Table::new(&["file", "rank", "class", "label", "probability"], 4);
        for result in &results {
            let name = result.file.as_deref().unwrap_or_default();
            for (rank, p) in result.top_k.iter().enumerate() {
                let file = if rank == 0 { name.to_owned() } else { String::new() };
                let cells = [file, (rank + 1).to_string(), p.index.to_string(), p.label.clone()];
                table.row(cells.into_iter().chain([format!("{:.4}", p.score)]).collect());
            }
            match &result.error {
                // I/O and decoding errors already name the file.
                Some(error) if error.contains(name) => eprintln!("error: {error}"),
                Some(error) => eprintln!("error: {name}: {error}"),
                None => {}
            }
        }
        if results.iter().any(|r| r.error.is_none()) {
            emit(&table.render())?;
        }
    }
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} images could not be classified", results.len());
    }
    Ok(())
}

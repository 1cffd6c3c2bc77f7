//! Architecture search (reference §4): first-order DARTS-style alternation on the two halves of the
//! training split (SGD on the weights with one half, Adam on the alphas with the other), the
//! entropy diversity regularizer, genotype derivation and best-epoch selection.
//!
//! Two of the reference's quirks are not reproduced (reference §4): its entropy counts one
//! reduction edge 14 times (here every edge counts once) and its gamma step divides the first
//! edge's row (here the Zeroise column). Its search also leaves the last 18 MixedOp convs with
//! float weights; here every MixedOp conv is binarized. The genotype kept for an epoch is the
//! one derived after that epoch's updates, the alphas its validation accuracy measured.

pub mod derive;
pub mod supernet;

use std::path::PathBuf;
use std::time::Instant;

use bnas_models::{CellKind, Genotype};
use bnas_runtime::data::{self, Split};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::augment::Augment;
use crate::binary::WeightBinarizer;
use crate::checkpoint::write_json;
use crate::error::{Result, TrainerError};
use crate::eval::hits;
use crate::loader::{derive_seed, shuffled, Loader, Stream};
use crate::metrics::MetricsLog;
use crate::optim::{Adam, Sgd};
use crate::schedule::Schedule;
use crate::train::{loss, progress_bar, DataSource};
use derive::{derive_cell, mean_entropy, OPS, SUPERNET_EDGES};
use supernet::{Supernet, SupernetShape};

/// Search hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// Supernet cells.
    pub layers: usize,
    /// Supernet initial channels.
    pub channels: usize,
    /// Epochs.
    pub epochs: usize,
    /// Examples per step (from each half).
    pub batch: usize,
    /// Weights: initial learning rate (cosine to `lr_min`).
    pub lr: f64,
    /// Weights: final learning rate.
    pub lr_min: f64,
    /// Weights: momentum.
    pub momentum: f64,
    /// Weights: weight decay.
    pub weight_decay: f64,
    /// Alphas: Adam learning rate.
    pub arch_lr: f64,
    /// Alphas: weight decay.
    pub arch_weight_decay: f64,
    /// Diversity regularizer weight lambda.
    pub lambda: f64,
    /// Diversity regularizer decay tau, in epochs.
    pub tau: f64,
    /// Zeroise divisor of the transferable genotype.
    pub gamma: f64,
    /// Use the first N training examples (split in two halves); all when absent.
    pub train_limit: Option<usize>,
    /// Augment the weight half's images.
    pub augment: bool,
    /// Seed.
    pub seed: u64,
}

impl SearchSettings {
    /// The spec's settings: 8 cells, C = 16, batch 64, 50 epochs, the whole training split,
    /// SGD 0.025 -> 0.001 (momentum 0.9, wd 3e-4), Adam 3e-4 (wd 1e-3), lambda 1, tau 7.7,
    /// gamma 3.
    pub fn paper() -> SearchSettings {
        SearchSettings {
            layers: 8,
            channels: 16,
            epochs: 50,
            batch: 64,
            lr: 0.025,
            lr_min: 0.001,
            momentum: 0.9,
            weight_decay: 3e-4,
            arch_lr: 3e-4,
            arch_weight_decay: 1e-3,
            lambda: 1.0,
            tau: 7.7,
            gamma: 3.0,
            train_limit: None,
            augment: true,
            seed: 2,
        }
    }

    /// Small enough for Fashion-MNIST on 2 CPU cores in minutes: 5 cells, C = 16, batch 32,
    /// 6 epochs on 1,600 examples (800 per half; 15-25 minutes), tau scaled to the epochs
    /// (7.7 * 6 / 50), and the alphas' learning rate raised to 3e-3 so that they move
    /// measurably in so few steps.
    pub fn reduced() -> SearchSettings {
        let epochs = 6;
        SearchSettings {
            layers: 5,
            // 16, not fewer: libtorch's CPU convs take a slow path for the backward of dilated
            // convs with fewer channels (8 channels is 8x slower than 16).
            channels: 16,
            epochs,
            batch: 32,
            arch_lr: 3e-3,
            tau: 7.7 * epochs as f64 / 50.0,
            train_limit: Some(1600),
            ..SearchSettings::paper()
        }
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |field, reason: &str| Err(TrainerError::InvalidSetting { field, reason: reason.to_owned() });
        if self.layers < 3 {
            return invalid("--layers", "the supernet needs at least 3 cells");
        }
        if self.channels == 0 || self.epochs == 0 || self.batch == 0 {
            return invalid("--channels/--epochs/--batch", "must be at least 1");
        }
        if [self.tau, self.gamma, self.lr, self.arch_lr].iter().any(|v| v.is_nan() || *v <= 0.0) {
            return invalid("--tau/--gamma/--lr/--arch-lr", "must be positive");
        }
        if self.train_limit.is_some_and(|n| n < 2) {
            return invalid("--train-limit", "needs at least 2 examples (one per half)");
        }
        Ok(())
    }
}

/// One epoch of the search, as logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchEpoch {
    /// Always "epoch".
    pub event: &'static str,
    /// 0-based epoch.
    pub epoch: usize,
    /// Weights' learning rate.
    pub lr: f64,
    /// Weight-half training loss.
    pub train_loss: f64,
    /// Weight-half training top-1.
    pub train_top1: f64,
    /// Alpha-half (validation) top-1 after the epoch.
    pub valid_top1: f64,
    /// Mean entropy of the softmaxed alphas over all 28 edges (ln 7 = 1.946 is uniform).
    pub alpha_entropy: f64,
    /// Mean |alpha - alpha at start| over all entries.
    pub alpha_drift: f64,
    /// Regularizer factor lambda * exp(-epoch / tau).
    pub regularizer: f64,
    /// The genotype derived after the epoch (reference notation).
    pub genotype: String,
    /// Seconds.
    pub seconds: f64,
}

/// What a search produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchSummary {
    /// The best epoch's genotype.
    pub genotype: Genotype,
    /// Its transferable (gamma) genotype.
    pub transfer_genotype: Genotype,
    /// The best epoch (0-based).
    pub best_epoch: usize,
    /// Its validation top-1.
    pub best_valid_top1: f64,
    /// Every epoch.
    pub epochs: Vec<SearchEpoch>,
    /// Output directory.
    pub out: PathBuf,
    /// Total seconds.
    pub seconds: f64,
}

/// The alphas' softmax as rows.
fn rows(alphas: &Tensor) -> Result<Vec<[f32; OPS]>> {
    let probs = alphas.softmax(-1, Kind::Float).to_device(Device::Cpu);
    let flat = Vec::<f32>::try_from(probs.flatten(0, -1))?;
    Ok(flat.chunks_exact(OPS).map(|c| std::array::from_fn(|k| c[k])).collect())
}

/// Derives the (plain, gamma) genotypes from the alphas.
pub fn genotypes(normal: &Tensor, reduce: &Tensor, gamma: f32) -> Result<(Genotype, Genotype)> {
    let (n, r) = (rows(normal)?, rows(reduce)?);
    let plain = Genotype::new(derive_cell(&n, 1.0), derive_cell(&r, 1.0))?;
    let transfer = Genotype::new(derive_cell(&n, gamma), derive_cell(&r, gamma))?;
    Ok((plain, transfer))
}

/// Runs a search on `data`, writing into `out`: `genotype.json` and `genotype.txt` (best epoch,
/// JSON and reference notation), `genotype_transfer.{json,txt}` (gamma), `alphas.json` and the
/// per-epoch log `search.jsonl`.
pub fn search(
    settings: &SearchSettings,
    data: &DataSource,
    out: &std::path::Path,
    device: Device,
    progress: bool,
) -> Result<SearchSummary> {
    settings.validate()?;
    let s = settings;
    let dataset = data::open(data.kind, &data.root, Split::Train)?;
    let preprocess = data.kind.preprocess();
    let total = s.train_limit.unwrap_or(usize::MAX).min(dataset.len());
    if total < 2 {
        return Err(TrainerError::InvalidSetting {
            field: "--data",
            reason: format!(
                "{} holds {} training examples, too few to halve",
                data.root.display(),
                dataset.len()
            ),
        });
    }
    let half = total / 2;
    let weight_half: Vec<usize> = (0..half).collect();
    let arch_half: Vec<usize> = (half..total).collect();
    std::fs::create_dir_all(out).map_err(TrainerError::io(out))?;
    tch::manual_seed((derive_seed(s.seed, 0, 0) >> 1) as i64);
    let vs = nn::VarStore::new(device);
    let shape = SupernetShape {
        input_channels: preprocess.input_shape().channels,
        layers: s.layers,
        channels: s.channels,
        classes: dataset.class_names().len(),
    };
    let net = Supernet::new(&vs.root(), shape);
    let arch_vs = nn::VarStore::new(device);
    let init = |name: &str| {
        arch_vs.root().var(
            name,
            &[SUPERNET_EDGES as i64, OPS as i64],
            nn::Init::Randn { mean: 0.0, stdev: 1e-3 },
        )
    };
    let (alphas_normal, alphas_reduce) = (init("alphas_normal"), init("alphas_reduce"));
    let initial = Tensor::cat(&[alphas_normal.detach(), alphas_reduce.detach()], 0).copy();
    let weight_params: Vec<(String, Tensor)> =
        vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let mut weights_opt = Sgd::new(sorted(weight_params), s.weight_decay);
    let mut arch_opt = Adam::new(
        vec![
            ("alphas_normal".to_owned(), alphas_normal.shallow_clone()),
            ("alphas_reduce".to_owned(), alphas_reduce.shallow_clone()),
        ],
        (0.5, 0.999),
        s.arch_weight_decay,
    );
    let mut binarizer = WeightBinarizer::new(net.binary_weights());
    let augment = if s.augment { Augment::for_dataset(data.kind) } else { Augment::None };
    let weight_loader = Loader::new(dataset.as_ref(), preprocess.clone(), augment, s.seed, device);
    let arch_loader = Loader::new(dataset.as_ref(), preprocess.clone(), Augment::None, s.seed, device);
    let steps_per_epoch = weight_half.len().div_ceil(s.batch);
    let schedule =
        Schedule::Cosine { total_steps: s.epochs, max_lr: s.lr, min_lr: s.lr_min, momentum: s.momentum };
    let mut log = MetricsLog::append(&out.join("search.jsonl"))?;
    let started = Instant::now();
    let mut epochs = Vec::with_capacity(s.epochs);
    let mut best: Option<(usize, f64, Genotype, Genotype)> = None;
    for epoch in 0..s.epochs {
        let epoch_started = Instant::now();
        let (lr, momentum) = schedule.at(epoch);
        let regularizer = s.lambda * (-(epoch as f64) / s.tau).exp();
        let order = shuffled(&weight_half, s.seed, Stream::Shuffle, epoch);
        let arch_order = shuffled(&arch_half, s.seed, Stream::SearchShuffle, epoch);
        let bar = progress_bar(
            progress,
            steps_per_epoch as u64,
            &format!("search epoch {}/{}", epoch + 1, s.epochs),
        );
        let (mut loss_sum, mut top1, mut seen) = (0.0, 0usize, 0usize);
        for (step, chunk) in order.chunks(s.batch).enumerate() {
            binarizer.binarize_for_training();
            // Architecture step on the other half.
            let start = (step * s.batch) % arch_order.len();
            let arch_chunk: Vec<usize> = (0..s.batch.min(arch_order.len()))
                .map(|i| arch_order[(start + i) % arch_order.len()])
                .collect();
            let (x_arch, y_arch) = arch_loader.batch(&arch_chunk, None)?;
            arch_opt.zero_grad();
            let (pn, pr) = (alphas_normal.softmax(-1, Kind::Float), alphas_reduce.softmax(-1, Kind::Float));
            let logits = net.forward(&x_arch, &pn, &pr, true)?;
            let entropy = |p: &Tensor| -(p * p.log()).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
            let h = Tensor::cat(&[entropy(&pn), entropy(&pr)], 0).mean(Kind::Float);
            (loss(&logits, &y_arch, 0.0) - h * regularizer).backward();
            arch_opt.step(s.arch_lr);
            // Weight step on this half.
            let (x, y) = weight_loader.batch(chunk, Some(epoch))?;
            weights_opt.zero_grad();
            let (pn, pr) = (
                alphas_normal.softmax(-1, Kind::Float).detach(),
                alphas_reduce.softmax(-1, Kind::Float).detach(),
            );
            let logits = net.forward(&x, &pn, &pr, true)?;
            let loss_t = loss(&logits, &y, 0.0);
            loss_t.backward();
            binarizer.restore(true);
            weights_opt.step(lr, momentum);
            let value = loss_t.double_value(&[]);
            if !value.is_finite() {
                return Err(TrainerError::Diverged { value, epoch, step: epoch * steps_per_epoch + step });
            }
            loss_sum += value * chunk.len() as f64;
            top1 += hits(&logits.detach(), &y).0;
            seen += chunk.len();
            bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let valid_top1 = validate(
            &net,
            &mut binarizer,
            &arch_loader,
            &arch_half,
            s.batch,
            &alphas_normal,
            &alphas_reduce,
        )?;
        let (genotype, transfer) = genotypes(&alphas_normal, &alphas_reduce, s.gamma as f32)?;
        let all = Tensor::cat(&[alphas_normal.detach(), alphas_reduce.detach()], 0);
        let probs: Vec<[f32; OPS]> = [rows(&alphas_normal)?, rows(&alphas_reduce)?].concat();
        let record = SearchEpoch {
            event: "epoch",
            epoch,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_top1: top1 as f64 / seen.max(1) as f64,
            valid_top1,
            alpha_entropy: mean_entropy(&probs),
            alpha_drift: (&all - &initial).abs().mean(Kind::Float).double_value(&[]),
            regularizer,
            genotype: genotype.to_reference(),
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        log.write(&record)?;
        if progress {
            eprintln!(
                "search epoch {}/{}: train loss {:.4} top-1 {:.2}% | valid top-1 {:.2}% | alpha entropy {:.4} drift {:.2e} | {:.0}s\n  {}",
                epoch + 1,
                s.epochs,
                record.train_loss,
                100.0 * record.train_top1,
                100.0 * valid_top1,
                record.alpha_entropy,
                record.alpha_drift,
                record.seconds,
                record.genotype
            );
        }
        if best.as_ref().is_none_or(|(_, acc, _, _)| valid_top1 > *acc) {
            best = Some((epoch, valid_top1, genotype, transfer));
        }
        epochs.push(record);
    }
    let Some((best_epoch, best_valid_top1, genotype, transfer_genotype)) = best else {
        return Err(TrainerError::InvalidSetting {
            field: "--epochs",
            reason: "must be at least 1".to_owned(),
        });
    };
    write_genotype(out, "genotype", &genotype)?;
    write_genotype(out, "genotype_transfer", &transfer_genotype)?;
    write_json(
        &out.join("alphas.json"),
        &serde_json::json!({
            "ops": bnas_models::OpKind::ALL.map(|op| op.name()),
            "normal": rows(&alphas_normal)?,
            "reduce": rows(&alphas_reduce)?,
            "cells": [CellKind::Normal.to_string(), CellKind::Reduce.to_string()],
        }),
    )?;
    Ok(SearchSummary {
        genotype,
        transfer_genotype,
        best_epoch,
        best_valid_top1,
        epochs,
        out: out.to_owned(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn sorted(mut params: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

fn write_genotype(out: &std::path::Path, stem: &str, genotype: &Genotype) -> Result<()> {
    let json = out.join(format!("{stem}.json"));
    bnas_runtime::write_atomic(&json, format!("{}\n", genotype.to_json()).as_bytes())
        .map_err(TrainerError::io(&json))?;
    let txt = out.join(format!("{stem}.txt"));
    bnas_runtime::write_atomic(&txt, format!("{}\n", genotype.to_reference()).as_bytes())
        .map_err(TrainerError::io(&txt))
}

/// Top-1 on the alpha half with binarized weights and running statistics.
fn validate(
    net: &Supernet,
    binarizer: &mut WeightBinarizer,
    loader: &Loader,
    indices: &[usize],
    batch: usize,
    normal: &Tensor,
    reduce: &Tensor,
) -> Result<f64> {
    binarizer.binarize_for_inference();
    let result = tch::no_grad(|| -> Result<f64> {
        let (pn, pr) = (normal.softmax(-1, Kind::Float), reduce.softmax(-1, Kind::Float));
        let mut correct = 0;
        for chunk in indices.chunks(batch.max(1)) {
            let (x, y) = loader.batch(chunk, None)?;
            correct += hits(&net.forward(&x, &pn, &pr, false)?, &y).0;
        }
        Ok(correct as f64 / indices.len().max(1) as f64)
    });
    binarizer.restore(false);
    result
}

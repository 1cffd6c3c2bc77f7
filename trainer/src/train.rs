//! Training from scratch (reference §5): SGD with momentum on the latent weights, weight
//! binarization around each step, one-cycle or cosine-restart schedules, label smoothing,
//! gradient clipping, drop-path and weight decay; evaluation each epoch; a checkpoint directory
//! after each epoch; exact resumption.
//!
//! All randomness after initialization (epoch order, augmentation, drop-path masks) is drawn
//! from seeds derived from (seed, epoch or step), so the run state is the seed and the step.

use std::path::PathBuf;
use std::time::Instant;

use bnas_models::NetworkConfig;
use bnas_runtime::data::{self, DatasetKind, Preprocess, Split};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::augment::Augment;
use crate::binary::WeightBinarizer;
use crate::checkpoint::{self, DatasetInfo, ModelCard};
use crate::error::{Result, TrainerError};
use crate::eval::{evaluate, hits};
use crate::loader::{derive_seed, shuffled, Loader, Stream};
use crate::metrics::MetricsLog;
use crate::network::{DropPath, Network};
use crate::optim::Sgd;
use crate::schedule::Schedule;

/// Which learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleKind {
    /// CIFAR-style one-cycle from `0.05 * lr` to `lr` and back, then annihilation.
    OneCycle,
    /// ImageNet-style cosine with warm restarts every `period_epochs`.
    CosineRestarts {
        /// Epochs per period.
        period_epochs: usize,
    },
}

/// The hyperparameters of a training run (stored in `state.json`; a resumed run keeps them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Epochs in the whole run (the schedule spans them all).
    pub epochs: usize,
    /// Examples per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Momentum for schedules that do not set it (cosine restarts).
    pub momentum: f64,
    /// The schedule.
    pub schedule: ScheduleKind,
    /// Label smoothing epsilon (0 for plain cross-entropy).
    pub label_smoothing: f64,
    /// Clip the gradient's global L2 norm to this.
    pub grad_clip: Option<f64>,
    /// Final drop-path probability (it grows linearly from 0 over the epochs).
    pub drop_path: f64,
    /// Seed of initialization, order, augmentation and drop-path.
    pub seed: u64,
    /// Train on the first N training examples only.
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test examples only.
    pub test_limit: Option<usize>,
    /// Augment training images (reference §5 for the data set).
    pub augment: bool,
    /// Log a step record every N steps (0: none).
    pub log_every: usize,
}

impl TrainSettings {
    /// The reference's CIFAR-10 settings (reference §5): one-cycle to 0.05, batch 256, 600 epochs, wd 3e-6,
    /// drop-path 0.2, no label smoothing or clipping.
    pub fn cifar() -> TrainSettings {
        TrainSettings {
            epochs: 600,
            batch: 256,
            lr: 0.05,
            weight_decay: 3e-6,
            momentum: 0.9,
            schedule: ScheduleKind::OneCycle,
            label_smoothing: 0.0,
            grad_clip: None,
            drop_path: 0.2,
            seed: 0,
            train_limit: None,
            test_limit: None,
            augment: true,
            log_every: 50,
        }
    }

    /// The reference's ImageNet settings (reference §5): cosine restarts every 50 epochs, 250 epochs, wd 3e-5,
    /// label smoothing 0.1, clipping at 5, no drop-path.
    pub fn imagenet() -> TrainSettings {
        TrainSettings {
            epochs: 250,
            weight_decay: 3e-5,
            schedule: ScheduleKind::CosineRestarts { period_epochs: 50 },
            label_smoothing: 0.1,
            grad_clip: Some(5.0),
            drop_path: 0.0,
            ..TrainSettings::cifar()
        }
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |field, reason: &str| Err(TrainerError::InvalidSetting { field, reason: reason.to_owned() });
        if self.epochs == 0 {
            return invalid("--epochs", "must be at least 1");
        }
        if self.batch == 0 {
            return invalid("--batch", "must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid("--lr", "must be a positive number");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid("--weight-decay", "must be a non-negative number");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return invalid("--label-smoothing", "must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.drop_path) {
            return invalid("--drop-path", "must be in [0, 1)");
        }
        if self.grad_clip.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return invalid("--grad-clip", "must be a positive number");
        }
        if matches!(self.schedule, ScheduleKind::CosineRestarts { period_epochs: 0 }) {
            return invalid("--restart-period", "must be at least 1 epoch");
        }
        if self.train_limit == Some(0) || self.test_limit == Some(0) {
            return invalid("--train-limit/--test-limit", "must be at least 1");
        }
        Ok(())
    }

    fn schedule(&self, steps_per_epoch: usize) -> Schedule {
        match self.schedule {
            ScheduleKind::OneCycle => Schedule::OneCycle {
                total_steps: self.epochs * steps_per_epoch,
                min_lr: 0.05 * self.lr,
                max_lr: self.lr,
            },
            ScheduleKind::CosineRestarts { period_epochs } => Schedule::CosineRestarts {
                period_steps: period_epochs * steps_per_epoch,
                max_lr: self.lr,
                momentum: self.momentum,
            },
        }
    }
}

/// `state.json`: where a run stands after a completed epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// The schedule, and the (lr, momentum) the next step will use.
    pub schedule: Schedule,
    /// Learning rate of the next step.
    pub next_lr: f64,
    /// Seeds: every random stream is derived from `settings.seed` and the epoch or step, so
    /// the generator state is (seed, epoch, step).
    pub rng: RngState,
    /// The run's hyperparameters.
    pub settings: TrainSettings,
    /// Test top-1 after the last epoch.
    pub top1: f64,
    /// Test top-5 after the last epoch.
    pub top5: f64,
    /// Best test top-1 so far.
    pub best_top1: f64,
    /// Wall time spent training so far, in seconds.
    pub seconds: f64,
}

/// The random state of a run: the seed streams are derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The run seed.
    pub seed: u64,
    /// libtorch's generator was seeded with this before initialization (used once).
    pub init_seed: i64,
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    /// Format.
    pub kind: DatasetKind,
    /// Directory.
    pub root: PathBuf,
}

impl DataSource {
    /// `kind` at `root`, or at its default root.
    pub fn new(kind: DatasetKind, root: Option<PathBuf>) -> Result<DataSource> {
        let root = root.or_else(|| kind.default_root()).ok_or_else(|| TrainerError::InvalidSetting {
            field: "--root",
            reason: format!("required for --data {kind}"),
        })?;
        Ok(DataSource { kind, root })
    }
}

/// How to run: fresh or resumed, where, and how visibly.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Checkpoint directory.
    pub out: PathBuf,
    /// Device.
    pub device: Device,
    /// Stop after this many epochs in this invocation (the schedule still spans all epochs);
    /// continue later with resume.
    pub stop_after: Option<usize>,
    /// Show progress bars.
    pub progress: bool,
}

/// What a run achieved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSummary {
    /// The network's name.
    pub model: String,
    /// Learnable parameters.
    pub params: u64,
    /// Epochs completed (of `epochs`).
    pub epochs_done: usize,
    /// Epochs in the run.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Test examples evaluated each epoch.
    pub test_examples: usize,
    /// Final test top-1.
    pub top1: f64,
    /// Final test top-5.
    pub top5: f64,
    /// Best test top-1.
    pub best_top1: f64,
    /// Total training wall time, seconds.
    pub seconds: f64,
    /// Mean seconds per training step in this invocation (batch loading, forward, backward
    /// and update; evaluation and checkpoints excluded).
    pub seconds_per_step: f64,
    /// Checkpoint directory.
    pub checkpoint: PathBuf,
}

/// A fresh training run of `config` on `data`.
pub fn train(
    config: NetworkConfig,
    settings: TrainSettings,
    data: &DataSource,
    options: &RunOptions,
) -> Result<TrainSummary> {
    settings.validate()?;
    let card = ModelCard::new(
        config,
        data.kind.preprocess(),
        Vec::new(),
        DatasetInfo { kind: data.kind.to_string(), root: data.root.clone() },
    );
    Trainer::start(card, settings, None, options)?.run(options)
}

/// Continues the run whose checkpoint is `options.out`.
pub fn resume(options: &RunOptions) -> Result<TrainSummary> {
    let dir = &options.out;
    let card = checkpoint::load_card(dir)?;
    let state: TrainState = checkpoint::read_json(&dir.join(checkpoint::STATE))?;
    let settings = state.settings.clone();
    Trainer::start(card, settings, Some(state), options)?.run(options)
}

/// One step's loss: cross-entropy with optional label smoothing `eps`:
/// `(1 - eps) * nll + eps * mean over classes of -log p`.
pub fn loss(logits: &Tensor, labels: &Tensor, eps: f64) -> Tensor {
    let log_probs = logits.log_softmax(-1, Kind::Float);
    let nll = log_probs.nll_loss(labels);
    if eps == 0.0 {
        return nll;
    }
    let smooth = -log_probs.mean_dim([1i64].as_slice(), false, Kind::Float).mean(Kind::Float);
    nll * (1.0 - eps) + smooth * eps
}

/// Scales the gradients so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`); returns the norm before clipping.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = params.iter().map(Tensor::grad).filter(Tensor::defined).collect();
        let total: f64 =
            grads.iter().map(|g| g.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[])).sum();
        let norm = total.sqrt();
        let scale = max_norm / (norm + 1e-6);
        if scale < 1.0 {
            for g in &grads {
                let _ = g.shallow_clone().f_mul_scalar_(scale);
            }
        }
        norm
    })
}

struct Trainer {
    card: ModelCard,
    settings: TrainSettings,
    state: Option<TrainState>,
    vs: nn::VarStore,
    network: Network,
    optimizer: Sgd,
    train_set: Box<dyn data::Dataset>,
    test_set: Box<dyn data::Dataset>,
}

impl Trainer {
    fn start(
        mut card: ModelCard,
        settings: TrainSettings,
        state: Option<TrainState>,
        options: &RunOptions,
    ) -> Result<Trainer> {
        let kind: DatasetKind = card.dataset.kind.parse()?;
        let train_set = data::open(kind, &card.dataset.root, Split::Train)?;
        let test_set = data::open(kind, &card.dataset.root, Split::Test)?;
        check_fit(&card.config, &card.preprocess, train_set.class_names().len())?;
        card.class_names = train_set.class_names().to_vec();
        let spec = card.config.spec()?;
        tch::manual_seed(init_seed(settings.seed));
        let vs = nn::VarStore::new(options.device);
        let network = Network::new(&vs.root(), spec);
        let params: Vec<(String, Tensor)> = checkpoint::named_tensors(network.spec(), &vs)
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        let mut optimizer = Sgd::new(params, settings.weight_decay);
        if let Some(state) = &state {
            let variables = checkpoint::named_tensors(network.spec(), &vs);
            checkpoint::load_weights(&options.out, network.spec(), &variables)?;
            optimizer.load_state(&checkpoint::load_optimizer(&options.out, state.step)?)?;
        }
        Ok(Trainer { card, settings, state, vs, network, optimizer, train_set, test_set })
    }

    fn run(mut self, options: &RunOptions) -> Result<TrainSummary> {
        let s = self.settings.clone();
        let train_indices: Vec<usize> =
            (0..s.train_limit.unwrap_or(usize::MAX).min(self.train_set.len())).collect();
        let test_indices: Vec<usize> =
            (0..s.test_limit.unwrap_or(usize::MAX).min(self.test_set.len())).collect();
        if train_indices.is_empty() || test_indices.is_empty() {
            return Err(TrainerError::InvalidSetting {
                field: "--data",
                reason: format!("no examples in {}", self.card.dataset.root.display()),
            });
        }
        let steps_per_epoch = train_indices.len().div_ceil(s.batch);
        let schedule = s.schedule(steps_per_epoch);
        let augment = if s.augment { Augment::for_dataset(self.train_set.kind()) } else { Augment::None };
        let device = options.device;
        let train_loader =
            Loader::new(self.train_set.as_ref(), self.card.preprocess.clone(), augment, s.seed, device);
        let test_loader =
            Loader::new(self.test_set.as_ref(), self.card.preprocess.clone(), Augment::None, s.seed, device);
        let mut binarizer = WeightBinarizer::new(self.network.binary_weights());
        let trainable: Vec<Tensor> = self.vs.trainable_variables();
        let mut state = self.state.take().unwrap_or_else(|| TrainState {
            epochs_done: 0,
            step: 0,
            schedule,
            next_lr: schedule.at(0).0,
            rng: RngState { seed: s.seed, init_seed: init_seed(s.seed) },
            settings: s.clone(),
            top1: 0.0,
            top5: 0.0,
            best_top1: 0.0,
            seconds: 0.0,
        });
        std::fs::create_dir_all(&options.out).map_err(TrainerError::io(&options.out))?;
        let metrics = options.out.join(checkpoint::METRICS);
        // Records written after the checkpoint (by a run that was then interrupted) are
        // dropped, so the log reads as one uninterrupted run.
        MetricsLog::truncate_after(&metrics, state.step)?;
        let mut log = MetricsLog::append(&metrics)?;
        let last_epoch = options.stop_after.map_or(s.epochs, |n| (state.epochs_done + n).min(s.epochs));
        let (mut step_seconds, start_step) = (0.0, state.step);
        for epoch in state.epochs_done..last_epoch {
            let epoch_started = Instant::now();
            let drop_prob = s.drop_path * epoch as f64 / s.epochs as f64;
            let order = shuffled(&train_indices, s.seed, Stream::Shuffle, epoch);
            let bar = progress_bar(
                options.progress,
                steps_per_epoch as u64,
                &format!("epoch {}/{}", epoch + 1, s.epochs),
            );
            let (mut loss_sum, mut top1, mut top5, mut seen) = (0.0, 0usize, 0usize, 0usize);
            for chunk in order.chunks(s.batch) {
                let step_started = Instant::now();
                let (input, labels) = train_loader.batch(chunk, Some(epoch))?;
                let (lr, momentum) = schedule.at(state.step);
                let mut drop =
                    DropPath::new(drop_prob, derive_seed(s.seed, Stream::DropPath as u64, state.step as u64));
                self.optimizer.zero_grad();
                binarizer.binarize_for_training();
                let logits = self.network.forward(&input, true, Some(&mut drop))?;
                let loss_t = loss(&logits, &labels, s.label_smoothing);
                loss_t.backward();
                binarizer.restore(true);
                if let Some(max_norm) = s.grad_clip {
                    clip_grad_norm(&trainable, max_norm);
                }
                self.optimizer.step(lr, momentum);
                let value = loss_t.double_value(&[]);
                if !value.is_finite() {
                    return Err(TrainerError::Diverged { value, epoch, step: state.step });
                }
                let (h1, h5) = hits(&logits.detach(), &labels);
                loss_sum += value * chunk.len() as f64;
                (top1, top5, seen) = (top1 + h1, top5 + h5, seen + chunk.len());
                if s.log_every > 0 && state.step.is_multiple_of(s.log_every) {
                    log.write(&StepRecord {
                        event: "step",
                        epoch,
                        step: state.step,
                        loss: value,
                        lr,
                        momentum,
                    })?;
                }
                state.step += 1;
                bar.set_message(format!(
                    "loss {:.4} top-1 {:.2}%",
                    loss_sum / seen as f64,
                    100.0 * top1 as f64 / seen as f64
                ));
                bar.inc(1);
                step_seconds += step_started.elapsed().as_secs_f64();
            }
            bar.finish_and_clear();
            let eval_bar = progress_bar(options.progress, test_indices.len() as u64, "evaluating");
            let test = evaluate(&self.network, &test_loader, &test_indices, s.batch, |p| {
                eval_bar.inc(p.len() as u64);
                Ok(())
            })?;
            eval_bar.finish_and_clear();
            state.epochs_done = epoch + 1;
            state.next_lr = schedule.at(state.step).0;
            state.top1 = test.top1;
            state.top5 = test.top5;
            state.best_top1 = state.best_top1.max(test.top1);
            state.seconds += epoch_started.elapsed().as_secs_f64();
            let record = EpochRecord {
                event: "epoch",
                epoch,
                step: state.step,
                train_loss: loss_sum / seen.max(1) as f64,
                train_top1: top1 as f64 / seen.max(1) as f64,
                train_top5: top5 as f64 / seen.max(1) as f64,
                test_loss: test.loss,
                top1: test.top1,
                top5: test.top5,
                lr: schedule.at(state.step.saturating_sub(1)).0,
                drop_path: drop_prob,
                seconds: epoch_started.elapsed().as_secs_f64(),
            };
            log.write(&record)?;
            if options.progress {
                eprintln!(
                    "epoch {}/{}: train loss {:.4} top-1 {:.2}% | test loss {:.4} top-1 {:.2}% top-5 {:.2}% | {:.0}s",
                    epoch + 1,
                    s.epochs,
                    record.train_loss,
                    100.0 * record.train_top1,
                    test.loss,
                    100.0 * test.top1,
                    100.0 * test.top5,
                    record.seconds
                );
            }
            let weights = checkpoint::named_tensors(self.network.spec(), &self.vs);
            checkpoint::save(
                &options.out,
                &self.card,
                &weights,
                &self.optimizer.state(),
                state.step,
                &state,
            )?;
        }
        let steps_now = state.step - start_step;
        Ok(TrainSummary {
            model: self.card.config.name.clone(),
            params: self.network.spec().param_count(),
            epochs_done: state.epochs_done,
            epochs: s.epochs,
            steps: state.step,
            test_examples: test_indices.len(),
            top1: state.top1,
            top5: state.top5,
            best_top1: state.best_top1,
            seconds: state.seconds,
            seconds_per_step: if steps_now == 0 { 0.0 } else { step_seconds / steps_now as f64 },
            checkpoint: options.out.clone(),
        })
    }
}

#[derive(Serialize)]
struct StepRecord {
    event: &'static str,
    epoch: usize,
    step: usize,
    loss: f64,
    lr: f64,
    momentum: f64,
}

#[derive(Serialize)]
struct EpochRecord {
    event: &'static str,
    epoch: usize,
    step: usize,
    train_loss: f64,
    train_top1: f64,
    train_top5: f64,
    test_loss: f64,
    top1: f64,
    top5: f64,
    lr: f64,
    drop_path: f64,
    seconds: f64,
}

/// libtorch's seed for initialization (its generator takes an i64).
fn init_seed(seed: u64) -> i64 {
    (derive_seed(seed, 0, 0) >> 1) as i64
}

/// Checks that the data set's images and classes fit the network.
pub fn check_fit(config: &NetworkConfig, preprocess: &Preprocess, classes: usize) -> Result<()> {
    if preprocess.input_shape() != config.input {
        return Err(TrainerError::DataMismatch {
            data: format!("{} images", preprocess.input_shape()),
            network: format!("{} inputs (pass --input {})", config.input, preprocess.input_shape()),
        });
    }
    if classes != config.classes {
        return Err(TrainerError::DataMismatch {
            data: format!("{classes} classes"),
            network: format!("{} classes (pass --classes {classes})", config.classes),
        });
    }
    Ok(())
}

/// A progress bar with rate and ETA, drawn on stderr when `visible`.
pub fn progress_bar(visible: bool, len: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(prefix.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_smoothed_loss_matches_hand_computation() {
        // Logits (0, ln 3): p = (1/4, 3/4). Label 1: nll = -ln(3/4); mean -log p over classes =
        // (ln 4 + ln(4/3)) / 2. eps = 0.1 mixes them 0.9 / 0.1.
        let logits = Tensor::from_slice(&[0.0f32, 3f32.ln()]).reshape([1, 2]);
        let labels = Tensor::from_slice(&[1i64]);
        let nll = -(0.75f64.ln());
        let uniform = (4f64.ln() + (4.0f64 / 3.0).ln()) / 2.0;
        assert!((loss(&logits, &labels, 0.0).double_value(&[]) - nll).abs() < 1e-6);
        let want = 0.9 * nll + 0.1 * uniform;
        assert!((loss(&logits, &labels, 0.1).double_value(&[]) - want).abs() < 1e-6);
    }

    #[test]
    fn gradient_clipping_scales_to_the_global_norm() {
        // Gradients (3) and (4): global norm 5; clipped to 1 they become (0.6) and (0.8).
        let a = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let b = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        (&a * 3.0 + &b * 4.0).sum(Kind::Float).backward();
        let norm = clip_grad_norm(&[a.shallow_clone(), b.shallow_clone()], 1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((a.grad().double_value(&[0]) - 0.6).abs() < 1e-5);
        assert!((b.grad().double_value(&[0]) - 0.8).abs() < 1e-5);
    }

    #[test]
    fn settings_are_checked() {
        assert!(TrainSettings::cifar().validate().is_ok());
        assert!(TrainSettings::imagenet().validate().is_ok());
        let bad = TrainSettings { drop_path: 1.0, ..TrainSettings::cifar() };
        assert!(bad.validate().unwrap_err().to_string().contains("--drop-path"));
        let bad = TrainSettings { lr: f64::NAN, ..TrainSettings::cifar() };
        assert!(bad.validate().unwrap_err().to_string().contains("--lr"));
    }
}

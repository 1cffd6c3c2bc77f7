//! Seconds per training step (forward + backward + weight binarization + SGD) at batch 64 on
//! Fashion-MNIST-shaped input (1x28x28), for BNAS-A and for the reduced training preset.
//!
//! `cargo bench -p bnas-trainer --bench step_time [-- MODEL:LAYERS:CHANNELS ...]`

use std::time::Instant;

use bnas_models::{InputShape, NetworkConfig, Overrides};
use bnas_trainer::binary::WeightBinarizer;
use bnas_trainer::network::{DropPath, Network};
use bnas_trainer::optim::Sgd;
use bnas_trainer::train::loss;
use tch::{nn, Device, Kind, Tensor};

const BATCH: i64 = 64;
const WARMUP: usize = 2;
const STEPS: usize = 5;

fn main() -> anyhow::Result<()> {
    let cases: Vec<String> = std::env::args().skip(1).filter(|a| a.contains(':')).collect();
    let cases =
        if cases.is_empty() { vec!["bnas-a:20:36".to_owned(), "bnas-a:8:16".to_owned()] } else { cases };
    println!("threads {}", tch::get_num_threads());
    for case in cases {
        let mut parts = case.split(':');
        let (model, layers, channels) = (
            parts.next().unwrap_or("bnas-a"),
            parts.next().and_then(|p| p.parse().ok()),
            parts.next().and_then(|p| p.parse().ok()),
        );
        let overrides = Overrides {
            layers,
            channels,
            input: Some(InputShape { channels: 1, height: 28, width: 28 }),
            ..Overrides::default()
        };
        let config = NetworkConfig::resolve(model, &overrides)?;
        let vs = nn::VarStore::new(Device::Cpu);
        let network = Network::new(&vs.root(), config.spec()?);
        let params = bnas_trainer::checkpoint::named_tensors(network.spec(), &vs)
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        let mut sgd = Sgd::new(params, 3e-6);
        let mut binarizer = WeightBinarizer::new(network.binary_weights());
        let input = Tensor::randn([BATCH, 1, 28, 28], (Kind::Float, Device::Cpu));
        let labels = Tensor::randint(10, [BATCH], (Kind::Int64, Device::Cpu));
        let mut times = Vec::new();
        for step in 0..WARMUP + STEPS {
            let t0 = Instant::now();
            sgd.zero_grad();
            binarizer.binarize_for_training();
            let mut drop = DropPath::new(0.1, step as u64);
            let logits = network.forward(&input, true, Some(&mut drop))?;
            loss(&logits, &labels, 0.0).backward();
            binarizer.restore(true);
            sgd.step(0.01, 0.9);
            if step >= WARMUP {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{model} L={} C={} params {}: median {:.3} s/step at batch {BATCH} (min {:.3})",
            config.layers,
            config.channels,
            network.spec().param_count(),
            times[times.len() / 2],
            times[0]
        );
    }
    Ok(())
}

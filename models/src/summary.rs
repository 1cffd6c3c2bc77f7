//! The model report: one row per layer and the totals, as printed by `bnas summary`.

use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;
use crate::cost::{self, CostKind};
use crate::spec::{Layer, Liveness, NetworkSpec, ParamSpec, Precision, Shape};

/// One layer of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    /// Layer name.
    pub name: String,
    /// Short op description.
    pub op: String,
    /// `float`, `binary` or `compat`.
    pub precision: Precision,
    /// Per-sample output shape.
    pub output: Shape,
    /// Learnable parameters.
    pub params: u64,
    /// Of which binary conv weights.
    pub binary_params: u64,
    /// Bytes of its parameters packed: 1 bit per binary weight, 4 bytes for the rest.
    pub packed_bytes: u64,
    /// Float MACs per sample.
    pub float_macs: u64,
    /// Binary MACs per sample.
    pub binary_macs: u64,
    /// Whether the layer is pruned (dead or statically zero).
    pub pruned: bool,
    /// Why: live, zero or dead.
    pub liveness: Liveness,
    /// fp32 bytes of its output (0 when it is never materialized).
    pub activation_bytes: u64,
    /// Bytes of its bit-packed input (binary-input convs only).
    pub packed_input_bytes: u64,
}

/// Whole-network totals. `params` and `buffers` are the reference's unpruned counts, so
/// checkpoints match; MACs, `ops`, sizes and memory cover the live layers only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Learnable parameters, counted as the reference counts them.
    pub params: u64,
    /// Of which binary conv weights (1 bit each when packed).
    pub binary_params: u64,
    /// Non-learnable state_dict values: BatchNorm running statistics and step counters.
    pub buffers: u64,
    /// Float MACs per sample.
    pub float_macs: u64,
    /// Binary MACs (BOPs) per sample.
    pub binary_macs: u64,
    /// float_macs + binary_macs / 64: the papers' "FLOPs".
    pub ops: f64,
    /// Live layers' learnable parameters at 4 bytes each.
    pub fp32_bytes: u64,
    /// The same parameters packed: 1 bit per binary weight, 4 bytes for the rest.
    pub packed_bytes: u64,
    /// fp32_bytes / packed_bytes.
    pub compression: f64,
    /// Peak activation bytes of a sequential schedule, one sample.
    pub peak_activation_bytes: u64,
}

/// The report of one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The configuration.
    pub config: NetworkConfig,
    /// Every layer in execution order.
    pub layers: Vec<LayerRow>,
    /// The totals.
    pub totals: Totals,
}

impl Summary {
    /// Builds the report of a spec.
    pub fn of(spec: &NetworkSpec) -> Summary {
        let layers = spec
            .layers
            .iter()
            .enumerate()
            .map(|(id, layer)| LayerRow {
                name: layer.name.clone(),
                op: layer.op.label(),
                precision: layer.precision,
                output: layer.output,
                params: layer.param_count(),
                binary_params: layer.binary_weight_count(),
                packed_bytes: layer.packed_param_bits().div_ceil(8),
                float_macs: layer.count(CostKind::FloatMac),
                binary_macs: layer.count(CostKind::BinaryMac),
                pruned: layer.pruned(),
                liveness: layer.liveness,
                activation_bytes: spec.activation_bytes(id),
                packed_input_bytes: spec.packed_input_bytes(id),
            })
            .collect();
        let params = spec.param_count();
        let binary_params = spec.layers.iter().map(Layer::binary_weight_count).sum();
        let buffers = spec.params().filter(|p| !p.kind.learnable()).map(ParamSpec::numel).sum();
        let fp32_bytes = 4 * spec.live_layers().map(Layer::param_count).sum::<u64>();
        let packed_bits: u64 = spec.live_layers().map(Layer::packed_param_bits).sum();
        let packed_bytes = packed_bits.div_ceil(8);
        let float_macs = spec.total(CostKind::FloatMac);
        let binary_macs = spec.total(CostKind::BinaryMac);
        Summary {
            config: spec.config.clone(),
            layers,
            totals: Totals {
                params,
                binary_params,
                buffers,
                float_macs,
                binary_macs,
                ops: cost::ops(float_macs, binary_macs),
                fp32_bytes,
                packed_bytes,
                compression: fp32_bytes as f64 / packed_bytes.max(1) as f64,
                peak_activation_bytes: spec.peak_activation_bytes(),
            },
        }
    }
}

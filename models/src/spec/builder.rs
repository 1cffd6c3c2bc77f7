//! Builds a [`NetworkSpec`] from a [`NetworkConfig`], following the reference's module tree
//! (reference §3, §7): layer order is the reference's module registration order, so the parameter
//! list is its state_dict in order.

use super::{
    liveness, BatchNorm, ConvSpec, Layer, LayerId, LayerOp, Liveness, NetworkSpec, ParamKind, ParamSpec,
    Precision, Shape,
};
use crate::config::{NetworkConfig, Topology};
use crate::cost::{Cost, CostKind};
use crate::error::SpecError;
use crate::genotype::{CellKind, Edge, CONCAT};
use crate::op::OpKind;

/// The fewest cells for which cell 0 is a normal cell (reductions sit at L/3 and 2L/3).
const MIN_LAYERS: usize = 3;
/// The ImageNet topology's final average pool.
const IMAGENET_FINAL_MAP: usize = 7;
/// Largest count one layer may have: totals over any network (at most a few thousand layers
/// under the size limits below) then stay far inside u64.
const MAX_LAYER_COUNT: u128 = 1 << 48;

impl NetworkSpec {
    pub(crate) fn build(config: NetworkConfig) -> Result<NetworkSpec, SpecError> {
        check_sizes(&config)?;
        let mut net = Builder { layers: Vec::new() };
        let input = net.push(
            "input",
            LayerOp::Input,
            vec![],
            Shape { channels: config.input.channels, height: config.input.height, width: config.input.width },
        );
        let c = config.channels;
        let (mut s0, mut s1) = match config.topology {
            Topology::Cifar => {
                let stem = net.conv(
                    input,
                    ConvArgs::new("stem", "stem.op.0", 3 * c, 3, 1).input_bn("stem.bn").relu(),
                )?;
                (stem, stem)
            }
            Topology::Imagenet => {
                let a = net.conv(
                    input,
                    ConvArgs::new("stem0.0", "stem0.0", c / 2, 3, 2).output_bn("stem0.1").relu(),
                )?;
                let s0 = net.conv(a, ConvArgs::new("stem0.3", "stem0.3", c, 3, 2).output_bn("stem0.4"))?;
                let s1 = net.conv(
                    s0,
                    ConvArgs::new("stem1.1", "stem1.1", c, 3, 2).input_relu().output_bn("stem1.2"),
                )?;
                (s0, s1)
            }
        };
        let mut reduction_prev = config.topology == Topology::Imagenet;
        let mut cell_channels = c;
        for index in 0..config.layers {
            let reduction = index == config.layers / 3 || index == 2 * config.layers / 3;
            if reduction {
                cell_channels *= 2;
            }
            let cell = CellArgs { index, channels: cell_channels, reduction, reduction_prev };
            let out = net.cell(&config, cell, s0, s1)?;
            (s0, s1, reduction_prev) = (s1, out, reduction);
        }
        let last = net.shape(s1);
        if config.topology == Topology::Imagenet
            && (last.height, last.width) != (IMAGENET_FINAL_MAP, IMAGENET_FINAL_MAP)
        {
            return Err(SpecError::FinalMap { height: last.height, width: last.width });
        }
        let pooled = Shape { channels: last.channels, height: 1, width: 1 };
        let pool = net.push("global_pooling", LayerOp::GlobalAvgPool, vec![s1], pooled);
        let classifier = net.push(
            "classifier",
            LayerOp::Linear { weight: "classifier.weight".into(), bias: "classifier.bias".into() },
            vec![pool],
            Shape { channels: config.classes, height: 1, width: 1 },
        );
        net.layers[classifier].params = vec![
            param("classifier.weight", vec![config.classes, last.channels], ParamKind::Weight),
            param("classifier.bias", vec![config.classes], ParamKind::Bias),
        ];
        let mut layers = net.layers;
        assign_precision(&mut layers, config.topology, config.reference_compat);
        for layer in &mut layers {
            layer.cost = layer_cost(layer)?;
        }
        liveness::analyze(&mut layers);
        Ok(NetworkSpec { config, layers })
    }
}

fn check_sizes(config: &NetworkConfig) -> Result<(), SpecError> {
    let min_channels = match config.topology {
        Topology::Cifar => 1,
        Topology::Imagenet => 2, // the first stem conv has C/2 outputs
    };
    // The upper limits keep every shape product inside usize; costs are checked per layer.
    let checks = [
        ("layers", MIN_LAYERS, 512, config.layers),
        ("channels", min_channels, 1 << 16, config.channels),
        ("classes", 1, 1 << 24, config.classes),
        ("input channels", 1, 1 << 12, config.input.channels),
        ("input height", 1, 1 << 14, config.input.height),
        ("input width", 1, 1 << 14, config.input.width),
    ];
    for (field, min, max, value) in checks {
        if value < min {
            return Err(SpecError::TooSmall { field, min, value });
        }
        if value > max {
            return Err(SpecError::TooLarge { field, max, value });
        }
    }
    Ok(())
}

struct CellArgs {
    index: usize,
    channels: usize,
    reduction: bool,
    reduction_prev: bool,
}

/// A conv block under construction; names are the reference's module prefixes.
struct ConvArgs {
    layer: String,
    conv: String,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    bias: bool,
    input_bn: Option<(String, bool)>,
    input_relu: bool,
    output_bn: Option<String>,
    output_relu: bool,
}

impl ConvArgs {
    /// A float conv with `(kernel - 1) / 2` padding and no extras.
    fn new(layer: &str, conv: &str, out_channels: usize, kernel: usize, stride: usize) -> ConvArgs {
        ConvArgs {
            layer: layer.to_owned(),
            conv: conv.to_owned(),
            out_channels,
            kernel,
            stride,
            padding: (kernel - 1) / 2,
            dilation: 1,
            bias: false,
            input_bn: None,
            input_relu: false,
            output_bn: None,
            output_relu: false,
        }
    }

    /// The reference's binary op block `<prefix>.bn` -> sign -> `<prefix>.op.0` -> ReLU. Its
    /// precision is assigned once the whole net is known (see `assign_precision`).
    fn binary(prefix: &str, out_channels: usize, kernel: usize, stride: usize, affine: bool) -> ConvArgs {
        ConvArgs {
            input_bn: Some((format!("{prefix}.bn"), affine)),
            output_relu: true,
            ..ConvArgs::new(prefix, &format!("{prefix}.op.0"), out_channels, kernel, stride)
        }
    }

    fn input_bn(mut self, prefix: &str) -> ConvArgs {
        self.input_bn = Some((prefix.to_owned(), true));
        self
    }

    fn input_relu(mut self) -> ConvArgs {
        self.input_relu = true;
        self
    }

    fn output_bn(mut self, prefix: &str) -> ConvArgs {
        self.output_bn = Some(prefix.to_owned());
        self
    }

    fn relu(mut self) -> ConvArgs {
        self.output_relu = true;
        self
    }
}

struct Builder {
    layers: Vec<Layer>,
}

impl Builder {
    fn shape(&self, id: LayerId) -> Shape {
        self.layers[id].output
    }

    fn push(&mut self, name: &str, op: LayerOp, inputs: Vec<LayerId>, output: Shape) -> LayerId {
        self.layers.push(Layer {
            name: name.to_owned(),
            op,
            inputs,
            output,
            precision: Precision::Float,
            params: Vec::new(),
            cost: Vec::new(),
            liveness: Liveness::Live,
        });
        self.layers.len() - 1
    }

    fn conv(&mut self, input: LayerId, args: ConvArgs) -> Result<LayerId, SpecError> {
        let in_shape = self.shape(input);
        let window = args.dilation * (args.kernel - 1) + 1;
        let out_size =
            |size: usize| (size + 2 * args.padding).checked_sub(window).map(|span| span / args.stride + 1);
        let (Some(height), Some(width)) = (out_size(in_shape.height), out_size(in_shape.width)) else {
            return Err(SpecError::MapTooSmall {
                layer: args.layer,
                height: in_shape.height,
                width: in_shape.width,
                window,
            });
        };
        let in_channels = in_shape.channels;
        let mut params = Vec::new();
        let input_bn = args.input_bn.map(|(prefix, affine)| {
            params.extend(batch_norm_params(&prefix, in_channels, affine));
            BatchNorm { prefix, channels: in_channels, affine }
        });
        let weight = format!("{}.weight", args.conv);
        params.push(param(
            &weight,
            vec![args.out_channels, in_channels, args.kernel, args.kernel],
            ParamKind::Weight,
        ));
        let bias = args.bias.then(|| format!("{}.bias", args.conv));
        if let Some(bias) = &bias {
            params.push(param(bias, vec![args.out_channels], ParamKind::Bias));
        }
        let output_bn = args.output_bn.map(|prefix| {
            params.extend(batch_norm_params(&prefix, args.out_channels, true));
            BatchNorm { prefix, channels: args.out_channels, affine: true }
        });
        let spec = ConvSpec {
            in_channels,
            out_channels: args.out_channels,
            kernel: args.kernel,
            stride: args.stride,
            padding: args.padding,
            dilation: args.dilation,
            weight,
            bias,
            input_bn,
            input_relu: args.input_relu,
            output_bn,
            output_relu: args.output_relu,
        };
        let id = self.push(
            &args.layer,
            LayerOp::Conv(spec),
            vec![input],
            Shape { channels: args.out_channels, height, width },
        );
        self.layers[id].params = params;
        Ok(id)
    }

    fn add(&mut self, name: &str, inputs: Vec<LayerId>) -> Result<LayerId, SpecError> {
        let shape = self.shape(inputs[0]);
        if let Some(&other) = inputs.iter().find(|&&i| self.shape(i) != shape) {
            return Err(SpecError::ShapeMismatch {
                layer: name.to_owned(),
                left: shape.to_string(),
                right: self.shape(other).to_string(),
            });
        }
        Ok(self.push(name, LayerOp::Add, inputs, shape))
    }

    /// One cell: preprocessing, the genotype's eight ops, four node sums, the concat and the
    /// inter-cell residual (every cell but the first).
    fn cell(
        &mut self,
        config: &NetworkConfig,
        cell: CellArgs,
        s0: LayerId,
        s1: LayerId,
    ) -> Result<LayerId, SpecError> {
        let prefix = format!("cells.{}", cell.index);
        let c = cell.channels;
        let input = self.shape(s1);
        if cell.reduction && (input.height % 2 == 1 || input.width % 2 == 1) {
            return Err(SpecError::OddReduction {
                cell: cell.index,
                height: input.height,
                width: input.width,
            });
        }
        // ImageNet reduction cells name their preprocessing `preprocess{0,1}_red`.
        let suffix = if config.topology == Topology::Imagenet && cell.reduction { "_red" } else { "" };
        let pre0 = format!("{prefix}.preprocess0{suffix}");
        let pre0 = if cell.reduction_prev {
            // CIFAR's stride-2 preprocess0 has a non-affine BatchNorm; ImageNet's is affine.
            self.conv(s0, ConvArgs::binary(&pre0, c, 3, 2, config.topology == Topology::Imagenet))?
        } else {
            self.conv(s0, ConvArgs::binary(&pre0, c, 1, 1, true))?
        };
        let pre1 =
            self.conv(s1, ConvArgs::binary(&format!("{prefix}.preprocess1{suffix}"), c, 1, 1, true))?;
        let residual = if cell.reduction {
            let name = format!("{prefix}.preprocess_res");
            let projection = ConvArgs {
                padding: 0,
                bias: true,
                ..ConvArgs::new(&name, &format!("{name}.1"), 4 * c, 2, 2)
            };
            Some(self.conv(s1, projection.input_bn(&format!("{name}.0")))?)
        } else {
            None
        };
        let kind = if cell.reduction { CellKind::Reduce } else { CellKind::Normal };
        let mut states = vec![pre0, pre1];
        let edges = config.genotype.cell(kind);
        for (position, pair) in edges.chunks(2).enumerate() {
            let mut outputs = Vec::with_capacity(2);
            for (offset, edge) in pair.iter().enumerate() {
                let name = format!("{prefix}._ops.{}", 2 * position + offset);
                let stride = if cell.reduction && edge.input < 2 { 2 } else { 1 };
                outputs.push(self.edge_op(&name, *edge, states[edge.input], c, stride)?);
            }
            let node = Edge::node_of(2 * position);
            states.push(self.add(&format!("{prefix}.nodes.{node}"), outputs)?);
        }
        let node_shape = self.shape(states[CONCAT[0]]);
        let concat = self.push(
            &format!("{prefix}.concat"),
            LayerOp::Concat,
            CONCAT.iter().map(|&n| states[n]).collect(),
            Shape { channels: CONCAT.len() * c, ..node_shape },
        );
        if cell.index == 0 {
            return Ok(concat);
        }
        self.add(&format!("{prefix}.residual"), vec![concat, residual.unwrap_or(s1)])
    }

    fn edge_op(
        &mut self,
        name: &str,
        edge: Edge,
        input: LayerId,
        c: usize,
        stride: usize,
    ) -> Result<LayerId, SpecError> {
        let shape = self.shape(input);
        let strided =
            Shape { height: shape.height.div_ceil(stride), width: shape.width.div_ceil(stride), ..shape };
        let pool = |kernel| (kernel, stride, 1);
        Ok(match edge.op {
            OpKind::None => self.push(name, LayerOp::Zero { stride }, vec![input], strided),
            OpKind::MaxPool3x3 => {
                let (kernel, stride, padding) = pool(3);
                self.push(name, LayerOp::MaxPool { kernel, stride, padding }, vec![input], strided)
            }
            OpKind::AvgPool3x3 => {
                let (kernel, stride, padding) = pool(3);
                self.push(name, LayerOp::AvgPool { kernel, stride, padding }, vec![input], strided)
            }
            op => {
                let (kernel, dilation) = op.conv_geometry().expect("the remaining ops are binary convs");
                let args = ConvArgs {
                    dilation,
                    padding: dilation * (kernel - 1) / 2,
                    ..ConvArgs::binary(name, c, kernel, stride, true)
                };
                self.conv(input, args)?
            }
        })
    }
}

fn param(name: &str, shape: Vec<usize>, kind: ParamKind) -> ParamSpec {
    ParamSpec { name: name.to_owned(), shape, kind }
}

/// A BatchNorm2d's state_dict entries in PyTorch's order.
fn batch_norm_params(prefix: &str, channels: usize, affine: bool) -> Vec<ParamSpec> {
    let affine_params = [("weight", ParamKind::BnWeight), ("bias", ParamKind::BnBias)];
    let buffers = [
        ("running_mean", ParamKind::RunningMean),
        ("running_var", ParamKind::RunningVar),
        ("num_batches_tracked", ParamKind::NumBatchesTracked),
    ];
    let affine_params = if affine { &affine_params[..] } else { &[] };
    affine_params
        .iter()
        .chain(&buffers)
        .map(|&(field, kind)| {
            let shape = if kind == ParamKind::NumBatchesTracked { vec![] } else { vec![channels] };
            param(&format!("{prefix}.{field}"), shape, kind)
        })
        .collect()
}

/// Stem convs and residual projections stay float, every other conv is binary (reference §1).
/// With `reference_compat`, the reference's index quirk is reproduced: it counts convs without
/// the residual projections but indexes with them, so the last (number of projections) convs in
/// module order keep float weights on binary inputs.
fn assign_precision(layers: &mut [Layer], topology: Topology, reference_compat: bool) {
    let is_projection = |layer: &Layer| layer.name.ends_with("preprocess_res");
    let convs: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].conv().is_some()).collect();
    let binarized = convs.iter().filter(|&&i| !is_projection(&layers[i])).count();
    for (position, &i) in convs.iter().enumerate() {
        let index = position + 1; // the reference's 1-based conv index, projections included
        let layer = &mut layers[i];
        layer.precision = if index <= topology.stem_convs() || is_projection(layer) {
            Precision::Float
        } else if reference_compat && index > binarized {
            Precision::BinaryInputFloatWeight
        } else {
            Precision::Binary
        };
    }
}

/// MACs per sample: a conv counts its full kernel window at every output position.
fn layer_cost(layer: &Layer) -> Result<Vec<Cost>, SpecError> {
    let (kind, count) = match &layer.op {
        LayerOp::Conv(conv) => {
            let kind = match layer.precision {
                Precision::Binary => CostKind::BinaryMac,
                Precision::Float | Precision::BinaryInputFloatWeight => CostKind::FloatMac,
            };
            let per_output = (conv.in_channels * conv.kernel * conv.kernel) as u128;
            (kind, u128::from(layer.output.numel()) * per_output)
        }
        LayerOp::Linear { .. } => (CostKind::FloatMac, u128::from(layer.params[0].numel())),
        _ => return Ok(Vec::new()),
    };
    if count > MAX_LAYER_COUNT {
        return Err(SpecError::CostOverflow { layer: layer.name.clone() });
    }
    Ok(vec![Cost { kind, count: count as u64 }])
}

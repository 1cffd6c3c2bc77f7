//! Lowers the live layers of a network spec to ONNX nodes, reading their tensors from a `.bnas`
//! file. The semantics are the float reference's (`runtime/tests/backends.rs`): a conv block is
//! `[BN] [ReLU] [sign] conv [+bias] [BN] [ReLU]`, binary convs run on +1/-1 weights and scale
//! each output channel by alpha, max pools ignore padding, average pools do not count it.
//!
//! Names follow the spec: a layer's output value is the layer's name (`cells.3._ops.1`), the
//! nodes and initializers inside it are `<layer>/<role>` (`cells.3._ops.1/bn`,
//! `cells.3._ops.1/sign`, `cells.3._ops.1/conv`, `cells.3._ops.1/alpha`).

use bnas_models::{BatchNorm, ConvSpec, Layer, LayerId, LayerOp, Liveness, NetworkSpec, Precision, Shape};
use bnas_runtime::bit_layout::{filter_words, PanelLayout};
use bnas_runtime::format::{alpha_name, BnasFile};

use super::error::OnnxError;
use super::graph::{self, Dim, GraphBuilder};

/// The symbolic batch dimension of the graph input and output.
pub(crate) const BATCH: &str = "batch";
/// The graph input: float `[batch, C, H, W]`, preprocessed as the model's metadata says.
pub(crate) const INPUT: &str = "input";
/// The graph output: float `[batch, classes]`.
pub(crate) const LOGITS: &str = "logits";

/// The scalar constants of the project's sign: `x >= 0 ? +1 : -1`.
#[derive(Debug, Clone)]
pub(crate) struct SignConstants {
    zero: String,
    plus_one: String,
    minus_one: String,
}

impl SignConstants {
    /// Adds the three scalar initializers to `graph`.
    pub(crate) fn new(graph: &mut GraphBuilder) -> Result<SignConstants, OnnxError> {
        Ok(SignConstants {
            zero: graph.float_initializer("sign/zero", &[], &[0.0], "threshold of the sign")?,
            plus_one: graph.float_initializer("sign/plus_one", &[], &[1.0], "sign of x >= 0")?,
            minus_one: graph.float_initializer("sign/minus_one", &[], &[-1.0], "sign of x < 0")?,
        })
    }
}

/// The project's binarization of `x` (reference §1): `Where(GreaterOrEqual(x, 0), +1, -1)`. ONNX
/// `Sign` is not used: it maps 0 to 0, where BNAS maps it to +1. NaN gives -1, as in the
/// runtime's threshold test.
pub(crate) fn sign(graph: &mut GraphBuilder, constants: &SignConstants, prefix: &str, x: &str) -> String {
    let test = graph
        .node("GreaterOrEqual", &format!("{prefix}/sign_test"), &[x, &constants.zero])
        .doc("x >= 0")
        .finish();
    graph
        .node("Where", &format!("{prefix}/sign"), &[&test, &constants.plus_one, &constants.minus_one])
        .doc("binarization: +1 where x >= 0 (0 included), else -1")
        .finish()
}

/// `[batch, C, H, W]`.
pub(crate) fn nchw(shape: Shape) -> Vec<Dim> {
    vec![Dim::Symbolic(BATCH), Dim::Fixed(shape.channels), Dim::Fixed(shape.height), Dim::Fixed(shape.width)]
}

/// The +1/-1 weights, OIHW, of packed filters in the panel layout of
/// [`bnas_runtime::bit_layout`]. `None` if `words` has the wrong length.
pub fn unpack_filters(words: &[u64], out: usize, inputs: usize, kernel: usize) -> Option<Vec<f32>> {
    if filter_words(out, inputs, kernel)? != words.len() {
        return None;
    }
    let layout = PanelLayout::new(inputs, kernel * kernel);
    Some((0..out * inputs * kernel * kernel).map(|i| layout.sign(words, i)).collect())
}

/// Output size of a window of `span` taps (dilation included) moved by `stride` over `size`
/// padded by `padding` on both sides (ONNX's floor rounding).
fn window_output(size: usize, padding: usize, span: usize, stride: usize) -> Option<usize> {
    (size + 2 * padding).checked_sub(span).and_then(|s| s.checked_div(stride)).map(|s| s + 1)
}

/// The spec's layers lowered into a graph, with the input and the `logits` output declared.
pub(crate) fn lower(file: &BnasFile, spec: &NetworkSpec) -> Result<GraphBuilder, OnnxError> {
    let input = spec.layers.first().ok_or_else(|| OnnxError::Unsupported {
        layer: "input".into(),
        problem: "the network has no layers".into(),
    })?;
    let mut graph = GraphBuilder::default();
    let input_value = graph.input(
        INPUT,
        &nchw(input.output),
        "NCHW float input, preprocessed as the model's metadata (bnas.preprocess) says",
    )?;
    let mut lowering = Lowering {
        file,
        spec,
        eps: file.metadata().bn_eps,
        graph,
        values: vec![None; spec.layers.len()],
        batch_size: None,
        signs: None,
    };
    lowering.values[0] = Some(input_value);
    let last = spec.layers.len() - 1;
    for (id, layer) in spec.layers.iter().enumerate().skip(1) {
        if layer.liveness != Liveness::Live {
            continue;
        }
        let rank2 = matches!(layer.op, LayerOp::Linear { .. });
        lowering.layer(layer)?;
        let name = if id == last { LOGITS } else { layer.name.as_str() };
        let value = lowering.graph.rename_last_output(name).ok_or_else(|| OnnxError::Unsupported {
            layer: layer.name.clone(),
            problem: "lowered to no node".into(),
        })?;
        let dims = if rank2 {
            vec![Dim::Symbolic(BATCH), Dim::Fixed(layer.output.numel() as usize)]
        } else {
            nchw(layer.output)
        };
        if id == last {
            lowering.graph.output(&value, &dims, "logits, one row per sample");
        } else {
            lowering.graph.value_info(&value, &dims);
        }
        lowering.values[id] = Some(value);
    }
    if lowering.values[last].is_none() {
        return Err(OnnxError::Unsupported {
            layer: spec.layers[last].name.clone(),
            problem: "the classifier is not live".into(),
        });
    }
    Ok(lowering.graph)
}

/// The state of one export.
struct Lowering<'a> {
    file: &'a BnasFile,
    spec: &'a NetworkSpec,
    eps: f32,
    graph: GraphBuilder,
    /// Each layer's ONNX value once computed (or materialized, for statically zero layers).
    values: Vec<Option<String>>,
    /// `[batch]` as int64, built when a zero tensor first needs it.
    batch_size: Option<String>,
    signs: Option<SignConstants>,
}

impl Lowering<'_> {
    /// Adds the nodes of one live layer; its last node computes the layer's output.
    fn layer(&mut self, layer: &Layer) -> Result<(), OnnxError> {
        let spec = self.spec;
        let in_shape = |i: usize| layer.inputs.get(i).map(|&j| spec.layers[j].output);
        let single_input = || -> Result<(LayerId, Shape), OnnxError> {
            match layer.inputs[..] {
                [j] => Ok((j, spec.layers[j].output)),
                _ => Err(OnnxError::Unsupported {
                    layer: layer.name.clone(),
                    problem: format!("{} inputs for a single-input op", layer.inputs.len()),
                }),
            }
        };
        match &layer.op {
            LayerOp::Input => {
                return Err(OnnxError::Unsupported {
                    layer: layer.name.clone(),
                    problem: "an input layer after layer 0".into(),
                })
            }
            LayerOp::Zero { .. } => {
                self.zeros(layer)?;
            }
            LayerOp::Conv(conv) => {
                let (input, shape) = single_input()?;
                let x = self.operand(input, layer)?;
                self.conv(layer, conv, &x, shape)?;
            }
            LayerOp::MaxPool { kernel, stride, padding } | LayerOp::AvgPool { kernel, stride, padding } => {
                let (input, shape) = single_input()?;
                let max = matches!(layer.op, LayerOp::MaxPool { .. });
                let op = if max { "MaxPool" } else { "AveragePool" };
                self.check_window(layer, op, shape, (*kernel, *stride, *padding, 1))?;
                let x = self.operand(input, layer)?;
                let (k, s, p) = (*kernel as i64, *stride as i64, *padding as i64);
                let mut node = self
                    .graph
                    .node(op, &format!("{}/pool", layer.name), &[&x])
                    .attr(graph::ints("kernel_shape", &[k, k]))
                    .attr(graph::ints("strides", &[s, s]))
                    .attr(graph::ints("pads", &[p, p, p, p]));
                node = if max {
                    node.doc(format!("{k}x{k} max pool, stride {s}; padded positions never win"))
                } else {
                    node.attr(graph::int("count_include_pad", 0))
                        .doc(format!("{k}x{k} average pool, stride {s}; padded positions not counted"))
                };
                node.finish();
            }
            LayerOp::Add => {
                // Statically zero summands are left out, as in the runtime.
                let live: Vec<LayerId> = layer
                    .inputs
                    .iter()
                    .copied()
                    .filter(|&j| self.spec.layers[j].liveness != Liveness::Zero)
                    .collect();
                if let Some(other) =
                    live.iter().map(|&j| self.spec.layers[j].output).find(|&s| s != layer.output)
                {
                    return Err(OnnxError::ShapeMismatch {
                        layer: layer.name.clone(),
                        op: "Add",
                        onnx: other.to_string(),
                        spec: layer.output.to_string(),
                    });
                }
                let operands = live.iter().map(|&j| self.operand(j, layer)).collect::<Result<Vec<_>, _>>()?;
                let refs: Vec<&str> = operands.iter().map(String::as_str).collect();
                let dropped = layer.inputs.len() - live.len();
                let why = format!("{dropped} statically zero summand(s) left out");
                let name = &layer.name;
                match refs.len() {
                    0 => {
                        self.zeros(layer)?;
                    }
                    1 => {
                        self.graph.node("Identity", &format!("{name}/identity"), &refs).doc(why).finish();
                    }
                    2 => {
                        let node = self.graph.node("Add", &format!("{name}/add"), &refs);
                        if dropped > 0 { node.doc(why) } else { node }.finish();
                    }
                    _ => {
                        self.graph.node("Sum", &format!("{name}/sum"), &refs).finish();
                    }
                }
            }
            LayerOp::Concat => {
                let channels: usize = (0..layer.inputs.len()).filter_map(in_shape).map(|s| s.channels).sum();
                let mismatch = (0..layer.inputs.len())
                    .filter_map(in_shape)
                    .find(|s| (s.height, s.width) != (layer.output.height, layer.output.width));
                if channels != layer.output.channels || mismatch.is_some() {
                    return Err(OnnxError::ShapeMismatch {
                        layer: layer.name.clone(),
                        op: "Concat",
                        onnx: mismatch
                            .map_or_else(|| format!("{channels} channels"), |s| format!("an input of {s}")),
                        spec: layer.output.to_string(),
                    });
                }
                let operands =
                    layer.inputs.iter().map(|&j| self.operand(j, layer)).collect::<Result<Vec<_>, _>>()?;
                let refs: Vec<&str> = operands.iter().map(String::as_str).collect();
                let zeros =
                    layer.inputs.iter().filter(|&&j| self.spec.layers[j].liveness == Liveness::Zero).count();
                let doc = format!("channel concat of {} parts, {zeros} statically zero", refs.len());
                self.graph
                    .node("Concat", &format!("{}/concat", layer.name), &refs)
                    .attr(graph::int("axis", 1))
                    .doc(doc)
                    .finish();
            }
            LayerOp::GlobalAvgPool => {
                let (input, _) = single_input()?;
                let x = self.operand(input, layer)?;
                self.graph
                    .node("GlobalAveragePool", &format!("{}/pool", layer.name), &[&x])
                    .doc("average over the whole map")
                    .finish();
            }
            LayerOp::Linear { weight, bias } => {
                let (input, shape) = single_input()?;
                let x = self.operand(input, layer)?;
                let (out, features) = (layer.output.channels, shape.numel() as usize);
                let w = self.floats(layer, weight, &[out, features])?;
                let b = self.floats(layer, bias, &[out])?;
                let name = &layer.name;
                let w = self.graph.float_initializer(
                    &format!("{name}/gemm.weight"),
                    &[out, features],
                    &w,
                    weight,
                )?;
                let b = self.graph.float_initializer(&format!("{name}/gemm.bias"), &[out], &b, bias)?;
                let flat = self
                    .graph
                    .node("Flatten", &format!("{name}/flatten"), &[&x])
                    .attr(graph::int("axis", 1))
                    .finish();
                self.graph
                    .node("Gemm", &format!("{name}/gemm"), &[&flat, &w, &b])
                    .attr(graph::int("transB", 1))
                    .doc(format!("classifier: x W^T + b, W = {weight}"))
                    .finish();
            }
        }
        Ok(())
    }

    /// The value a live layer reads from layer `id`: its output, or zeros of its shape when it
    /// is statically zero.
    fn operand(&mut self, id: LayerId, reader: &Layer) -> Result<String, OnnxError> {
        if let Some(value) = &self.values[id] {
            return Ok(value.clone());
        }
        let source = &self.spec.layers[id];
        match source.liveness {
            Liveness::Zero => {
                let value = self.zeros(source)?;
                self.graph.value_info(&value, &nchw(source.output));
                self.values[id] = Some(value.clone());
                Ok(value)
            }
            Liveness::Dead | Liveness::Live => Err(OnnxError::Unsupported {
                layer: reader.name.clone(),
                problem: format!("reads layer {}, which is not computed before it", source.name),
            }),
        }
    }

    /// Zeros of `layer`'s shape for the batch of the input: `ConstantOfShape(Concat(batch, CHW))`,
    /// named after the layer. (Multiplying something by 0 would turn inf and NaN into NaN.)
    fn zeros(&mut self, layer: &Layer) -> Result<String, OnnxError> {
        let batch = match &self.batch_size {
            Some(b) => b.clone(),
            None => {
                let b = self
                    .graph
                    .node("Shape", "batch_size", &[INPUT])
                    .attr(graph::int("start", 0))
                    .attr(graph::int("end", 1))
                    .doc("[batch], for batch-sized zero tensors")
                    .finish();
                self.batch_size = Some(b.clone());
                b
            }
        };
        let s = layer.output;
        let name = &layer.name;
        let chw = [s.channels as i64, s.height as i64, s.width as i64];
        let chw =
            self.graph.int64_initializer(&format!("{name}/zeros.chw"), &[3], &chw, "per-sample shape")?;
        let shape = self
            .graph
            .node("Concat", &format!("{name}/zeros.shape"), &[&batch, &chw])
            .attr(graph::int("axis", 0))
            .finish();
        let zeros = self
            .graph
            .node("ConstantOfShape", &format!("{name}/zeros"), &[&shape])
            .attr(graph::float_tensor("value", &[1], &[0.0]))
            .doc(format!("{name} is statically zero ({})", layer.op.label()))
            .finish();
        Ok(self.graph.rename_last_output(name).unwrap_or(zeros))
    }

    /// A conv block: `[BN] [ReLU] [sign] conv [alpha] [+bias] [BN] [ReLU]`.
    fn conv(&mut self, layer: &Layer, conv: &ConvSpec, x: &str, input: Shape) -> Result<String, OnnxError> {
        let name = &layer.name;
        let (o, c, k) = (conv.out_channels, conv.in_channels, conv.kernel);
        if c != input.channels || o != layer.output.channels {
            return Err(OnnxError::ShapeMismatch {
                layer: name.clone(),
                op: "Conv",
                onnx: format!("{o} outputs from {c} input channels"),
                spec: format!("{} from {input}", layer.output),
            });
        }
        self.check_window(layer, "Conv", input, (k, conv.stride, conv.padding, conv.dilation))?;
        let mut x = x.to_owned();
        if let Some(bn) = &conv.input_bn {
            x = self.batch_norm(layer, "bn", bn, &x)?;
        }
        if conv.input_relu {
            x = self.graph.node("Relu", &format!("{name}/input_relu"), &[&x]).finish();
        }
        if layer.precision.binarizes_input() {
            let constants = match &self.signs {
                Some(s) => s.clone(),
                None => self.signs.insert(SignConstants::new(&mut self.graph)?).clone(),
            };
            x = sign(&mut self.graph, &constants, name, &x);
        }
        let shape = [o, c, k, k];
        let (weights, weight_doc) = if layer.precision == Precision::Binary {
            let words =
                self.file.filters_shaped(&conv.weight, &shape).map_err(|source| OnnxError::Tensor {
                    layer: name.clone(),
                    tensor: conv.weight.clone(),
                    source: Box::new(source),
                })?;
            let signs = unpack_filters(&words, o, c, k).ok_or_else(|| OnnxError::BadTensor {
                layer: name.clone(),
                tensor: conv.weight.clone(),
                problem: format!("{} packed words for {o}x{c}x{k}x{k} filters", words.len()),
            })?;
            (signs, format!("+1/-1 signs of {}, stored as 1-bit filters", conv.weight))
        } else {
            (self.floats(layer, &conv.weight, &shape)?, conv.weight.clone())
        };
        let w =
            self.graph.float_initializer(&format!("{name}/conv.weight"), &shape, &weights, &weight_doc)?;
        let binary = layer.precision == Precision::Binary;
        let bias = match &conv.bias {
            Some(bias) => Some((bias, self.floats(layer, bias, &[o])?)),
            None => None,
        };
        let mut inputs = vec![x, w];
        if let (false, Some((bias_name, values))) = (binary, &bias) {
            inputs.push(self.graph.float_initializer(
                &format!("{name}/conv.bias"),
                &[o],
                values,
                bias_name,
            )?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let (s, p, d) = (conv.stride as i64, conv.padding as i64, conv.dilation as i64);
        let kind = match layer.precision {
            Precision::Binary => "binary conv (+1/-1 inputs and weights)",
            Precision::BinaryInputFloatWeight => "compat conv (+1/-1 inputs, float weights)",
            Precision::Float => "float conv",
        };
        let mut y = self
            .graph
            .node("Conv", &format!("{name}/conv"), &refs)
            .attr(graph::ints("kernel_shape", &[k as i64, k as i64]))
            .attr(graph::ints("strides", &[s, s]))
            .attr(graph::ints("pads", &[p, p, p, p]))
            .attr(graph::ints("dilations", &[d, d]))
            .attr(graph::int("group", 1))
            .doc(format!("{kind} {}; zero padding contributes exactly 0", layer.op.label()))
            .finish();
        if binary {
            let alpha_tensor = alpha_name(&conv.weight);
            let alpha = self.floats(layer, &alpha_tensor, &[o])?;
            let alpha = self.graph.float_initializer(
                &format!("{name}/alpha"),
                &[1, o, 1, 1],
                &alpha,
                &alpha_tensor,
            )?;
            y = self
                .graph
                .node("Mul", &format!("{name}/scale"), &[&y, &alpha])
                .doc("per-output-channel scale alpha of the binary weights")
                .finish();
            if let Some((bias_name, values)) = &bias {
                let b = self.graph.float_initializer(
                    &format!("{name}/bias"),
                    &[1, o, 1, 1],
                    values,
                    bias_name,
                )?;
                y = self.graph.node("Add", &format!("{name}/add_bias"), &[&y, &b]).finish();
            }
        }
        if let Some(bn) = &conv.output_bn {
            y = self.batch_norm(layer, "output_bn", bn, &y)?;
        }
        if conv.output_relu {
            y = self.graph.node("Relu", &format!("{name}/relu"), &[&y]).finish();
        }
        Ok(y)
    }

    /// Inference BatchNorm with the file's epsilon; a non-affine one gets gamma 1 and beta 0.
    fn batch_norm(
        &mut self,
        layer: &Layer,
        role: &str,
        bn: &BatchNorm,
        x: &str,
    ) -> Result<String, OnnxError> {
        let (c, prefix) = (bn.channels, &bn.prefix);
        let shape = [c];
        let mean = self.floats(layer, &format!("{prefix}.running_mean"), &shape)?;
        let var_name = format!("{prefix}.running_var");
        let var = self.floats(layer, &var_name, &shape)?;
        if let Some(i) = var.iter().position(|&v| v < 0.0) {
            return Err(OnnxError::BadTensor {
                layer: layer.name.clone(),
                tensor: var_name,
                problem: format!("negative variance {} at channel {i}", var[i]),
            });
        }
        let (gamma, beta, gamma_doc, beta_doc) = if bn.affine {
            let (g, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
            (self.floats(layer, &g, &shape)?, self.floats(layer, &b, &shape)?, g, b)
        } else {
            let doc = |v| format!("{prefix} is non-affine: {v}");
            (vec![1.0; c], vec![0.0; c], doc("gamma = 1"), doc("beta = 0"))
        };
        let base = format!("{}/{role}", layer.name);
        let g = &mut self.graph;
        let scale = g.float_initializer(&format!("{base}.scale"), &shape, &gamma, &gamma_doc)?;
        let bias = g.float_initializer(&format!("{base}.bias"), &shape, &beta, &beta_doc)?;
        let mean =
            g.float_initializer(&format!("{base}.mean"), &shape, &mean, &format!("{prefix}.running_mean"))?;
        let var = g.float_initializer(&format!("{base}.var"), &shape, &var, &var_name)?;
        Ok(g.node("BatchNormalization", &base, &[x, &scale, &bias, &mean, &var])
            .attr(graph::float("epsilon", self.eps))
            .doc(format!("{prefix}, inference mode"))
            .finish())
    }

    /// Float tensor `name` of exactly `shape`, all finite.
    fn floats(&self, layer: &Layer, name: &str, shape: &[usize]) -> Result<Vec<f32>, OnnxError> {
        let values = self.file.floats_shaped(name, shape).map_err(|source| OnnxError::Tensor {
            layer: layer.name.clone(),
            tensor: name.to_owned(),
            source: Box::new(source),
        })?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(OnnxError::BadTensor {
                layer: layer.name.clone(),
                tensor: name.to_owned(),
                problem: format!("non-finite value {} at index {i}", values[i]),
            });
        }
        Ok(values.to_vec())
    }

    /// Checks that an ONNX conv or pool window `(kernel, stride, padding, dilation)` over
    /// `input` gives the spec's output size.
    fn check_window(
        &self,
        layer: &Layer,
        op: &'static str,
        input: Shape,
        (kernel, stride, padding, dilation): (usize, usize, usize, usize),
    ) -> Result<(), OnnxError> {
        let span = kernel.checked_sub(1).and_then(|k| k.checked_mul(dilation)).map(|s| s + 1);
        let size = |n: usize| span.and_then(|span| window_output(n, padding, span, stride));
        let out = layer.output;
        let pool = op != "Conv";
        // ONNX pools need padding smaller than the window.
        let valid_pads = !pool || padding < kernel;
        match (size(input.height), size(input.width)) {
            (Some(h), Some(w)) if (h, w) == (out.height, out.width) && valid_pads => Ok(()),
            (h, w) => Err(OnnxError::ShapeMismatch {
                layer: layer.name.clone(),
                op,
                onnx: match (h, w) {
                    (Some(h), Some(w)) if valid_pads => format!("{}x{h}x{w}", out.channels),
                    _ => format!("no valid output for kernel {kernel}, stride {stride}, padding {padding}"),
                },
                spec: out.to_string(),
            }),
        }
    }
}

//! Unit tests of the graph builder, the filter unpacking and the binarization pattern (run in
//! ONNX Runtime), and the structure of an exported graph.

use std::collections::{HashMap, HashSet};

use bnas_models::{LayerOp, Liveness};
use bnas_runtime::format::BnasFile;
use onnx_protobuf::tensor_proto::DataType;
use protobuf::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::error::OnnxError;
use super::graph::{Dim, GraphBuilder};
use super::layers::{sign, unpack_filters, SignConstants};

#[path = "../../tests/onnx_support/mod.rs"]
mod support;

#[test]
fn builder_makes_every_value_and_node_name_unique() {
    let mut g = GraphBuilder::default();
    let x = g.input("x", &[Dim::Symbolic("batch"), Dim::Fixed(3)], "").unwrap();
    assert!(matches!(g.input("x", &[], ""), Err(OnnxError::DuplicateName { name }) if name == "x"));
    assert_eq!(g.unique("a"), "a");
    assert_eq!(g.unique("a"), "a_2");
    assert_eq!(g.unique("a"), "a_3");
    // Initializers and node outputs share the value namespace; node names have their own.
    assert_eq!(g.float_initializer("w", &[3], &[1.0, 2.0, 3.0], "").unwrap(), "w");
    assert_eq!(g.float_initializer("w", &[3], &[1.0, 2.0, 3.0], "").unwrap(), "w_2");
    assert_eq!(g.node("Relu", "w", &[&x]).finish(), "w_3");
    assert_eq!(g.node("Relu", "r", &[&x]).finish(), "r");
    assert_eq!(g.node("Relu", "r", &[&x]).finish(), "r_2");
    let graph = g.finish("g", "doc");
    let names: Vec<&str> = graph.node.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["w", "r", "r_2"]);
    let outputs: Vec<&str> = graph.node.iter().map(|n| n.output[0].as_str()).collect();
    assert_eq!(outputs, ["w_3", "r", "r_2"]);
}

#[test]
fn renaming_the_last_output_keeps_names_unique() {
    let mut g = GraphBuilder::default();
    let x = g.input("x", &[Dim::Fixed(1)], "").unwrap();
    let y = g.node("Relu", "layer/relu", &[&x]).finish();
    assert_eq!(y, "layer/relu");
    assert_eq!(g.rename_last_output("layer").as_deref(), Some("layer"));
    // The old name is free again, the new one taken.
    assert_eq!(g.unique("layer/relu"), "layer/relu");
    assert_eq!(g.unique("layer"), "layer_2");
    // Renaming to the current name changes nothing.
    assert_eq!(g.rename_last_output("layer").as_deref(), Some("layer"));
    let graph = g.finish("g", "");
    assert_eq!(graph.node[0].output, ["layer"]);
    assert_eq!(GraphBuilder::default().rename_last_output("a"), None);
}

#[test]
fn initializers_have_their_shape_type_and_bytes() {
    let mut g = GraphBuilder::default();
    g.float_initializer("w", &[2, 3], &[0.5; 6], "from w").unwrap();
    g.float_initializer("scalar", &[], &[-1.0], "").unwrap();
    g.int64_initializer("dims", &[3], &[4, 5, 6], "").unwrap();
    let err = g.float_initializer("bad", &[2, 2], &[1.0; 3], "").unwrap_err();
    assert!(matches!(&err, OnnxError::BadTensor { tensor, .. } if tensor == "bad"), "{err}");
    let graph = g.finish("g", "");
    let [w, scalar, dims] = &graph.initializer[..] else { panic!("three initializers") };
    assert_eq!(
        (w.dims.as_slice(), w.data_type, w.raw_data.len()),
        (&[2i64, 3][..], DataType::FLOAT as i32, 24)
    );
    assert_eq!(w.raw_data[..4], 0.5f32.to_le_bytes());
    assert_eq!(w.doc_string, "from w");
    assert_eq!((scalar.dims.len(), scalar.raw_data.as_slice()), (0, &(-1.0f32).to_le_bytes()[..]));
    assert_eq!((dims.data_type, dims.raw_data.len()), (DataType::INT64 as i32, 24));
    assert_eq!(dims.raw_data[8..16], 5i64.to_le_bytes());
}

#[test]
fn unpacked_filters_are_the_signs_the_runtime_packed() {
    let mut rng = StdRng::seed_from_u64(3);
    for (o, c, k) in [(1, 1, 1), (16, 64, 1), (17, 70, 3), (5, 130, 5), (33, 7, 3)] {
        let weights: Vec<f32> = (0..o * c * k * k).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let packed = bnas_runtime::bit_layout::pack_filters(&weights, o, c, k);
        let signs = unpack_filters(&packed, o, c, k).unwrap();
        let expected: Vec<f32> = weights.iter().map(|&w| if w >= 0.0 { 1.0 } else { -1.0 }).collect();
        assert_eq!(signs, expected, "{o}x{c}x{k}x{k}");
        assert_eq!(unpack_filters(&packed[1..], o, c, k), None);
    }
}

#[test]
fn binarization_maps_exactly_zero_to_plus_one_in_onnx_runtime() {
    let mut g = GraphBuilder::default();
    let n = 8;
    let x = g.input("x", &[Dim::Fixed(n)], "").unwrap();
    let constants = SignConstants::new(&mut g).unwrap();
    let y = sign(&mut g, &constants, "probe", &x);
    assert_eq!(y, "probe/sign");
    g.output(&y, &[Dim::Fixed(n)], "");
    let model = super::model(g.finish("sign", ""), Vec::new());
    let mut session = support::session(&model.write_to_bytes().unwrap());
    let inputs = vec![-1.0, -0.0, 0.0, 1e-30, 2.0, -1e-30, f32::NAN, f32::NEG_INFINITY];
    let (shape, out) = support::run(&mut session, "x", &[n], inputs, &y);
    assert_eq!(shape, [n as i64]);
    // -0.0 >= 0 holds; NaN compares false, so -1 (as the runtime's threshold test).
    assert_eq!(out, [-1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0]);
}

/// Which spec layer a node or initializer name belongs to: the part before the last `/`.
fn owner(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |(layer, _)| layer)
}

#[test]
fn exported_graph_is_well_formed_and_named_after_the_spec() {
    let (_, config) = support::test_configs().swap_remove(3);
    let file = BnasFile::from_bytes(support::random_bnas(&config, 11)).unwrap();
    let spec = config.spec().unwrap();
    let model = super::to_onnx(&file).unwrap();
    assert_eq!((model.ir_version, model.opset_import[0].version), (8, 17));
    assert_eq!(model.producer_name, "bnas-export");
    let graph = model.graph.as_ref().unwrap();
    assert_eq!(graph.name, config.name);

    // Every value is defined once, before it is read.
    let mut defined: HashSet<&str> = graph.input.iter().map(|v| v.name.as_str()).collect();
    for init in &graph.initializer {
        assert!(defined.insert(&init.name), "initializer {} defined twice", init.name);
        let numel: i64 = init.dims.iter().product();
        let width = if init.data_type == DataType::INT64 as i32 { 8 } else { 4 };
        assert_eq!(init.raw_data.len() as i64, numel * width, "{}", init.name);
    }
    let mut node_names = HashSet::new();
    for node in &graph.node {
        assert!(node_names.insert(&node.name), "node {} twice", node.name);
        for input in &node.input {
            assert!(defined.contains(input.as_str()), "{} reads {input} before it is defined", node.name);
        }
        for output in &node.output {
            assert!(defined.insert(output), "{output} defined twice");
        }
    }
    assert_eq!(graph.output[0].name, "logits");
    assert!(defined.contains("logits"));

    // Names: every node and initializer belongs to a spec layer (or the shared constants).
    let layer_names: HashSet<&str> = spec.layers.iter().map(|l| l.name.as_str()).collect();
    for name in graph.node.iter().map(|n| &n.name).chain(graph.initializer.iter().map(|i| &i.name)) {
        let owner = owner(name);
        assert!(layer_names.contains(owner) || owner == "sign" || name == "batch_size", "{name}");
    }
    // Every live layer but the classifier outputs a value named after it; dead ones are absent.
    let last = spec.layers.len() - 1;
    for (id, layer) in spec.layers.iter().enumerate().skip(1) {
        match layer.liveness {
            Liveness::Live if id != last => assert!(defined.contains(layer.name.as_str()), "{}", layer.name),
            Liveness::Dead => assert!(!defined.contains(layer.name.as_str()), "{}", layer.name),
            _ => {}
        }
    }
    // One binarization per binarizing conv; one Conv per live conv; no ONNX Sign anywhere.
    let mut ops: HashMap<&str, usize> = HashMap::new();
    for node in &graph.node {
        *ops.entry(node.op_type.as_str()).or_default() += 1;
    }
    let live_convs: Vec<_> = spec.live_layers().filter(|l| matches!(l.op, LayerOp::Conv(_))).collect();
    let binarizing = live_convs.iter().filter(|l| l.precision.binarizes_input()).count();
    assert_eq!(ops.get("Where").copied().unwrap_or(0), binarizing);
    assert_eq!(ops.get("Conv").copied().unwrap_or(0), live_convs.len());
    assert!(!ops.contains_key("Sign"));
    // This genotype has statically zero parts that a concat and a conv read.
    assert!(ops.get("ConstantOfShape").copied().unwrap_or(0) > 0, "{ops:?}");
    assert!(ops.contains_key("MaxPool") && ops.contains_key("AveragePool"), "{ops:?}");
    let avg = graph.node.iter().find(|n| n.op_type == "AveragePool").unwrap();
    let count_pad = avg.attribute.iter().find(|a| a.name == "count_include_pad").unwrap();
    assert_eq!(count_pad.i, 0);

    let props: HashMap<&str, &str> =
        model.metadata_props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
    assert_eq!(props["producer"], format!("bnas-export {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(props["bnas.model"], config.name);
    assert_eq!(bnas_models::Genotype::from_json(props["bnas.genotype"]).unwrap(), config.genotype);
    assert_eq!(props["bnas.bn_eps"], "0.00001");
}

//! Shape inference, cost, precision, pruning and memory of the network spec, against
//! hand-computed values.

use bnas_models::{
    registry, CostKind, Genotype, InputShape, Liveness, NetworkConfig, NetworkSpec, Overrides, Precision,
    Shape, SpecError, Topology,
};

fn named(model: &str) -> NetworkSpec {
    NetworkConfig::named(model).unwrap().spec().unwrap()
}

fn with(model: &str, overrides: Overrides) -> Result<NetworkSpec, SpecError> {
    NetworkConfig::resolve(model, &overrides)?.spec()
}

fn shape(spec: &NetworkSpec, layer: &str) -> Shape {
    spec.layer(layer).unwrap_or_else(|| panic!("no layer {layer}")).output
}

fn s(channels: usize, height: usize, width: usize) -> Shape {
    Shape { channels, height, width }
}

#[test]
fn cifar_shapes_at_fashion_mnist_size() {
    let input = Some(InputShape { channels: 1, height: 28, width: 28 });
    let spec = with("bnas-a", Overrides { input, ..Overrides::default() }).unwrap();
    assert_eq!(spec.config.name, "bnas-a-custom");
    assert_eq!(shape(&spec, "stem"), s(108, 28, 28));
    assert_eq!(shape(&spec, "cells.5.residual"), s(144, 28, 28));
    // Reductions at L/3 = 6 and 2L/3 = 13 halve the map and double C.
    assert_eq!(shape(&spec, "cells.6.preprocess0"), s(72, 28, 28));
    assert_eq!(shape(&spec, "cells.6._ops.0"), s(72, 14, 14));
    assert_eq!(shape(&spec, "cells.6.preprocess_res"), s(288, 14, 14));
    assert_eq!(shape(&spec, "cells.7.preprocess0"), s(72, 14, 14)); // 3x3 stride 2 after a reduction
    assert_eq!(shape(&spec, "cells.13.residual"), s(576, 7, 7));
    assert_eq!(shape(&spec, "cells.19.residual"), s(576, 7, 7));
    assert_eq!(spec.output(), s(10, 1, 1));
    // One input channel: the stem BN has 2 params, the stem conv 108*1*3*3.
    assert_eq!(spec.layer("stem").unwrap().param_count(), 2 + 108 * 9);
}

#[test]
fn imagenet_shapes() {
    let spec = named("bnas-d");
    assert_eq!(shape(&spec, "stem0.0"), s(32, 112, 112));
    assert_eq!(shape(&spec, "stem0.3"), s(64, 56, 56));
    assert_eq!(shape(&spec, "stem1.1"), s(64, 28, 28));
    assert_eq!(shape(&spec, "cells.0.preprocess0"), s(64, 28, 28)); // 3x3 stride 2 on stem0
    assert_eq!(shape(&spec, "cells.3.residual"), s(256, 28, 28));
    assert_eq!(shape(&spec, "cells.4.preprocess0_red"), s(128, 28, 28));
    assert_eq!(shape(&spec, "cells.4.residual"), s(512, 14, 14));
    assert_eq!(shape(&spec, "cells.11.residual"), s(1024, 7, 7));
    assert_eq!(spec.output(), s(1000, 1, 1));
    // ImageNet BNs are all affine; CIFAR's stride-2 preprocess0 is not.
    assert!(spec.params().any(|p| p.name == "cells.5.preprocess0.bn.weight"));
    let cifar = named("bnas-a");
    assert!(cifar.params().any(|p| p.name == "cells.7.preprocess0.bn.running_mean"));
    assert!(!cifar.params().any(|p| p.name == "cells.7.preprocess0.bn.weight"));
}

#[test]
fn impossible_sizes_are_typed_errors() {
    let input = |c, h, w| Some(InputShape { channels: c, height: h, width: w });
    // 30 -> 15 at cell 6; cell 13 would reduce 15: stride-2 ops give 8, the projection 7.
    match with("bnas-a", Overrides { input: input(3, 30, 30), ..Overrides::default() }) {
        Err(SpecError::OddReduction { cell: 13, height: 15, width: 15 }) => {}
        other => panic!("expected OddReduction at cell 13, got {other:?}"),
    }
    match with("bnas-d", Overrides { input: input(3, 256, 256), ..Overrides::default() }) {
        Err(SpecError::FinalMap { height: 8, width: 8 }) => {}
        other => panic!("expected FinalMap, got {other:?}"),
    }
    assert!(matches!(
        with("bnas-a", Overrides { layers: Some(2), ..Overrides::default() }),
        Err(SpecError::TooSmall { field: "layers", min: 3, value: 2 })
    ));
    assert!(matches!(
        with("bnas-d", Overrides { channels: Some(1), ..Overrides::default() }),
        Err(SpecError::TooSmall { field: "channels", .. })
    ));
    assert!(matches!(
        with("bnas-a", Overrides { classes: Some(0), ..Overrides::default() }),
        Err(SpecError::TooSmall { field: "classes", .. })
    ));
    assert!(matches!("3x32".parse::<InputShape>(), Err(SpecError::InputShape(_))));
    assert!(matches!("3x0x32".parse::<InputShape>(), Err(SpecError::InputShape(_))));
    assert!(matches!("mnist".parse::<Topology>(), Err(SpecError::UnknownTopology(_))));
    assert!(matches!(
        NetworkConfig::resolve("bnas-z", &Overrides::default()),
        Err(SpecError::UnknownModel { .. })
    ));
}

#[test]
fn custom_genotypes_take_their_topology_defaults() {
    let dense = registry::cell("dense").unwrap();
    let overrides = Overrides { topology: Some(Topology::Imagenet), ..Overrides::default() };
    let config = NetworkConfig::resolve("dense", &overrides).unwrap();
    assert_eq!((config.layers, config.channels, config.classes), (12, 64, 1000));
    assert_eq!(config.spec().unwrap().param_count(), named("bnas-d").param_count());
    let config = NetworkConfig::custom("mine", Topology::Cifar, dense);
    assert_eq!(config.input, InputShape { channels: 3, height: 32, width: 32 });
}

#[test]
fn hand_computed_layer_costs() {
    let spec = named("bnas-a");
    let stem = spec.layer("stem").unwrap();
    assert_eq!(stem.count(CostKind::FloatMac), 108 * 32 * 32 * 3 * 3 * 3);
    let dil = spec.layer("cells.0._ops.1").unwrap(); // bin_dil_conv_3x3, C=36 at 32x32
    assert_eq!(dil.count(CostKind::BinaryMac), 36 * 32 * 32 * 36 * 9);
    assert_eq!(dil.count(CostKind::FloatMac), 0);
    let res = spec.layer("cells.6.preprocess_res").unwrap(); // BN(144) + conv 144->288 k2 s2 + bias
    assert_eq!(res.param_count(), 2 * 144 + 288 * 144 * 4 + 288);
    assert_eq!(res.count(CostKind::FloatMac), 288 * 16 * 16 * 144 * 4);
    let classifier = spec.layer("classifier").unwrap();
    assert_eq!(classifier.count(CostKind::FloatMac), 576 * 10);
    assert_eq!(
        spec.ops(),
        spec.total(CostKind::FloatMac) as f64 + spec.total(CostKind::BinaryMac) as f64 / 64.0
    );
}

#[test]
fn default_precision_rule() {
    for model in registry::MODELS {
        let spec = named(model.name);
        for layer in spec.layers.iter().filter(|l| l.conv().is_some()) {
            let float = layer.name.starts_with("stem") || layer.name.ends_with("preprocess_res");
            let expected = if float { Precision::Float } else { Precision::Binary };
            assert_eq!(layer.precision, expected, "{} {}", model.name, layer.name);
        }
        assert_eq!(spec.layer("classifier").unwrap().precision, Precision::Float);
    }
}

#[test]
fn reference_compat_reproduces_the_index_quirk() {
    // Two projections (cells 6 and 13), so the reference's last two convs keep float weights.
    let compat =
        |model: &str| with(model, Overrides { reference_compat: true, ..Overrides::default() }).unwrap();
    let names = |spec: &NetworkSpec| -> Vec<String> {
        spec.layers
            .iter()
            .filter(|l| l.precision == Precision::BinaryInputFloatWeight)
            .map(|l| l.name.clone())
            .collect()
    };
    let a = compat("bnas-a");
    assert_eq!(names(&a), ["cells.19._ops.1", "cells.19._ops.2"]);
    let d = compat("bnas-d");
    assert_eq!(names(&d), ["cells.11._ops.6", "cells.11._ops.7"]);
    // Their MACs move from binary to float; params do not change.
    let plain = named("bnas-a");
    let moved = 144 * 8 * 8 * 144 * 9 * 2;
    assert_eq!(a.total(CostKind::FloatMac), plain.total(CostKind::FloatMac) + moved);
    assert_eq!(a.total(CostKind::BinaryMac), plain.total(CostKind::BinaryMac) - moved);
    assert_eq!(a.param_count(), plain.param_count());
    assert!(a.layer("cells.19._ops.1").unwrap().precision.binarizes_input());
}

#[test]
fn zeroise_pruning_of_bnas_a() {
    let spec = named("bnas-a");
    let liveness = |name: &str| spec.layer(name).unwrap().liveness;
    for cell in [1, 6, 19] {
        assert_eq!(liveness(&format!("cells.{cell}.nodes.4")), Liveness::Zero, "cell {cell}");
        assert_eq!(liveness(&format!("cells.{cell}.nodes.5")), Liveness::Zero, "cell {cell}");
        assert_eq!(liveness(&format!("cells.{cell}.nodes.2")), Liveness::Live, "cell {cell}");
        assert_eq!(liveness(&format!("cells.{cell}.concat")), Liveness::Live, "cell {cell}");
    }
    assert_eq!(liveness("cells.6.preprocess1"), Liveness::Dead);
    assert_eq!(liveness("cells.13.preprocess1"), Liveness::Dead);
    assert_eq!(liveness("cells.7.preprocess1"), Liveness::Live);
    let dead: Vec<&str> =
        spec.layers.iter().filter(|l| l.liveness == Liveness::Dead).map(|l| l.name.as_str()).collect();
    assert_eq!(dead, ["cells.6.preprocess1", "cells.13.preprocess1"]);
    // Dead MACs leave the totals: 144 -> 72 channels 1x1 at 32x32, and 288 -> 144 at 16x16.
    let all: u64 = spec.layers.iter().map(|l| l.count(CostKind::BinaryMac)).sum();
    assert_eq!(all - spec.total(CostKind::BinaryMac), 72 * 32 * 32 * 144 + 144 * 16 * 16 * 288);
    // The dense cell has no Zeroise: nothing is pruned.
    assert!(named("bnas-d").layers.iter().all(|l| l.liveness == Liveness::Live));
}

/// A 3-cell CIFAR network, C=4, with the given normal-cell edges and a fixed reduction cell that
/// uses every non-Zeroise op.
fn tiny_network(normal_edges: &str) -> NetworkSpec {
    let text = format!(
        "Genotype(normal=[{normal_edges}], normal_concat=range(2, 6), \
         reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('bin_conv_3x3', 2), \
         ('max_pool_3x3', 0), ('avg_pool_3x3', 3), ('max_pool_3x3', 0), ('bin_dil_conv_5x5', 4)], \
         reduce_concat=range(2, 6))"
    );
    let genotype = Genotype::from_reference(&text).unwrap();
    NetworkConfig { layers: 3, channels: 4, ..NetworkConfig::custom("t", Topology::Cifar, genotype) }
        .spec()
        .unwrap()
}

#[test]
fn a_conv_on_a_zero_node_stays_live() {
    // Node 4 is all-Zeroise; node 5 convolves it. BN + sign turn zeros into a constant, so the
    // conv is computed, on a zero input.
    let spec = tiny_network(
        "('bin_conv_3x3', 1), ('bin_conv_3x3', 0), ('bin_conv_3x3', 1), ('none', 2), \
         ('none', 2), ('none', 3), ('bin_conv_3x3', 4), ('none', 0)",
    );
    let liveness = |name: &str| spec.layer(name).unwrap().liveness;
    assert_eq!(liveness("cells.0.nodes.4"), Liveness::Zero);
    assert_eq!(liveness("cells.0._ops.6"), Liveness::Live);
    assert_eq!(liveness("cells.0._ops.7"), Liveness::Zero);
    assert_eq!(liveness("cells.0.nodes.5"), Liveness::Live);
    // L = 3 puts reductions at cells 1 and 2, back to back.
    assert_eq!(shape(&spec, "cells.2.preprocess0"), s(16, 16, 16)); // stride 2 on cell 0 (32x32)
    assert_eq!(shape(&spec, "cells.2.residual"), s(64, 8, 8));
    // avg and max pools keep size at stride 1; the dilated 5x5 (pad 4) too.
    assert_eq!(shape(&spec, "cells.1._ops.5"), s(8, 16, 16));
    assert_eq!(shape(&spec, "cells.1._ops.7"), s(8, 16, 16));
}

#[test]
fn activation_memory() {
    let spec = named("bnas-a");
    let id = |name: &str| spec.layers.iter().position(|l| l.name == name).unwrap();
    assert_eq!(spec.activation_bytes(id("stem")), 4 * 108 * 32 * 32);
    // 108 channels pack into 2 u64 words per pixel.
    assert_eq!(spec.packed_input_bytes(id("cells.0.preprocess0")), 2 * 8 * 32 * 32);
    assert_eq!(spec.packed_input_bytes(id("stem")), 0);
    assert_eq!(spec.activation_bytes(id("cells.0.nodes.4")), 0); // statically zero
    assert_eq!(spec.activation_bytes(id("cells.6.preprocess1")), 0); // dead
    let peak = spec.peak_activation_bytes();
    for (i, layer) in spec.layers.iter().enumerate().filter(|(_, l)| !l.pruned()) {
        let working: u64 = layer.inputs.iter().map(|&j| spec.activation_bytes(j)).sum::<u64>()
            + spec.activation_bytes(i)
            + spec.packed_input_bytes(i);
        assert!(peak >= working, "{}: peak {peak} < working set {working}", layer.name);
    }
    let everything: u64 = (0..spec.layers.len()).map(|i| spec.activation_bytes(i)).sum();
    assert!(peak < everything / 4, "a sequential schedule frees as it goes");
}

#[test]
fn configs_round_trip_through_json() {
    // The `.bnas` graph section and trainer checkpoints store these.
    for model in registry::MODELS {
        let config = NetworkConfig::named(model.name).unwrap();
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<NetworkConfig>(&text).unwrap(), config);
        // The spec itself is rebuilt from the config, never stored: same config, same spec.
        let rebuilt = serde_json::from_str::<NetworkConfig>(&text).unwrap().spec().unwrap();
        assert_eq!(rebuilt, config.spec().unwrap());
    }
    // A stored genotype is validated on read, like any other.
    let bad =
        serde_json::to_string(&NetworkConfig::named("bnas-a").unwrap()).unwrap().replacen("none", "zero", 1);
    let err = serde_json::from_str::<NetworkConfig>(&bad).unwrap_err().to_string();
    assert!(err.contains("unknown op 'zero'"), "{err}");
}

#[test]
fn absurd_sizes_are_typed_errors_not_overflows() {
    let big = |overrides: Overrides| with("bnas-a", overrides);
    assert!(matches!(
        big(Overrides { channels: Some(usize::MAX / 2), ..Overrides::default() }),
        Err(SpecError::TooLarge { field: "channels", .. })
    ));
    assert!(matches!(
        big(Overrides { layers: Some(1_000_000), ..Overrides::default() }),
        Err(SpecError::TooLarge { field: "layers", .. })
    ));
    let input = Some(InputShape { channels: 3, height: 16384, width: 16384 });
    assert!(matches!(
        big(Overrides { channels: Some(1 << 16), input, ..Overrides::default() }),
        Err(SpecError::CostOverflow { .. })
    ));
}

#[test]
fn pools_of_zeros_are_zero_and_zero_inputs_of_convs_take_memory() {
    // Normal node 3 = none(2) + none(0) is zero; node 4 max-pools it (zero too); node 5 runs a
    // binary conv on node 4, which must then exist as a zero tensor.
    let spec = tiny_network(
        "('bin_conv_3x3', 1), ('bin_conv_3x3', 0), ('none', 2), ('none', 0), \
         ('max_pool_3x3', 3), ('avg_pool_3x3', 3), ('bin_conv_3x3', 4), ('none', 1)",
    );
    let id = |name: &str| spec.layers.iter().position(|l| l.name == name).unwrap();
    let liveness = |name: &str| spec.layers[id(name)].liveness;
    assert_eq!(liveness("cells.0.nodes.3"), Liveness::Zero);
    assert_eq!(liveness("cells.0._ops.4"), Liveness::Zero); // max pool of zeros
    assert_eq!(liveness("cells.0.nodes.4"), Liveness::Zero);
    assert_eq!(liveness("cells.0._ops.6"), Liveness::Live);
    assert_eq!(spec.activation_bytes(id("cells.0.nodes.4")), 4 * 4 * 32 * 32);
    assert_eq!(spec.activation_bytes(id("cells.0.nodes.3")), 0); // only pools and sums read it
}

#[test]
fn a_new_topology_brings_its_dataset_defaults() {
    let overrides = Overrides { topology: Some(Topology::Imagenet), ..Overrides::default() };
    let config = NetworkConfig::resolve("bnas-a", &overrides).unwrap();
    assert_eq!((config.input, config.classes), (Topology::Imagenet.default_input(), 1000));
    assert_eq!((config.layers, config.channels, config.name.as_str()), (20, 36, "bnas-a-custom"));
    config.spec().unwrap();
    let overrides = Overrides { topology: Some(Topology::Cifar), classes: Some(7), ..Overrides::default() };
    let config = NetworkConfig::resolve("bnas-d", &overrides).unwrap();
    assert_eq!((config.input.height, config.classes), (32, 7));
}

/// Peak memory by brute force, a second formulation: at each step, everything produced so far
/// that is read at this step or later (or is the network output), plus the step's packed input.
fn brute_force_peak(spec: &NetworkSpec) -> u64 {
    let n = spec.layers.len();
    let needed_at_or_after = |j: usize, step: usize| {
        j == step || j == n - 1 || spec.layers.iter().skip(step).any(|l| !l.pruned() && l.inputs.contains(&j))
    };
    (0..n)
        .filter(|&step| !spec.layers[step].pruned())
        .map(|step| {
            let held: u64 =
                (0..=step).filter(|&j| needed_at_or_after(j, step)).map(|j| spec.activation_bytes(j)).sum();
            held + spec.packed_input_bytes(step)
        })
        .max()
        .unwrap()
}

#[test]
fn peak_memory_agrees_with_brute_force() {
    for model in ["bnas-a", "bnas-d"] {
        let spec = named(model);
        assert_eq!(spec.peak_activation_bytes(), brute_force_peak(&spec), "{model}");
    }
}

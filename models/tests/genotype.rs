//! Genotypes: JSON and reference-notation round trips, and typed errors for malformed input.

use bnas_models::{registry, CellKind, Edge, Genotype, GenotypeError, OpKind};

/// The dense cell exactly as the reference's `genotypes.py` writes it (`latest_cell`).
const REFERENCE_DENSE: &str = "latest_cell =  Genotype(normal=[('bin_conv_3x3', 1), ('bin_dil_conv_3x3', 0), ('bin_conv_3x3', 1), ('bin_conv_3x3', 2), ('bin_conv_3x3', 2), ('bin_dil_conv_3x3', 1), ('bin_dil_conv_3x3', 1), ('bin_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('bin_conv_3x3', 2), ('max_pool_3x3', 0), ('bin_dil_conv_3x3', 3), ('max_pool_3x3', 0), ('bin_dil_conv_3x3', 4)], reduce_concat=range(2, 6))";

fn dense() -> Genotype {
    registry::cell("dense").unwrap()
}

#[test]
fn reference_text_parses_to_the_spec_cell() {
    let g = Genotype::from_reference(REFERENCE_DENSE).unwrap();
    assert_eq!(g, dense());
    // Reference §6, hand-checked: normal node 3 = (bin_conv_3x3, 1) + (bin_conv_3x3, 2).
    assert_eq!(g.cell(CellKind::Normal)[2], Edge { op: OpKind::BinConv3x3, input: 1 });
    assert_eq!(g.cell(CellKind::Normal)[3], Edge { op: OpKind::BinConv3x3, input: 2 });
    assert_eq!(g.cell(CellKind::Reduce)[7], Edge { op: OpKind::BinDilConv3x3, input: 4 });
}

#[test]
fn reference_notation_round_trips() {
    for name in registry::cell_names() {
        let g = registry::cell(name).unwrap();
        let text = g.to_reference();
        assert_eq!(Genotype::from_reference(&text).unwrap(), g, "{name}");
        assert_eq!(Genotype::parse(&text).unwrap(), g, "{name}");
    }
    // The printer writes what Python prints for the namedtuple.
    assert_eq!(dense().to_reference(), REFERENCE_DENSE.trim_start_matches("latest_cell =  "));
}

#[test]
fn json_round_trips_and_reads_the_namedtuple_shape() {
    for name in registry::cell_names() {
        let g = registry::cell(name).unwrap();
        assert_eq!(Genotype::from_json(&g.to_json()).unwrap(), g, "{name}");
        assert_eq!(Genotype::parse(&g.to_json()).unwrap(), g, "{name}");
    }
    let json = r#"{"normal": [["none", 1], ["bin_dil_conv_3x3", 0], ["bin_conv_3x3", 1], ["none", 2],
        ["none", 2], ["none", 3], ["none", 3], ["none", 4]], "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["none", 1], ["max_pool_3x3", 0], ["none", 2],
        ["none", 3], ["none", 2], ["none", 3], ["none", 4]], "reduce_concat": [2, 3, 4, 5]}"#;
    assert_eq!(Genotype::from_json(json).unwrap(), registry::cell("zeroise").unwrap());
}

#[test]
fn notation_variants_users_paste() {
    // Lists instead of range, double quotes, other field order, line breaks, a log prefix.
    let text = "2020-03-01 genotype = Genotype(\n  reduce=[[\"max_pool_3x3\", 0], (\"max_pool_3x3\", 1), ('max_pool_3x3', 0), ('bin_conv_3x3', 2),\n ('max_pool_3x3', 0), ('bin_dil_conv_3x3', 3), ('max_pool_3x3', 0), ('bin_dil_conv_3x3', 4),],\n  normal=[('bin_conv_3x3', 1), ('bin_dil_conv_3x3', 0), ('bin_conv_3x3', 1), ('bin_conv_3x3', 2), ('bin_conv_3x3', 2), ('bin_dil_conv_3x3', 1), ('bin_dil_conv_3x3', 1), ('bin_conv_3x3', 0)],\n  normal_concat=[2, 3, 4, 5], reduce_concat=range(2, 6))";
    assert_eq!(Genotype::from_reference(text).unwrap(), dense());
}

fn replace_first(text: &str, from: &str, to: &str) -> String {
    text.replacen(from, to, 1)
}

#[test]
fn unknown_op_is_named_with_its_place() {
    let text = replace_first(REFERENCE_DENSE, "'bin_conv_3x3', 2", "'sep_conv_3x3', 2");
    match Genotype::from_reference(&text).unwrap_err() {
        GenotypeError::UnknownOp { cell, edge, op, .. } => {
            assert_eq!((cell, edge, op.as_str()), (CellKind::Normal, 3, "sep_conv_3x3"));
        }
        other => panic!("expected UnknownOp, got {other}"),
    }
}

#[test]
fn forward_edge_is_rejected() {
    // Node 2 (edges 0 and 1) may read states 0 and 1 only.
    let text = replace_first(REFERENCE_DENSE, "('bin_dil_conv_3x3', 0)", "('bin_dil_conv_3x3', 2)");
    match Genotype::from_reference(&text).unwrap_err() {
        GenotypeError::ForwardEdge { cell, edge, node, input } => {
            assert_eq!((cell, edge, node, input), (CellKind::Normal, 1, 2, 2));
        }
        other => panic!("expected ForwardEdge, got {other}"),
    }
    let json =
        dense().to_json().replacen("\"bin_dil_conv_3x3\",\n      4", "\"bin_dil_conv_3x3\",\n      -1", 1);
    assert!(
        matches!(Genotype::from_json(&json), Err(GenotypeError::ForwardEdge { input: -1, node: 5, .. })),
        "{json}"
    );
}

#[test]
fn wrong_edge_count_is_rejected() {
    let text = replace_first(REFERENCE_DENSE, "('bin_conv_3x3', 0)], normal_concat", "], normal_concat");
    let text = text.replacen(", ], normal_concat", "], normal_concat", 1);
    assert!(matches!(
        Genotype::from_reference(&text),
        Err(GenotypeError::EdgeCount { cell: CellKind::Normal, found: 7 })
    ));
}

#[test]
fn other_concats_are_rejected() {
    let text = REFERENCE_DENSE.replacen("reduce_concat=range(2, 6)", "reduce_concat=range(2, 5)", 1);
    match Genotype::from_reference(&text).unwrap_err() {
        GenotypeError::Concat { cell, found } => assert_eq!((cell, found), (CellKind::Reduce, vec![2, 3, 4])),
        other => panic!("expected Concat, got {other}"),
    }
    let huge = REFERENCE_DENSE.replacen("normal_concat=range(2, 6)", "normal_concat=range(0, 9999999999)", 1);
    assert!(matches!(
        Genotype::from_reference(&huge),
        Err(GenotypeError::Concat { cell: CellKind::Normal, .. })
    ));
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let err = Genotype::from_reference("Genotype(normal=[('none' 1)])").unwrap_err();
    match err {
        GenotypeError::Notation { line, column, ref expected, .. } => {
            assert_eq!((line, column, expected.as_str()), (1, 26, "','")); // at the "1"
        }
        ref other => panic!("expected Notation, got {other}"),
    }
    assert!(matches!(
        Genotype::from_reference("Genotype(\n  normal=[],\n  nromal_concat=range(2, 6))"),
        Err(GenotypeError::Notation { line: 3, column: 3, .. })
    ));
    assert!(matches!(Genotype::from_reference("Genotype(normal=[]"), Err(GenotypeError::Notation { .. })));
    assert!(matches!(Genotype::from_json("{\"normal\": ["), Err(GenotypeError::Json { line: 1, .. })));
    // A missing field is named.
    let err = Genotype::from_reference("Genotype(normal=[])").unwrap_err().to_string();
    assert!(err.contains("'reduce' field"), "{err}");
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        "(",
        "Genotype",
        "Genotype(normal=",
        "Genotype(normal=[('",
        "{",
        "[]",
        "Genotype(normal=[(\"\u{e9}\u{e9}",
        "Genotype(normal=[('none', -)",
    ] {
        assert!(Genotype::parse(text).is_err(), "{text:?}");
    }
}

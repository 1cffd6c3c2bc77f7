//! Genotype derivation from the search's architecture weights (reference §4), and the statistics
//! logged to show the search moving.
//!
//! Rows are the 14 edges of a cell in the supernet's order (node 2: states 0, 1; node 3:
//! states 0, 1, 2; ...), columns the 7 ops in [`OpKind::ALL`] order (Zeroise first).

use bnas_models::{Edge, OpKind};

/// Intermediate nodes per cell.
pub const NODES: usize = 4;
/// Supernet edges per cell: 2 + 3 + 4 + 5.
pub const SUPERNET_EDGES: usize = 14;
/// Ops per edge.
pub const OPS: usize = OpKind::ALL.len();

/// One cell's derived edges: per node, the 2 incoming edges with the largest op weight
/// (Zeroise counts, unlike DARTS), each with its argmax op (Zeroise may win). The Zeroise column
/// is divided by `gamma` first (1 for the plain genotype, 3 for the transferable one); this is
/// the reference's intent; its code divides the first edge's row instead (reference §4). Ties go to
/// the lower state and the lower op index, as the reference's stable sort and strict `>` do.
pub fn derive_cell(weights: &[[f32; OPS]], gamma: f32) -> Vec<Edge> {
    let mut edges = Vec::with_capacity(2 * NODES);
    let mut start = 0;
    for node in 0..NODES {
        let inputs = node + 2;
        let rows: Vec<[f32; OPS]> = weights[start..start + inputs]
            .iter()
            .map(|row| {
                let mut row = *row;
                row[0] /= gamma;
                row
            })
            .collect();
        let strength = |j: usize| rows[j].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut order: Vec<usize> = (0..inputs).collect();
        order.sort_by(|&a, &b| strength(b).total_cmp(&strength(a)));
        for &input in &order[..2] {
            let best = (0..OPS).fold(0, |best, k| if rows[input][k] > rows[input][best] { k } else { best });
            edges.push(Edge { op: OpKind::ALL[best], input });
        }
        start += inputs;
    }
    edges
}

/// Mean entropy (nats) of the rows of `weights` (each a probability vector).
pub fn mean_entropy(weights: &[[f32; OPS]]) -> f64 {
    let total: f64 = weights
        .iter()
        .map(|row| {
            row.iter().map(|&p| if p > 0.0 { -(p as f64) * (p as f64).ln() } else { 0.0 }).sum::<f64>()
        })
        .sum();
    total / weights.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weight row with `value` at op `k` and `rest` elsewhere.
    fn row(k: usize, value: f32, rest: f32) -> [f32; OPS] {
        let mut r = [rest; OPS];
        r[k] = value;
        r
    }

    fn hand_set() -> Vec<[f32; OPS]> {
        vec![
            // node 2 (states 0, 1): state 1's Zeroise (0.5) is the strongest weight.
            row(5, 0.3, 0.1),
            row(0, 0.5, 0.05),
            // node 3 (states 0, 1, 2): state 2 bin_conv_5x5 0.4, state 0 zeroise 0.35 / avg 0.3.
            {
                let mut r = row(0, 0.35, 0.05);
                r[2] = 0.3;
                r
            },
            row(1, 0.2, 0.1),
            row(6, 0.4, 0.1),
            // node 4 (states 0..3): state 3 max_pool 0.6, state 1 bin_dil_conv_3x3 0.5.
            row(2, 0.25, 0.1),
            row(3, 0.5, 0.05),
            row(4, 0.2, 0.1),
            row(1, 0.6, 0.05),
            // node 5 (states 0..4): all Zeroise-dominated except state 4 (bin_conv_3x3 0.45).
            row(0, 0.9, 0.01),
            row(0, 0.8, 0.02),
            row(0, 0.3, 0.1),
            row(0, 0.2, 0.1),
            row(5, 0.45, 0.1),
        ]
    }

    #[test]
    fn derivation_on_hand_set_weights() {
        let got = derive_cell(&hand_set(), 1.0);
        let e = |op, input| Edge { op, input };
        assert_eq!(
            got,
            [
                // node 2: state 1 (zeroise 0.5) ranks above state 0 (0.3): Zeroise counts.
                e(OpKind::None, 1),
                e(OpKind::BinConv3x3, 0),
                // node 3: state 2 (0.4) then state 0 (0.35, op zeroise).
                e(OpKind::BinConv5x5, 2),
                e(OpKind::None, 0),
                // node 4: state 3 (0.6) then state 1 (0.5).
                e(OpKind::MaxPool3x3, 3),
                e(OpKind::BinDilConv3x3, 1),
                // node 5: state 0 (0.9) then state 1 (0.8), both zeroise.
                e(OpKind::None, 0),
                e(OpKind::None, 1),
            ]
        );
    }

    #[test]
    fn gamma_divides_the_zeroise_column() {
        let got = derive_cell(&hand_set(), 3.0);
        let e = |op, input| Edge { op, input };
        // node 2: state 1 zeroise 0.5/3 = 0.167 < its 0.05s? no: its row becomes
        // (0.167, 0.05, ...): strength 0.167 < state 0's 0.3, so state 0 first; state 1 keeps
        // zeroise as argmax (0.167 > 0.05).
        assert_eq!(got[0..2], [e(OpKind::BinConv3x3, 0), e(OpKind::None, 1)]);
        // node 3: state 0's zeroise 0.35 -> 0.117 < avg_pool 0.3: its op becomes avg_pool_3x3,
        // strength 0.3 still second to state 2 (0.4) and above state 1 (0.2).
        assert_eq!(got[2..4], [e(OpKind::BinConv5x5, 2), e(OpKind::AvgPool3x3, 0)]);
        // node 5: zeroise 0.9 -> 0.3, 0.8 -> 0.267; state 4's 0.45 now leads, then state 0 (0.3).
        assert_eq!(got[6..8], [e(OpKind::BinConv3x3, 4), e(OpKind::None, 0)]);
    }

    #[test]
    fn entropy_of_uniform_and_one_hot_rows() {
        let uniform = [[1.0 / OPS as f32; OPS]];
        assert!((mean_entropy(&uniform) - (OPS as f64).ln()).abs() < 1e-6);
        assert_eq!(mean_entropy(&[row(0, 1.0, 0.0)]), 0.0);
    }
}

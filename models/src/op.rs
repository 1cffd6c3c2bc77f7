//! The seven operations of the BNAS search space (reference §2).

use std::fmt;

/// One operation of the BNAS space; the same list serves normal and reduction cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Zeroise: outputs zeros (strided when stride 2). A real op in final architectures.
    None,
    /// Max pool 3x3, padding 1.
    MaxPool3x3,
    /// Average pool 3x3, padding 1, padded positions not counted.
    AvgPool3x3,
    /// Binary op, kernel 3, dilation 2, padding 2.
    BinDilConv3x3,
    /// Binary op, kernel 5, dilation 2, padding 4.
    BinDilConv5x5,
    /// Binary op, kernel 3, padding 1.
    BinConv3x3,
    /// Binary op, kernel 5, padding 2.
    BinConv5x5,
}

impl OpKind {
    /// All ops, in the reference's `PRIMITIVES` order (the order of the search's alpha columns).
    pub const ALL: [OpKind; 7] = [
        OpKind::None,
        OpKind::MaxPool3x3,
        OpKind::AvgPool3x3,
        OpKind::BinDilConv3x3,
        OpKind::BinDilConv5x5,
        OpKind::BinConv3x3,
        OpKind::BinConv5x5,
    ];

    /// The reference's name of the op, as used in genotypes.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::None => "none",
            OpKind::MaxPool3x3 => "max_pool_3x3",
            OpKind::AvgPool3x3 => "avg_pool_3x3",
            OpKind::BinDilConv3x3 => "bin_dil_conv_3x3",
            OpKind::BinDilConv5x5 => "bin_dil_conv_5x5",
            OpKind::BinConv3x3 => "bin_conv_3x3",
            OpKind::BinConv5x5 => "bin_conv_5x5",
        }
    }

    /// Looks an op up by its reference name.
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Kernel size and dilation of a binary conv op; `None` for pools and Zeroise.
    /// Padding is always `dilation * (kernel - 1) / 2`, so stride 1 keeps the size.
    pub fn conv_geometry(self) -> Option<(usize, usize)> {
        match self {
            OpKind::BinConv3x3 => Some((3, 1)),
            OpKind::BinConv5x5 => Some((5, 1)),
            OpKind::BinDilConv3x3 => Some((3, 2)),
            OpKind::BinDilConv5x5 => Some((5, 2)),
            OpKind::None | OpKind::MaxPool3x3 | OpKind::AvgPool3x3 => None,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

//! Canonical parameter names in a VarStore: tch joins path segments with '.', so the name
//! `cells.3._ops.1.op.0.weight` is the path `cells / 3 / _ops / 1 / op / 0` and the variable
//! `weight`, and the VarStore's own names are then exactly the canonical ones.

use tch::nn;

/// The sub-path of `root` that holds `name`, and the variable's last segment.
pub fn path_for<'a, 'n>(root: &nn::Path<'a>, name: &'n str) -> (nn::Path<'a>, &'n str) {
    match name.rsplit_once('.') {
        Some((prefix, last)) => {
            (prefix.split('.').fold(root.clone(), |path, segment| path.sub(segment)), last)
        }
        None => (root.clone(), name),
    }
}

/// The sub-path of `root` for a dotted module prefix such as `cells.3.preprocess0.bn`.
pub fn sub_path<'a>(root: &nn::Path<'a>, prefix: &str) -> nn::Path<'a> {
    prefix.split('.').fold(root.clone(), |path, segment| path.sub(segment))
}

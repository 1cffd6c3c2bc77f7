//! Which steps of a plan may run at the same time. The plan is a sequence in which a slot is
//! reused once its last reader has run, so two steps next to each other are independent only
//! if neither reads what the other writes and they write different slots. A cell's ops, which
//! read only the cell's inputs and earlier nodes, usually are: at batch 1 a narrow network's
//! layers are too small to split across threads, but two of them fill two threads.

use crate::plan::Step;

/// The length of the run of steps at the start of `steps` that are pairwise independent, at
/// most `width` (at least 1 when `steps` is not empty).
pub(super) fn independent_run(steps: &[Step], width: usize) -> usize {
    let mut len = 1.min(steps.len());
    while len < width.min(steps.len()) {
        let next = &steps[len];
        if !steps[..len].iter().all(|step| independent(step, next)) {
            break;
        }
        len += 1;
    }
    len
}

/// Whether `a` and `b` may run in either order, or at once.
fn independent(a: &Step, b: &Step) -> bool {
    a.output != b.output && !a.inputs.contains(&b.output) && !b.inputs.contains(&a.output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnas_models::Shape;

    use crate::plan::StepOp;

    fn step(inputs: &[usize], output: usize) -> Step {
        Step {
            layer: 0,
            name: format!("{inputs:?}->{output}"),
            op: StepOp::Add,
            inputs: inputs.to_vec(),
            output,
            shape: Shape { channels: 1, height: 1, width: 1 },
            float_macs: 0,
            binary_macs: 0,
        }
    }

    #[test]
    fn runs_stop_at_a_dependency_or_a_reused_slot() {
        // Two ops of one node reading s0 and s1, then the node's sum of both.
        let cell = [step(&[0], 2), step(&[1], 3), step(&[2, 3], 4)];
        assert_eq!(independent_run(&cell, 2), 2);
        assert_eq!(independent_run(&cell, 8), 2, "the sum reads both ops");
        assert_eq!(independent_run(&cell[2..], 8), 1);
        // The second step writes the slot the first one reads last.
        assert_eq!(independent_run(&[step(&[0], 1), step(&[2], 0)], 2), 1);
        // Both write one slot.
        assert_eq!(independent_run(&[step(&[0], 1), step(&[2], 1)], 2), 1);
        // One thread: one step at a time.
        assert_eq!(independent_run(&cell, 1), 1);
        assert_eq!(independent_run(&[], 4), 0);
    }
}

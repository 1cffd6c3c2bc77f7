//! Slot planning: each computed output gets a slot of the arena, and a slot is reused once every
//! reader of its current value has run.

/// Index of an arena slot.
pub type SlotId = usize;

/// Assigns slots in execution order.
#[derive(Debug, Default)]
pub(super) struct SlotPlanner {
    /// Per-sample capacity of each slot.
    pub(super) capacity: Vec<usize>,
    free: Vec<SlotId>,
}

impl SlotPlanner {
    /// A slot for `len` values per sample: the smallest free slot that fits, else the largest
    /// free one grown to fit, else a new one.
    pub(super) fn allocate(&mut self, len: usize) -> SlotId {
        let fits =
            self.free.iter().copied().filter(|&s| self.capacity[s] >= len).min_by_key(|&s| self.capacity[s]);
        let chosen = fits.or_else(|| self.free.iter().copied().max_by_key(|&s| self.capacity[s]));
        match chosen {
            Some(slot) => {
                self.free.retain(|&s| s != slot);
                self.capacity[slot] = self.capacity[slot].max(len);
                slot
            }
            None => {
                self.capacity.push(len);
                self.capacity.len() - 1
            }
        }
    }

    /// Returns a slot to the pool.
    pub(super) fn release(&mut self, slot: SlotId) {
        self.free.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_released_slots_and_grows_the_largest() {
        let mut planner = SlotPlanner::default();
        let a = planner.allocate(10);
        let b = planner.allocate(20);
        planner.release(a);
        assert_eq!(planner.allocate(5), a);
        planner.release(b);
        let c = planner.allocate(30);
        assert_eq!(c, b);
        assert_eq!(planner.capacity, vec![10, 30]);
    }
}

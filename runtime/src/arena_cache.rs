//! The arenas kept between runs, for every backend. An arena is a backend's buffers for one
//! batch size (activation slots, packed inputs, scratch; on the GPU also the recorded
//! commands); a run takes the one of its batch size, or makes one, and gives it back.

use std::sync::Mutex;

/// Arenas kept by default, one per recent batch size (an eval's last, partial batch is one
/// more).
pub(crate) const KEPT_ARENAS: usize = 2;

/// Buffers made for one batch size.
pub(crate) trait Arena {
    /// The batch size they were made for.
    fn batch(&self) -> usize;
}

/// The most recently used arenas.
#[derive(Debug)]
pub(crate) struct ArenaCache<A> {
    kept: Mutex<Vec<A>>,
    limit: usize,
}

impl<A: Arena> ArenaCache<A> {
    /// An empty cache that keeps up to `limit` arenas.
    pub(crate) fn new(limit: usize) -> ArenaCache<A> {
        ArenaCache { kept: Mutex::new(Vec::new()), limit: limit.max(1) }
    }

    /// The kept arena of `batch`, or a new one from `make` (called without the lock held).
    pub(crate) fn take<E>(&self, batch: usize, make: impl FnOnce() -> Result<A, E>) -> Result<A, E> {
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match kept.iter().position(|a| a.batch() == batch) {
            Some(i) => Ok(kept.swap_remove(i)),
            None => {
                drop(kept);
                make()
            }
        }
    }

    /// Keeps `arena` for the next run, dropping the oldest beyond the limit.
    pub(crate) fn keep(&self, arena: A) {
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() >= self.limit {
            kept.remove(0);
        }
        kept.push(arena);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Arena for usize {
        fn batch(&self) -> usize {
            *self
        }
    }

    #[test]
    fn reuses_the_arena_of_a_batch_and_keeps_the_most_recent_two() {
        let cache = ArenaCache::new(KEPT_ARENAS);
        let made = |batch: usize| move || Ok::<usize, ()>(batch);
        let fail = || Err::<usize, ()>(());
        cache.keep(cache.take(1, made(1)).unwrap());
        assert_eq!(cache.take(1, fail), Ok(1), "batch 1 is reused");
        cache.keep(1);
        cache.keep(cache.take(4, made(4)).unwrap());
        cache.keep(cache.take(8, made(8)).unwrap());
        assert_eq!(cache.take(1, fail), Err(()), "the oldest was dropped");
        assert_eq!(cache.take(8, fail), Ok(8));
        assert_eq!(cache.take(4, fail), Ok(4));
    }
}

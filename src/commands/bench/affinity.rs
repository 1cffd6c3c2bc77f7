//! Pins the benchmark to as many CPUs as it has threads, so that every engine runs on the same
//! cores and no thread migrates between passes. A thread that moves to another core starts with
//! cold L1 and L2 caches: unpinned on a 2-vCPU VM, the runtime's single-thread latency was
//! bimodal (BNAS-D 13.5 or 17 ms from one process to the next); pinned, it is steady.

/// Restricts this thread, and every thread and child process it starts afterwards, to the first
/// `threads` CPUs it may run on, and returns them. `Ok(None)` where that is not possible: fewer
/// allowed CPUs than threads, or an OS without `sched_setaffinity`.
#[cfg(target_os = "linux")]
pub fn pin(threads: usize) -> std::io::Result<Option<Vec<usize>>> {
    // SAFETY: cpu_set_t is plain data, so all zeros is a valid (empty) set; the set pointers
    // and the size passed are those of local sets; pid 0 means the calling thread.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &allowed))
            .take(threads)
            .collect();
        if cpus.len() < threads {
            return Ok(None);
        }
        let mut chosen: libc::cpu_set_t = std::mem::zeroed();
        cpus.iter().for_each(|&cpu| libc::CPU_SET(cpu, &mut chosen));
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &chosen) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Some(cpus))
    }
}

/// Restricts this thread, and every thread and child process it starts afterwards, to the first
/// `threads` CPUs it may run on, and returns them. `Ok(None)` where that is not possible: fewer
/// allowed CPUs than threads, or an OS without `sched_setaffinity`.
#[cfg(not(target_os = "linux"))]
pub fn pin(_threads: usize) -> std::io::Result<Option<Vec<usize>>> {
    Ok(None)
}

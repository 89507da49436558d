//! The C allocator's setting for a server process.
//!
//! glibc's malloc gives threads up to eight arenas per core, and each arena keeps the memory
//! freed into it for its own later use. A server runs many short blocking tasks (blob reads
//! and writes, manifest decompression) on tokio's pool of up to hundreds of threads, spread
//! over all those arenas: each arena's high-water mark stays resident. In the 30-minute soak
//! test (BENCHMARKS.md) the heap in use stayed between 10 and 16 MB while the server's RSS
//! climbed from 40 to 93 MB over sixteen arenas. Two arenas, whatever the number of threads,
//! let freed memory be reused by whichever thread asks next; the price is some lock
//! contention between threads in malloc. `MALLOC_ARENA_MAX` in the environment still decides
//! when it is set.

/// The arenas a server process uses at most.
const ARENAS: i32 = 2;

/// Limits the allocator to [`ARENAS`] arenas unless `MALLOC_ARENA_MAX` says otherwise; call it
/// before the process starts its threads. Returns whether the limit was applied.
pub fn share_few_arenas() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return false;
    }
    set_arena_max(ARENAS)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: i32) -> bool {
    // SAFETY: mallopt only changes a setting of the allocator, which is safe at any time.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
}

/// Other C libraries have no such arenas, or no such setting.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_the_arena_limit() {
        assert!(set_arena_max(ARENAS), "glibc refused M_ARENA_MAX");
    }
}

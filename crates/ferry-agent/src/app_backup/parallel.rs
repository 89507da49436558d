//! Work on many files at once, on all cores: reading files to hash them, storing blob
//! batches, writing restored files.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{AgentError, AgentResult};

/// Runs `work` on each of `items` on as many threads as there are cores; the results, in
/// no particular order. The first error stops every thread at its next item and is returned.
pub(crate) fn on_all_cores<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> AgentResult<R> + Sync,
) -> AgentResult<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(items.len()));
    let first_error: Mutex<Option<AgentError>> = Mutex::new(None);
    let n_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..n_threads.min(items.len().max(1)) {
            scope.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if first_error.lock().unwrap().is_some() {
                        break;
                    }
                    match work(item) {
                        Ok(result) => results.lock().unwrap().push(result),
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap() {
        Some(error) => Err(error),
        None => Ok(results.into_inner().unwrap()),
    }
}

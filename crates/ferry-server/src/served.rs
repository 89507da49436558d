//! Bytes served to agents recently, kept so a deployment to many targets reads and checks
//! each blob batch once instead of once per target: the targets of one deployment ask for
//! the same batches in the same order. Content is immutable, so an entry is never stale;
//! the oldest entries go first when the cache is over its size.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use ferry_cas::hash::ContentHash;

/// Bytes kept at most.
const MAX_BYTES: usize = 128 << 20;
/// The largest entry kept: a whole blob batch (32 MiB of blobs and their frame headers).
const MAX_ENTRY_BYTES: usize = 40 << 20;

/// Recently served responses, by a hash of what was asked.
#[derive(Default)]
pub struct Served {
    inner: Mutex<Entries>,
    /// Batches being read now, so the targets asking for one at once wait for it instead
    /// of each reading and checking the same blobs.
    reading: Mutex<HashMap<ContentHash, Arc<tokio::sync::Mutex<()>>>>,
}

/// The right to read one batch for the cache; others asking for it wait until it is
/// dropped, then find it cached (or, if reading failed, read it themselves).
pub struct Reading {
    served: Arc<Served>,
    key: ContentHash,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.served
            .reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<ContentHash, Bytes>,
    /// Keys, oldest first.
    order: VecDeque<ContentHash>,
    bytes: usize,
}

impl Served {
    /// The key for a batch of blobs asked for in this order.
    pub fn batch_key(hashes: &[ContentHash]) -> ContentHash {
        let mut asked = b"ferry blob batch\0".to_vec();
        for hash in hashes {
            asked.extend_from_slice(&hash.0);
        }
        ContentHash::of(&asked)
    }

    /// Waits for the turn to read batch `key`: at once unless another request reads it.
    pub async fn read_turn(self: &Arc<Self>, key: ContentHash) -> Reading {
        let turn = Arc::clone(
            self.reading
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key)
                .or_default(),
        );
        Reading {
            served: Arc::clone(self),
            key,
            _turn: turn.lock_owned().await,
        }
    }

    pub fn get(&self, key: &ContentHash) -> Option<Bytes> {
        self.lock().by_key.get(key).cloned()
    }

    /// Keeps `bytes` under `key`, dropping the oldest entries to stay under the size.
    pub fn insert(&self, key: ContentHash, bytes: Bytes) {
        if bytes.len() > MAX_ENTRY_BYTES {
            return;
        }
        let mut entries = self.lock();
        if entries.by_key.contains_key(&key) {
            return;
        }
        entries.bytes += bytes.len();
        entries.order.push_back(key);
        entries.by_key.insert(key, bytes);
        while entries.bytes > MAX_BYTES {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(dropped) = entries.by_key.remove(&oldest) {
                entries.bytes -= dropped.len();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().expect("the cache lock is never poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ContentHash {
        ContentHash::of(&[n])
    }

    #[test]
    fn keeps_what_fits_and_drops_the_oldest_first() {
        let served = Served::default();
        let quarter = MAX_BYTES / 4;
        for n in 0..5 {
            served.insert(key(n), Bytes::from(vec![n; quarter]));
        }
        assert!(served.get(&key(0)).is_none(), "the oldest went");
        for n in 1..5 {
            assert_eq!(served.get(&key(n)).unwrap()[0], n);
        }
        served.insert(key(9), Bytes::from(vec![9; MAX_ENTRY_BYTES + 1]));
        assert!(served.get(&key(9)).is_none(), "too big to keep");
    }

    #[tokio::test]
    async fn one_request_at_a_time_reads_a_batch() {
        let served = Arc::new(Served::default());
        let first = served.read_turn(key(1)).await;
        let other = served.read_turn(key(2)).await;
        let waiting = {
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let _turn = served.read_turn(key(1)).await;
                served.get(&key(1))
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the second reader of a batch waits");
        served.insert(key(1), Bytes::from_static(b"batch"));
        drop(first);
        assert_eq!(waiting.await.unwrap().as_deref(), Some(&b"batch"[..]));
        drop(other);
        assert!(served.reading.lock().unwrap().is_empty());
    }

    #[test]
    fn the_batch_key_depends_on_order() {
        let (a, b) = (key(1), key(2));
        assert_ne!(Served::batch_key(&[a, b]), Served::batch_key(&[b, a]));
        assert_eq!(Served::batch_key(&[a, b]), Served::batch_key(&[a, b]));
    }
}

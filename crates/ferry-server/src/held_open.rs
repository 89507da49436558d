//! Requests held open, counted per holder and bounded: an agent's long-polls per target
//! credential, a user's live dashboard streams. Each holds a connection and a task on the
//! server for as long as it lasts, so one holder must not be able to take them all (the
//! server's connection cap is shared by everyone).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};

/// How many requests each holder has open, and the most it may.
#[derive(Clone)]
pub struct HeldOpen {
    most: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open request's place, given back when it is dropped.
pub struct Place {
    held: HeldOpen,
    holder: String,
}

impl HeldOpen {
    /// Counts up to `most` open requests per holder.
    pub fn new(most: usize) -> HeldOpen {
        HeldOpen {
            most,
            open: Arc::default(),
        }
    }

    /// A place for one more open request of `holder`, or `None` when it has its most.
    pub fn enter(&self, holder: &str) -> Option<Place> {
        let mut open = self.lock();
        let count = open.entry(holder.to_owned()).or_default();
        if *count >= self.most {
            return None;
        }
        *count += 1;
        Some(Place {
            held: self.clone(),
            holder: holder.to_owned(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open
            .lock()
            .expect("the open-request counts are never poisoned")
    }
}

impl Place {
    /// `stream`, keeping this place for as long as the stream lasts.
    pub fn kept_by<S: Stream>(self, stream: S) -> impl Stream<Item = S::Item> {
        stream.map(move |item| {
            let _kept = &self;
            item
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.held.lock();
        if let Some(count) = open.get_mut(&self.holder) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_holder_has_its_own_bound_and_places_come_back() {
        let held = HeldOpen::new(2);
        let first = held.enter("a").unwrap();
        let _second = held.enter("a").unwrap();
        assert!(
            held.enter("a").is_none(),
            "a third place for the same holder"
        );
        assert!(
            held.enter("b").is_some(),
            "another holder is not counted with it"
        );
        drop(first);
        assert!(held.enter("a").is_some(), "a dropped place is free again");
        assert!(
            held.lock().get("b").is_none(),
            "a holder with nothing open is forgotten"
        );
    }
}

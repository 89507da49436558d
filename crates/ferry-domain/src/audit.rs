//! The audit trail as a keyed hash chain: each event's hash covers its contents and the hash
//! of the event before it, so altering, inserting or removing any event breaks the chain.
//!
//! The hash is keyed (BLAKE3 keyed mode) with a secret the server keeps outside the database,
//! so someone who can write the database but not read the key cannot forge a new chain.
//! The chain's head (last sequence number and hash) is stored beside the events, so removing
//! events from the end is detected too. Every event's hash is a valid link, so the head
//! carries a seal: a MAC of its sequence number and hash under a key derived from the audit
//! key. Without the key, nobody can cut the trail and make an older event its head.

use serde::{Deserialize, Serialize};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is chained: the part of an event a caller supplies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The user (or `ferry` for the server itself) who made the change.
    pub actor: String,
    /// What was done, as `noun.verb`: `team.create`, `environment.set-policy`.
    pub action: String,
    /// What it was done to, as `kind/name`: `team/shop`.
    pub subject: String,
    /// The application concerned, if any, so an application's history can be listed.
    pub app: Option<String>,
    /// Details as a JSON document.
    pub details: String,
}

/// One link of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// 1 for the first event, then consecutive.
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// The last link as recorded beside the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// The head as recorded beside the chain, with its seal (`None`: the seal is missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedHead {
    pub head: ChainHead,
    pub seal: Option<String>,
}

/// Context of the key that seals heads, derived from the audit key, so a seal can never be
/// mistaken for an event's hash.
const SEAL_KEY_CONTEXT: &str = "ferry 2026 audit trail head seal";

/// The seal of `head`: a keyed BLAKE3 MAC of its sequence number and hash.
pub fn seal(key: &[u8; 32], head: &ChainHead) -> String {
    let seal_key = blake3::derive_key(SEAL_KEY_CONTEXT, key);
    let mut hasher = blake3::Hasher::new_keyed(&seal_key);
    hasher.update(&head.seq.to_le_bytes());
    hasher.update(head.hash.as_bytes());
    hasher.finalize().to_hex().to_string()
}

impl RecordedHead {
    /// A head sealed with `key`.
    pub fn sealed(key: &[u8; 32], head: ChainHead) -> RecordedHead {
        RecordedHead {
            seal: Some(seal(key, &head)),
            head,
        }
    }

    /// Whether the head carries the seal `key` gives it (compared in constant time).
    pub fn is_sealed_with(&self, key: &[u8; 32]) -> bool {
        let expected = blake3::Hash::from_hex(seal(key, &self.head)).expect("a seal is hex");
        self.seal
            .as_deref()
            .and_then(|seal| blake3::Hash::from_hex(seal).ok())
            .is_some_and(|seal| seal == expected)
    }
}

/// The first place where the chain does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit event {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// The hash of an event with sequence number `seq` that follows `prev_hash`.
pub fn chain_hash(key: &[u8; 32], seq: i64, prev_hash: &str, record: &AuditRecord) -> String {
    let mut hasher = blake3::Hasher::new_keyed(key);
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(&seq.to_le_bytes());
    field(prev_hash.as_bytes());
    field(&record.at_ms.to_le_bytes());
    field(record.actor.as_bytes());
    field(record.action.as_bytes());
    field(record.subject.as_bytes());
    match &record.app {
        None => field(&[0]),
        Some(app) => {
            field(&[1]);
            field(app.as_bytes());
        }
    }
    field(record.details.as_bytes());
    hasher.finalize().to_hex().to_string()
}

/// Links `record` after the event with `prev` (sequence number and hash; `None` at the start).
pub fn link(key: &[u8; 32], prev: Option<&ChainHead>, record: AuditRecord) -> AuditEvent {
    let (seq, prev_hash) = match prev {
        Some(head) => (head.seq + 1, head.hash.clone()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = chain_hash(key, seq, &prev_hash, &record);
    AuditEvent {
        seq,
        record,
        prev_hash,
        hash,
    }
}

/// Checks every event of the chain, in sequence order, against its neighbours, its own
/// contents and the recorded head and its seal. Returns the number of events verified.
pub fn verify_chain(
    key: &[u8; 32],
    events: &[AuditEvent],
    recorded: Option<&RecordedHead>,
) -> Result<u64, ChainBreak> {
    let mut prev: Option<&AuditEvent> = None;
    for event in events {
        let (expected_seq, expected_prev_hash) = match prev {
            Some(p) => (p.seq + 1, p.hash.as_str()),
            None => (1, GENESIS_HASH),
        };
        if event.seq != expected_seq {
            return Err(ChainBreak {
                seq: event.seq,
                reason: format!(
                    "events {expected_seq} to {} are missing (removed from the trail)",
                    event.seq - 1
                ),
            });
        }
        if event.prev_hash != expected_prev_hash {
            return Err(ChainBreak {
                seq: event.seq,
                reason: "its previous hash does not match the event before it".into(),
            });
        }
        if event.hash != chain_hash(key, event.seq, &event.prev_hash, &event.record) {
            // Not one event verifying is what another trail's key looks like.
            let reason = match prev {
                None => "its contents do not match its hash: the event was altered, or the server runs with another trail's audit key (check `ferry server --audit-key`)",
                Some(_) => "its contents do not match its hash (the event was altered)",
            };
            return Err(ChainBreak {
                seq: event.seq,
                reason: reason.into(),
            });
        }
        prev = Some(event);
    }
    let last_seq = prev.map_or(0, |p| p.seq);
    if let Some(recorded) = recorded.filter(|r| !r.is_sealed_with(key)) {
        let seq = recorded.head.seq;
        return Err(ChainBreak {
            seq,
            reason: format!(
                "the recorded head (event {seq}) is not sealed with the audit key: it was rewritten, so events after {seq} may have been removed from the end (or the server runs with another trail's key)"
            ),
        });
    }
    match recorded.map(|r| &r.head) {
        Some(head) if head.seq != last_seq => Err(ChainBreak {
            seq: head.seq,
            reason: format!(
                "the trail ends at event {last_seq} but its head records event {}: events were removed from the end",
                head.seq
            ),
        }),
        Some(head) if prev.is_some_and(|p| p.hash != head.hash) => Err(ChainBreak {
            seq: head.seq,
            reason: "the last event's hash does not match the recorded head".into(),
        }),
        None if last_seq != 0 => Err(ChainBreak {
            seq: last_seq,
            reason: "the trail has events but no recorded head".into(),
        }),
        _ => Ok(events.len() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn record(n: i64) -> AuditRecord {
        AuditRecord {
            at_ms: 1_700_000_000_000 + n,
            actor: "admin".into(),
            action: "team.create".into(),
            subject: format!("team/t{n}"),
            app: (n % 2 == 0).then(|| "shop".to_owned()),
            details: format!("{{\"n\":{n}}}"),
        }
    }

    fn chain(n: i64) -> (Vec<AuditEvent>, RecordedHead) {
        let mut events: Vec<AuditEvent> = Vec::new();
        for i in 1..=n {
            let prev = events.last().map(head_of);
            events.push(link(&KEY, prev.as_ref(), record(i)));
        }
        let head = events.last().map(head_of).unwrap_or(ChainHead {
            seq: 0,
            hash: GENESIS_HASH.into(),
        });
        (events, RecordedHead::sealed(&KEY, head))
    }

    fn head_of(event: &AuditEvent) -> ChainHead {
        ChainHead {
            seq: event.seq,
            hash: event.hash.clone(),
        }
    }

    /// Applies `tamper` to a chain of five events and checks which event verification names.
    fn check(tamper: impl Fn(&mut Vec<AuditEvent>, &mut RecordedHead), first_bad: Option<i64>) {
        let (mut events, mut head) = chain(5);
        tamper(&mut events, &mut head);
        let result = verify_chain(&KEY, &events, Some(&head));
        assert_eq!(
            result.as_ref().err().map(|b| b.seq),
            first_bad,
            "{result:?}"
        );
    }

    #[test]
    fn tampering_is_found_at_the_first_bad_event() {
        check(|_, _| {}, None);
        check(|e, _| e[2].record.actor = "mallory".into(), Some(3));
        check(|e, _| e[0].record.details = "{}".into(), Some(1));
        check(|e, _| e[4].record.app = Some("blog".into()), Some(5));
        check(|e, _| e[1].record.at_ms += 1, Some(2));
        check(
            |e, _| {
                e.remove(2);
            },
            Some(4),
        );
        check(
            |e, _| {
                e.remove(0);
            },
            Some(2),
        );
        check(
            |e, _| {
                e.pop();
            },
            Some(5),
        );
        check(
            |e, h| {
                e.pop();
                h.head.seq = 4;
            },
            Some(4),
        );
        check(|e, _| e.swap(1, 2), Some(3));
        // Rewriting an event and its own hash still breaks the link to the next event.
        check(
            |e, _| {
                e[1].record.actor = "mallory".into();
                e[1].hash = chain_hash(&[0; 32], 2, &e[1].prev_hash.clone(), &e[1].record);
            },
            Some(2),
        );
    }

    #[test]
    fn a_trail_cut_short_is_found_by_its_heads_seal() {
        // The last three events removed, the head rewritten from the remaining rows.
        let cut = |e: &mut Vec<AuditEvent>, h: &mut RecordedHead| {
            e.truncate(2);
            h.head = head_of(&e[1]);
        };
        check(cut, Some(2));
        // Sealed again without the key, or with the seal removed: still found.
        check(
            |e, h| {
                cut(e, h);
                h.seal = Some(seal(&[0; 32], &h.head));
            },
            Some(2),
        );
        check(
            |e, h| {
                cut(e, h);
                h.seal = None;
            },
            Some(2),
        );
        // The seal the trail had when that event was its head verifies: only a copy of the
        // database from then holds it (a restored backup is such a copy).
        check(
            |e, h| {
                let (_, older) = chain(4);
                e.pop();
                h.head = head_of(&e[3]);
                h.seal = older.seal;
            },
            None,
        );
        let (events, head) = chain(5);
        let reason = verify_chain(
            &KEY,
            &events[..2],
            Some(&RecordedHead::sealed(&[0; 32], head_of(&events[1]))),
        )
        .unwrap_err()
        .reason;
        assert!(reason.contains("not sealed with the audit key"), "{reason}");
        assert!(head.is_sealed_with(&KEY) && !head.is_sealed_with(&[0; 32]));
    }

    #[test]
    fn a_different_key_fails_the_first_event() {
        let (events, head) = chain(3);
        let err = verify_chain(&[1; 32], &events, Some(&head)).unwrap_err();
        assert_eq!(err.seq, 1);
    }

    #[test]
    fn empty_trails() {
        assert_eq!(verify_chain(&KEY, &[], None), Ok(0));
        let (_, head) = chain(0);
        assert_eq!(verify_chain(&KEY, &[], Some(&head)), Ok(0));
        let head = RecordedHead::sealed(
            &KEY,
            ChainHead {
                seq: 2,
                hash: "x".into(),
            },
        );
        assert_eq!(verify_chain(&KEY, &[], Some(&head)).unwrap_err().seq, 2);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = record(1);
        let mut b = record(1);
        a.actor = "ab".into();
        a.action = "c".into();
        b.actor = "a".into();
        b.action = "bc".into();
        assert_ne!(
            chain_hash(&KEY, 1, GENESIS_HASH, &a),
            chain_hash(&KEY, 1, GENESIS_HASH, &b)
        );
    }
}

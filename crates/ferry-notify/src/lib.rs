//! Delivering ferry's notifications to a team's channels: signed webhooks and e-mail.
//!
//! Each call of [`deliver`] makes exactly one delivery attempt. The server keeps the delivery
//! log and retries failed attempts whose error is [`DeliveryError::retryable`], waiting
//! [`retry_delay_ms`] between attempts. This crate keeps no state of its own.
//!
//! A webhook reaches loopback, link-local and private addresses only when its channel allows
//! it: the addresses a host name resolves to are checked when the message is sent, and the
//! connection goes to the addresses checked (no DNS rebinding between check and connect).
//!
//! Webhook receivers check [`SIGNATURE_HEADER`] with [`verify`]; e-mail is written and sent
//! with lettre (see `email.rs` and `smtp.rs`), on rustls with the ring provider like the rest
//! of ferry.

mod address;
mod channel;
mod email;
mod resolve;
mod retry;
mod smtp;
mod webhook;

pub use channel::{BadChannel, Channel};
pub use retry::{retry_delay_ms, LONGEST_RETRY_DELAY_MS, MAX_ATTEMPTS};
pub use webhook::{sign, verify, webhook_body, SIGNATURE_HEADER};

use serde::{Deserialize, Serialize};

/// One notification to deliver; the same message may be delivered several times (retries)
/// and always carries the same `id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Delivery id, unique per delivery; receivers use it to drop duplicates.
    pub id: String,
    /// What happened, dotted, e.g. `incident.opened`.
    pub event: String,
    /// One line for humans (the e-mail subject).
    pub subject: String,
    /// Plain text for humans (the e-mail body).
    pub text: String,
    /// Machine-readable details of the event.
    pub data: serde_json::Value,
    /// When ferry created the message, in milliseconds since the Unix epoch.
    pub sent_at_ms: i64,
}

/// A successful delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// What the receiver answered, e.g. `HTTP 200` or `250 2.0.0 queued as 4F2A`.
    pub detail: String,
}

/// A failed delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// Whether another attempt may succeed (a timeout, a 5xx or 4xx-SMTP answer); `false`
    /// means the channel or the message must change first.
    pub retryable: bool,
    /// What went wrong and what to do, for the delivery log.
    pub message: String,
}

impl DeliveryError {
    pub(crate) fn transient(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            retryable: true,
            message: message.into(),
        }
    }

    pub(crate) fn permanent(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            retryable: false,
            message: message.into(),
        }
    }
}

/// Makes one attempt to deliver `message` to `channel`.
///
/// The channel is validated first; an invalid channel is a non-retryable error.
pub async fn deliver(channel: &Channel, message: &Message) -> Result<Delivered, DeliveryError> {
    if let Err(bad) = channel.validate() {
        return Err(DeliveryError::permanent(format!(
            "the channel is not valid: {bad}"
        )));
    }
    match channel {
        Channel::Webhook {
            url,
            secret,
            allow_private,
        } => webhook::deliver(url, secret, *allow_private, message).await,
        Channel::Email { smtp, from, to } => {
            let server = channel::SmtpUrl::parse(smtp).map_err(|bad| {
                DeliveryError::permanent(format!("the channel is not valid: {bad}"))
            })?;
            let tls = smtp::public_roots(&server.host);
            smtp::deliver(&server, from, to, message, tls).await
        }
    }
}

/// Sanitises text a remote peer sent before it goes into an error message: no control
/// characters (a reply could otherwise forge lines in the delivery log) and at most
/// `max_chars` characters.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out.trim().to_owned()
}

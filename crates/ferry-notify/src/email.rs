//! Writing a [`Message`] as an Internet message (RFC 5322, plain text, UTF-8, 8bit) with
//! lettre's builder. No I/O here.

use std::time::{Duration, SystemTime};

use lettre::address::Envelope;
use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox};
use lettre::Address;

use crate::{DeliveryError, Message};

/// A header line should stay within 78 characters (RFC 5322 §2.1.1).
const MAX_HEADER_LINE: usize = 78;
/// A line must stay within 998 bytes plus CRLF (RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6).
const MAX_LINE_BYTES: usize = 998;
/// The `Date:` header goes up to the year 9999, and lettre's date type starts at 1970.
const MAX_SENT_AT_MS: i64 = 253_402_300_799_999;

/// The whole message as it goes after DATA: CRLF line endings, headers then body, not yet
/// dot-stuffed (lettre's client does that while sending).
pub(crate) fn compose(
    from: &Address,
    to: &[Address],
    message: &Message,
) -> Result<Vec<u8>, DeliveryError> {
    let envelope = Envelope::new(Some(from.clone()), to.to_vec()).map_err(|e| {
        DeliveryError::permanent(format!(
            "the e-mail cannot be sent: {e}; add a recipient to the channel"
        ))
    })?;
    let built = lettre::Message::builder()
        .envelope(envelope)
        .date(sent_at(message.sent_at_ms)?)
        .from(Mailbox::new(None, from.clone()))
        .raw_header(address_list("To", to))
        .subject(one_line(&message.subject))
        .message_id(Some(message_id(from, message)))
        .header(header::MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        // Tells vacation responders not to answer a machine (RFC 3834).
        .raw_header(raw_header("Auto-Submitted", "auto-generated"))
        .raw_header(raw_header("X-Ferry-Event", &message.event))
        .raw_header(raw_header("X-Ferry-Delivery", &message.id))
        // lettre would pick quoted-printable for any line past 76 characters; 8bit allows
        // 998 bytes, and `body` guarantees that, CRLF endings and no control characters.
        .body(Body::dangerous_pre_encoded(
            body(&message.text).into_bytes(),
            ContentTransferEncoding::EightBit,
        ))
        .map_err(|e| {
            DeliveryError::permanent(format!(
                "the e-mail cannot be written: {e}; check the channel's from and to addresses"
            ))
        })?;
    Ok(built.formatted())
}

/// The message's time for `Date:`; lettre writes it in UTC.
fn sent_at(sent_at_ms: i64) -> Result<SystemTime, DeliveryError> {
    match u64::try_from(sent_at_ms) {
        Ok(ms) if sent_at_ms <= MAX_SENT_AT_MS => {
            Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
        }
        _ => Err(DeliveryError::permanent(format!(
            "the message's sent_at_ms {sent_at_ms} cannot be written as an e-mail date; set it to the current time"
        ))),
    }
}

/// `<ferry.ID@DOMAIN>`: stable across retries of one delivery, so a retry after a lost
/// reply is recognisable as a duplicate.
fn message_id(from: &Address, message: &Message) -> String {
    let id: String = message
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = if id.is_empty() {
        message.sent_at_ms.to_string()
    } else {
        id
    };
    format!("<ferry.{id}@{}>", from.domain())
}

/// `To: a, b` folded so that no line passes 78 characters when avoidable: lettre writes an
/// address list on one line, and 20 long addresses would pass even the 998-byte limit.
fn address_list(name: &'static str, addresses: &[Address]) -> HeaderValue {
    let mut folded = String::new();
    let mut line_len = name.len() + 1;
    for (address_idx, address) in addresses.iter().enumerate() {
        let address: &str = address.as_ref();
        let separator = if address_idx + 1 < addresses.len() {
            ","
        } else {
            ""
        };
        if address_idx > 0 && line_len + 1 + address.len() + separator.len() > MAX_HEADER_LINE {
            folded.push_str("\r\n");
            line_len = 0;
        }
        if address_idx > 0 {
            folded.push(' ');
        }
        folded.push_str(address);
        folded.push_str(separator);
        line_len += 1 + address.len() + separator.len();
    }
    let unfolded = addresses
        .iter()
        .map(|a| -> &str { a.as_ref() })
        .collect::<Vec<_>>()
        .join(", ");
    // Pre-encoded is safe here: the channel's addresses are plain ASCII without spaces,
    // quotes or brackets (see `channel::check_address`), and lettre parsed each of them.
    HeaderValue::dangerous_new_pre_encoded(HeaderName::new_from_ascii_str(name), unfolded, folded)
}

/// A header of free text; lettre writes what is not plain ASCII as RFC 2047 encoded-words.
fn raw_header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), one_line(value))
}

/// Control characters (CR and LF above all, which would let the text forge headers) become
/// spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The text with CRLF line endings, no control characters but tab, and no line longer than
/// SMTP allows (longer lines are broken, between characters). Without a final line ending:
/// the client ends the last line when it ends DATA.
fn body(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    // A final newline must not become a blank last line.
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return String::new();
    }
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let line: String = line
            .chars()
            .filter(|c| *c == '\t' || !c.is_control())
            .collect();
        if line.is_empty() {
            lines.push(String::new());
        }
        lines.extend(utf8_chunks(&line, MAX_LINE_BYTES).map(str::to_owned));
    }
    lines.join("\r\n")
}

/// Pieces of `text` of at most `max_bytes` bytes each (at least one character each), cut
/// only between characters.
fn utf8_chunks(text: &str, max_bytes: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max_bytes);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (chunk, after) = rest.split_at(end);
        rest = after;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            id: "d-1".to_owned(),
            event: "deployment.succeeded".to_owned(),
            subject: "shop 1.2.3 is live in prd".to_owned(),
            text: "deployed by ana".to_owned(),
            data: serde_json::json!({}),
            sent_at_ms: 1_700_000_000_000,
        }
    }

    fn address(text: &str) -> Address {
        text.parse().unwrap()
    }

    /// The headers of a composed message, lines unfolded.
    fn headers(message: &Message, to: &[Address]) -> Vec<String> {
        let composed = compose(&address("ferry@example.com"), to, message).unwrap();
        let composed = String::from_utf8(composed).unwrap();
        let (head, _) = composed.split_once("\r\n\r\n").unwrap();
        head.replace("\r\n ", " ")
            .split("\r\n")
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn subjects() {
        let check = |subject: &str, expect: &str| {
            let message = Message {
                subject: subject.to_owned(),
                ..message()
            };
            let to = [address("ops@example.com")];
            let found = headers(&message, &to);
            assert!(found.iter().any(|h| h == expect), "{expect} in {found:?}");
        };
        check("deploy ok", "Subject: deploy ok");
        check("evil\r\nBcc: x@y", "Subject: evil  Bcc: x@y");
        check("Größe", "Subject: =?utf-8?b?R3LDtsOfZQ==?=");
    }

    #[test]
    fn bodies() {
        let check = |text: &str, expect: &str| assert_eq!(body(text), expect, "{text:?}");
        check("", "");
        check("a", "a");
        check("a\n", "a");
        check("a\n\n", "a\r\n");
        check("a\r\nb\rc\n\nd", "a\r\nb\r\nc\r\n\r\nd");
        check("tab\there\u{0}", "tab\there");
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        assert_eq!(body(&long), format!("{}\r\nx", "x".repeat(MAX_LINE_BYTES)));
        let long = format!("{}ü", "x".repeat(MAX_LINE_BYTES - 1));
        assert_eq!(
            body(&long),
            format!("{}\r\nü", "x".repeat(MAX_LINE_BYTES - 1))
        );
    }

    #[test]
    fn long_recipient_lists_are_folded() {
        let to: Vec<Address> = (0..6)
            .map(|n| address(&format!("recipient-{n}@example.com")))
            .collect();
        let composed = compose(&address("ferry@example.com"), &to, &message()).unwrap();
        let composed = String::from_utf8(composed).unwrap();
        let (head, _) = composed.split_once("\r\n\r\n").unwrap();
        assert!(head.split("\r\n").all(|l| l.len() <= 78), "{head}");
        let unfolded = headers(&message(), &to);
        let to_header = unfolded.iter().find(|h| h.starts_with("To: ")).unwrap();
        assert_eq!(to_header.matches('@').count(), 6);
        assert!(to_header.starts_with("To: recipient-0@example.com, recipient-1@example.com, "));
    }

    #[test]
    fn dates_lettre_cannot_write_are_refused() {
        for sent_at_ms in [-1, MAX_SENT_AT_MS + 1, i64::MAX] {
            let message = Message {
                sent_at_ms,
                ..message()
            };
            let to = [address("ops@example.com")];
            let error = compose(&address("ferry@example.com"), &to, &message).unwrap_err();
            assert!(!error.retryable, "{error}");
            assert!(error.message.contains("sent_at_ms"), "{error}");
        }
        let message = Message {
            sent_at_ms: MAX_SENT_AT_MS,
            ..message()
        };
        let to = [address("ops@example.com")];
        let found = headers(&message, &to);
        assert!(
            found
                .iter()
                .any(|h| h == "Date: Fri, 31 Dec 9999 23:59:59 +0000"),
            "{found:?}"
        );
    }
}

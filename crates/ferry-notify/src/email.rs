//! Writing a [`Message`] as an Internet message (RFC 5322, plain text, UTF-8, 8bit) and
//! preparing it for SMTP's DATA. No I/O here.

use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

use crate::{DeliveryError, Message};

/// A header line should stay within 78 characters (RFC 5322 §2.1.1).
const MAX_HEADER_LINE: usize = 78;
/// A line must stay within 998 bytes plus CRLF (RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6).
const MAX_LINE_BYTES: usize = 998;
/// Bytes of UTF-8 per RFC 2047 encoded-word: 45 bytes are 60 base64 characters, which with
/// `=?utf-8?B?` and `?=` makes the longest allowed encoded-word, 75 characters, or less.
const MAX_ENCODED_WORD_BYTES: usize = 45;

/// The whole message, CRLF line endings, headers then body, not yet dot-stuffed.
pub(crate) fn compose(
    from: &str,
    to: &[String],
    message: &Message,
) -> Result<String, DeliveryError> {
    let date = rfc2822(message.sent_at_ms)?;
    let mut out = String::new();
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("From: {from}\r\n"));
    out.push_str(&address_list("To", to));
    out.push_str(&unstructured("Subject", &message.subject));
    out.push_str(&format!("Message-ID: {}\r\n", message_id(from, message)));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: 8bit\r\n");
    // Tells vacation responders not to answer a machine (RFC 3834).
    out.push_str("Auto-Submitted: auto-generated\r\n");
    out.push_str(&unstructured("X-Ferry-Event", &message.event));
    out.push_str(&unstructured("X-Ferry-Delivery", &message.id));
    out.push_str("\r\n");
    out.push_str(&body(&message.text));
    Ok(out)
}

/// The DATA payload: every line starting with '.' gets one more (RFC 5321 §4.5.2), then the
/// terminating `.` line. `message` must already use CRLF line endings.
pub(crate) fn dot_stuff(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive("\r\n") {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// `Date:` form of the message's time, in UTC.
fn rfc2822(sent_at_ms: i64) -> Result<String, DeliveryError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(sent_at_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc2822).ok())
        .ok_or_else(|| {
            DeliveryError::permanent(format!(
                "the message's sent_at_ms {sent_at_ms} cannot be written as an e-mail date; set it to the current time"
            ))
        })
}

/// `<ferry.ID@DOMAIN>`: stable across retries of one delivery, so a retry after a lost
/// reply is recognisable as a duplicate.
fn message_id(from: &str, message: &Message) -> String {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
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
    format!("<ferry.{id}@{domain}>")
}

/// `To: a, b` folded so that no line passes 78 characters when avoidable.
fn address_list(name: &str, addresses: &[String]) -> String {
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for (address_idx, address) in addresses.iter().enumerate() {
        let separator = if address_idx + 1 < addresses.len() {
            ","
        } else {
            ""
        };
        if address_idx > 0 && line_len + 1 + address.len() + separator.len() > MAX_HEADER_LINE {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(address);
        out.push_str(separator);
        line_len += 1 + address.len() + separator.len();
    }
    out.push_str("\r\n");
    out
}

/// A header of free text: control characters (CR and LF above all, which would let the text
/// forge headers) become spaces; text that is not short plain ASCII is written as RFC 2047
/// encoded-words, one per line.
fn unstructured(name: &str, value: &str) -> String {
    let value: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let plain = value.is_ascii()
        && !value.contains("=?")
        && name.len() + 2 + value.len() <= MAX_HEADER_LINE;
    if plain {
        return format!("{name}: {value}\r\n");
    }
    let words: Vec<String> = utf8_chunks(&value, MAX_ENCODED_WORD_BYTES)
        .map(|chunk| format!("=?utf-8?B?{}?=", base64(chunk.as_bytes())))
        .collect();
    format!("{name}: {}\r\n", words.join("\r\n "))
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

/// The text with CRLF line endings, no control characters but tab, and no line longer than
/// SMTP allows (longer lines are broken, between characters).
fn body(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len() + text.len() / 32 + 2);
    for line in text.split('\n') {
        let line: String = line
            .chars()
            .filter(|c| *c == '\t' || !c.is_control())
            .collect();
        if line.is_empty() {
            out.push_str("\r\n");
        }
        for piece in utf8_chunks(&line, MAX_LINE_BYTES) {
            out.push_str(piece);
            out.push_str("\r\n");
        }
    }
    // `split` yields one empty piece after a final newline; it must not add a blank line.
    if text.ends_with('\n') {
        out.truncate(out.len() - 2);
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4), for encoded-words and AUTH PLAIN.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for sextet_idx in 0..4 {
            if sextet_idx <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * sextet_idx) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expect) in cases {
            assert_eq!(base64(input.as_bytes()), expect, "{input:?}");
        }
    }

    #[test]
    fn subjects() {
        let check =
            |subject: &str, expect: &str| assert_eq!(unstructured("Subject", subject), expect);
        check("deploy ok", "Subject: deploy ok\r\n");
        check("evil\r\nBcc: x@y", "Subject: evil  Bcc: x@y\r\n");
        check("Größe", "Subject: =?utf-8?B?R3LDtsOfZQ==?=\r\n");
        check("=?x?", "Subject: =?utf-8?B?PT94Pw==?=\r\n");
        // 50 'é' are 100 bytes: three encoded-words, none splitting a character.
        let long = unstructured("Subject", &"é".repeat(50));
        let words: Vec<&str> = long
            .trim_end()
            .trim_start_matches("Subject: ")
            .split("\r\n ")
            .collect();
        assert_eq!(words.len(), 3, "{long}");
        assert!(words.iter().all(|w| w.len() <= 75), "{long}");
    }

    #[test]
    fn bodies() {
        let check = |text: &str, expect: &str| assert_eq!(body(text), expect, "{text:?}");
        check("", "");
        check("a", "a\r\n");
        check("a\n", "a\r\n");
        check("a\r\nb\rc\n\nd", "a\r\nb\r\nc\r\n\r\nd\r\n");
        check("tab\there\u{0}", "tab\there\r\n");
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        assert_eq!(
            body(&long),
            format!("{}\r\nx\r\n", "x".repeat(MAX_LINE_BYTES))
        );
    }

    #[test]
    fn dot_stuffing() {
        let check = |message: &str, expect: &str| {
            assert_eq!(
                String::from_utf8(dot_stuff(message)).unwrap(),
                expect,
                "{message:?}"
            )
        };
        check("", "\r\n.\r\n");
        check("a\r\n", "a\r\n.\r\n");
        check(".\r\n", "..\r\n.\r\n");
        check(
            "a\r\n.b\r\n..c\r\nd.\r\n",
            "a\r\n..b\r\n...c\r\nd.\r\n.\r\n",
        );
    }

    #[test]
    fn long_recipient_lists_are_folded() {
        let to: Vec<String> = (0..6)
            .map(|n| format!("recipient-{n}@example.com"))
            .collect();
        let header = address_list("To", &to);
        assert!(
            header.lines().all(|l| l.len() <= MAX_HEADER_LINE),
            "{header}"
        );
        assert_eq!(header.matches('@').count(), 6);
        let unfolded = header.replace("\r\n ", " ");
        assert!(unfolded.starts_with("To: recipient-0@example.com, recipient-1@example.com, "));
    }
}

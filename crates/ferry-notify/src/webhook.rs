//! Webhooks: the JSON body, its HMAC-SHA256 signature and one POST.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, USER_AGENT};
use reqwest::StatusCode;
use ring::hmac;
use serde::Serialize;

use crate::channel::{redacted_webhook_url, PRIVATE_NEEDS};
use crate::resolve::{PrivateAddress, PublicOnly};
use crate::{excerpt, Delivered, DeliveryError, Message};

/// Header carrying `sha256=<lowercase hex HMAC-SHA256(secret, raw body)>`.
pub const SIGNATURE_HEADER: &str = "X-Ferry-Signature";
const SIGNATURE_PREFIX: &str = "sha256=";
const TIMEOUT: Duration = Duration::from_secs(10);

/// The `X-Ferry-Signature` value for `body`: `sha256=` and the lowercase hex HMAC-SHA256 of
/// the raw body bytes under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body);
    let mut header = String::with_capacity(SIGNATURE_PREFIX.len() + 64);
    header.push_str(SIGNATURE_PREFIX);
    for byte in tag.as_ref() {
        header.push_str(&format!("{byte:02x}"));
    }
    header
}

/// Whether `header` (an `X-Ferry-Signature` value) is the signature of `body` under `secret`.
/// The comparison is constant time (ring's HMAC verification).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body, &tag).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Some(hex_digit(*high)? << 4 | hex_digit(*low)?),
            _ => None,
        })
        .collect()
}

fn hex_digit(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

/// What a webhook receives: field order is fixed so the body is reproducible.
#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    event: &'a str,
    subject: &'a str,
    text: &'a str,
    data: &'a serde_json::Value,
    sent_at: String,
}

/// The exact bytes ferry posts for `message`: compact JSON
/// `{"id","event","subject","text","data","sent_at"}` with `sent_at` in RFC 3339, UTC.
pub fn webhook_body(message: &Message) -> Result<Vec<u8>, DeliveryError> {
    let body = Body {
        id: &message.id,
        event: &message.event,
        subject: &message.subject,
        text: &message.text,
        data: &message.data,
        sent_at: rfc3339(message.sent_at_ms)?,
    };
    serde_json::to_vec(&body).map_err(|e| {
        DeliveryError::permanent(format!(
            "cannot encode the message as JSON ({e}); this is a bug in ferry, please report it"
        ))
    })
}

fn rfc3339(sent_at_ms: i64) -> Result<String, DeliveryError> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(sent_at_ms) * 1_000_000)
        .map_err(|_| {
            DeliveryError::permanent(format!(
                "the message's sent_at_ms {sent_at_ms} is not a representable time; set it to the current time"
            ))
        })?;
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| DeliveryError::permanent(format!("cannot format the message's time ({e})")))
}

/// The process-wide clients, built once (loading the root certificates is slow): one that
/// connects only to public addresses, one for channels an admin allowed to reach private
/// ones.
fn client(allow_private: bool) -> Result<&'static reqwest::Client, DeliveryError> {
    static PUBLIC_ONLY: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    static ANY_ADDRESS: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let (client, public_only) = match allow_private {
        false => (&PUBLIC_ONLY, true),
        true => (&ANY_ADDRESS, false),
    };
    client
        .get_or_init(|| {
            let builder = reqwest::Client::builder()
                .use_rustls_tls()
                .timeout(TIMEOUT)
                .connect_timeout(TIMEOUT)
                // A redirected POST silently becomes a GET; make the team fix the URL instead.
                // It also keeps a receiver from sending ferry on to a private address.
                .redirect(reqwest::redirect::Policy::none())
                // Straight to the receiver, whatever HTTP_PROXY says: the address checked is
                // the address connected to.
                .no_proxy()
                // No pooled connections: the client outlives any one tokio runtime, and a
                // pooled connection dies with the runtime that opened it.
                .pool_max_idle_per_host(0);
            let builder = match public_only {
                true => builder.dns_resolver(Arc::new(PublicOnly)),
                false => builder,
            };
            builder
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {}", error_chain(&e)))
        })
        .as_ref()
        .map_err(|e| DeliveryError::transient(e.clone()))
}

/// Posts `message` to `url` once. A failure names the receiver's HTTP status, never what it
/// answered: a receiver's reply may hold anything, and the delivery log is shown to the
/// whole team.
pub(crate) async fn deliver(
    url: &str,
    secret: &str,
    allow_private: bool,
    message: &Message,
) -> Result<Delivered, DeliveryError> {
    let shown_url = format!("webhook {}", redacted_webhook_url(url));
    let body = webhook_body(message)?;
    let headers = headers(secret, &body, message)?;
    let response = client(allow_private)?
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| send_error(&shown_url, e))?;

    let status = response.status();
    if status.is_success() {
        return Ok(Delivered {
            detail: format!("HTTP {}", status.as_u16()),
        });
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(|l| excerpt(l, 200));
    let answered = format!("{shown_url} answered HTTP {status}");
    Err(match classify(status) {
        Class::Retry => DeliveryError::transient(format!("{answered}; ferry will retry")),
        Class::Redirect => DeliveryError::permanent(format!(
            "{answered}, a redirect to {}; set the channel's URL to the final address",
            location.as_deref().unwrap_or("an unnamed location")
        )),
        Class::Refused => DeliveryError::permanent(format!(
            "{answered}; the receiver refused the message, check the channel's URL and secret and the receiver's logs"
        )),
    })
}

enum Class {
    Retry,
    Redirect,
    Refused,
}

/// 408, 429 and 5xx are the receiver's passing trouble; any other answer stays the same
/// until someone changes the channel or the receiver.
fn classify(status: StatusCode) -> Class {
    match status.as_u16() {
        408 | 429 | 500..=599 => Class::Retry,
        300..=399 => Class::Redirect,
        _ => Class::Refused,
    }
}

fn headers(secret: &str, body: &[u8], message: &Message) -> Result<HeaderMap, DeliveryError> {
    let value = |what: &str, text: &str| {
        HeaderValue::from_str(text).map_err(|_| {
            DeliveryError::permanent(format!(
                "the message's {what} {:?} cannot be sent in an HTTP header; use printable ASCII only",
                excerpt(text, 80)
            ))
        })
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("ferry/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(
        HeaderName::from_static("x-ferry-event"),
        value("event", &message.event)?,
    );
    headers.insert(
        HeaderName::from_static("x-ferry-delivery"),
        value("id", &message.id)?,
    );
    headers.insert(
        HeaderName::from_static("x-ferry-signature"),
        value("signature", &sign(secret.as_bytes(), body))?,
    );
    Ok(headers)
}

fn send_error(shown_url: &str, error: reqwest::Error) -> DeliveryError {
    if let Some(private) = private_address(&error) {
        return DeliveryError::permanent(format!(
            "{shown_url} was not sent: {private}; {PRIVATE_NEEDS}"
        ));
    }
    if error.is_builder() {
        return DeliveryError::permanent(format!(
            "cannot build the request to {shown_url}: {}; check the channel's URL",
            error_chain(&error)
        ));
    }
    if error.is_timeout() {
        return DeliveryError::transient(format!(
            "{shown_url} did not answer within {} s; ferry will retry",
            TIMEOUT.as_secs()
        ));
    }
    let what = if error.is_connect() {
        "cannot connect to"
    } else {
        "lost the connection to"
    };
    DeliveryError::transient(format!(
        "{what} {shown_url}: {}; ferry will retry",
        error_chain(&error)
    ))
}

/// The refusal of a private address among the causes of `error`, if that is what failed.
fn private_address(error: &reqwest::Error) -> Option<&PrivateAddress> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = cause {
        if let Some(private) = e.downcast_ref::<PrivateAddress>() {
            return Some(private);
        }
        cause = e.source();
    }
    None
}

/// The error and its causes, `: `-separated, without the URL reqwest would otherwise print
/// (its query may hold credentials).
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(e) = cause {
        parts.push(e.to_string());
        cause = e.source();
    }
    if parts.is_empty() {
        // No cause: reqwest's own message is all there is; strip the URL from it.
        let text = error.to_string();
        return match text.find(" for url (") {
            Some(at) => text[..at].to_owned(),
            None => text,
        };
    }
    // hyper wraps the same cause several times; keep each message once.
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_test_case_2() {
        let expect = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(sign(b"Jefe", b"what do ya want for nothing?"), expect);
    }

    #[test]
    fn signature_header_name_is_the_one_sent() {
        assert_eq!(
            HeaderName::from_static("x-ferry-signature"),
            HeaderName::from_bytes(SIGNATURE_HEADER.as_bytes()).unwrap()
        );
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex("00ff7A"), Some(vec![0, 255, 122]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
    }
}

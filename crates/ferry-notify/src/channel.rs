//! Channels (where a team's notifications go), their validation and their redacted
//! description. No I/O here.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::address::private_range;

/// Shortest webhook secret accepted: an HMAC key much shorter than this can be guessed.
const MIN_SECRET_BYTES: usize = 16;
/// Most recipients of one e-mail channel; past that a mailing list is the right tool.
const MAX_RECIPIENTS: usize = 20;

/// Where a team's notifications are delivered.
///
/// Serialised with a `kind` tag: `{"kind":"webhook","url":..,"secret":..}` or
/// `{"kind":"email","smtp":..,"from":..,"to":[..]}`. The serialised form holds the secret and
/// the SMTP password, so store it as such; `Debug` and [`Channel::describe`] never show them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// An HTTP POST of the message as JSON, signed with HMAC-SHA256 of `secret`.
    Webhook {
        /// `http://` or `https://` URL the message is posted to.
        url: String,
        /// Key of the `X-Ferry-Signature` HMAC; at least 16 bytes.
        secret: String,
        /// Whether the URL may lead to loopback, link-local and private addresses (an
        /// admin's decision); otherwise such an address is refused, also when the host name
        /// resolves to one at send time.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_private: bool,
    },
    /// An e-mail through an SMTP server.
    Email {
        /// `smtp://[user:password@]host[:port]` (port 25) or `smtp+starttls://...` (port 587).
        smtp: String,
        /// Envelope and header sender address.
        from: String,
        /// Recipient addresses, 1 to 20.
        to: Vec<String>,
    },
}

/// Why a [`Channel`] cannot be used; the message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadChannel {
    /// The offending field: `url`, `secret`, `smtp`, `from` or `to`.
    pub field: &'static str,
    /// What is wrong and what to do, naming the field.
    pub message: String,
}

impl BadChannel {
    fn new(field: &'static str, message: impl Into<String>) -> BadChannel {
        BadChannel {
            field,
            message: message.into(),
        }
    }
}

impl Channel {
    /// The kind of channel, as its stored form names it: `webhook` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Webhook { .. } => "webhook",
            Channel::Email { .. } => "email",
        }
    }

    /// Checks everything about the channel that can be checked without the network.
    pub fn validate(&self) -> Result<(), BadChannel> {
        match self {
            Channel::Webhook {
                url,
                secret,
                allow_private,
            } => {
                check_webhook_url(url, *allow_private)?;
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(BadChannel::new(
                        "secret",
                        format!(
                            "secret: the webhook secret is {} bytes long; use at least {MIN_SECRET_BYTES} random bytes, for example the output of `openssl rand -hex 32`",
                            secret.len()
                        ),
                    ));
                }
                Ok(())
            }
            Channel::Email { smtp, from, to } => {
                let server = SmtpUrl::parse(smtp)?;
                if server.credentials.is_some()
                    && server.security == Security::Plain
                    && !is_loopback(&server.host)
                {
                    return Err(BadChannel::new(
                        "smtp",
                        format!(
                            "smtp: ferry sends an SMTP password only over TLS or to this machine, and {} is neither; use smtp+starttls://USER:PASSWORD@{}",
                            server.host,
                            server.host_port()
                        ),
                    ));
                }
                check_address(from).map_err(|problem| {
                    BadChannel::new(
                        "from",
                        format!("from: {problem}; use a plain address such as ferry@example.com"),
                    )
                })?;
                if to.is_empty() {
                    return Err(BadChannel::new(
                        "to",
                        "to: the e-mail channel has no recipients; add at least one address",
                    ));
                }
                if to.len() > MAX_RECIPIENTS {
                    return Err(BadChannel::new(
                        "to",
                        format!(
                            "to: the e-mail channel has {} recipients, at most {MAX_RECIPIENTS} are allowed; send to a mailing list instead",
                            to.len()
                        ),
                    ));
                }
                for (recipient_idx, recipient) in to.iter().enumerate() {
                    check_address(recipient).map_err(|problem| {
                        BadChannel::new(
                            "to",
                            format!("to: recipient {}: {problem}; use a plain address such as ops@example.com", recipient_idx + 1),
                        )
                    })?;
                    let earlier = &to[..recipient_idx];
                    if earlier.iter().any(|e| e.eq_ignore_ascii_case(recipient)) {
                        return Err(BadChannel::new(
                            "to",
                            format!("to: {recipient} is listed twice; remove one"),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// One line for listings, e.g. `webhook https://hooks.example.com/ferry` or
    /// `email to ops@example.com from ferry@example.com via smtp+starttls://ferry@mail.example.com:587`.
    /// Never shows the webhook secret, the SMTP password, nor a URL's query or user info.
    pub fn describe(&self) -> String {
        match self {
            Channel::Webhook {
                url,
                allow_private: false,
                ..
            } => format!("webhook {}", redacted_webhook_url(url)),
            Channel::Webhook { url, .. } => format!(
                "webhook {} (private addresses allowed)",
                redacted_webhook_url(url)
            ),
            Channel::Email { smtp, from, to } => {
                let recipients = match to.len() {
                    0 => "nobody".to_owned(),
                    1..=3 => to.join(", "),
                    n => format!("{} and {} more", to[..3].join(", "), n - 3),
                };
                let via = match SmtpUrl::parse(smtp) {
                    Ok(server) => server.redacted(),
                    Err(_) => "an invalid SMTP URL".to_owned(),
                };
                format!("email to {recipients} from {from} via {via}")
            }
        }
    }
}

impl fmt::Debug for Channel {
    // Hand-written so that logging a channel never leaks its secret or password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Webhook {
                url, allow_private, ..
            } => f
                .debug_struct("Webhook")
                .field("url", &redacted_webhook_url(url))
                .field("secret", &"<redacted>")
                .field("allow_private", allow_private)
                .finish(),
            Channel::Email { smtp, from, to } => f
                .debug_struct("Email")
                .field(
                    "smtp",
                    &SmtpUrl::parse(smtp)
                        .map(|s| s.redacted())
                        .unwrap_or_else(|_| "<invalid>".to_owned()),
                )
                .field("from", from)
                .field("to", to)
                .finish(),
        }
    }
}

/// What a webhook to a non-public address needs, for messages.
pub(crate) const PRIVATE_NEEDS: &str =
    "webhooks to loopback, link-local and private addresses need --allow-private, which only an admin can give";

fn check_webhook_url(url: &str, allow_private: bool) -> Result<(), BadChannel> {
    let bad = |problem: String| {
        BadChannel::new(
            "url",
            format!("url: {problem}; use a full URL such as https://hooks.example.com/ferry"),
        )
    };
    let parsed =
        reqwest::Url::parse(url).map_err(|e| bad(format!("{url:?} is not a URL ({e})")))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(bad(format!(
            "the webhook URL must start with http:// or https://, not {}://",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("the webhook URL {url:?} has no host")));
    }
    // An address written in the URL is judged here; a host name when a message is sent,
    // by every address it resolves to then.
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match ip.and_then(|ip| Some((ip, private_range(ip)?))) {
        Some((ip, range)) if !allow_private => Err(BadChannel::new(
            "url",
            format!("url: {ip} is {range}; {PRIVATE_NEEDS}"),
        )),
        _ => Ok(()),
    }
}

/// The webhook URL without user info and query, which may hold credentials.
pub(crate) fn redacted_webhook_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "<invalid URL>".to_owned();
    };
    let had_query = parsed.query().is_some();
    // Both setters only fail for URLs that cannot have user info (not http/https).
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    parsed.set_fragment(None);
    let mut shown = parsed.to_string();
    if had_query {
        shown.push_str("?…");
    }
    shown
}

/// Whether `address` looks like a deliverable mailbox: `local@domain`, ASCII, nothing that
/// could break an SMTP command or a header. Returns the problem otherwise.
pub(crate) fn check_address(address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Err("the address is empty".to_owned());
    }
    if address.len() > 254 {
        return Err(format!(
            "the address is {} bytes long, at most 254 are allowed",
            address.len()
        ));
    }
    if let Some(c) = address
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{:?} contains a space or control character ({:?})",
            address, c
        ));
    }
    if !address.is_ascii() {
        return Err(format!(
            "{address:?} is not ASCII; write the domain in its xn-- (punycode) form"
        ));
    }
    if let Some(c) = address.chars().find(|c| "<>()[],;:\"\\".contains(*c)) {
        return Err(format!("{address:?} contains {c:?}"));
    }
    let n_at = address.matches('@').count();
    if n_at != 1 {
        return Err(format!(
            "{address:?} must contain exactly one '@', it has {n_at}"
        ));
    }
    let (local, domain) = address.split_once('@').expect("one '@'");
    if local.is_empty() || local.len() > 64 {
        return Err(format!(
            "{address:?} needs 1 to 64 characters before the '@'"
        ));
    }
    if domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(format!("{address:?} has no valid domain after the '@'"));
    }
    Ok(())
}

/// Whether the SMTP connection is plain or upgraded with STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Security {
    /// `smtp://`: no TLS.
    Plain,
    /// `smtp+starttls://`: STARTTLS is required before anything else is sent.
    StartTls,
}

/// A parsed `smtp://` or `smtp+starttls://` URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SmtpUrl {
    pub security: Security,
    /// Host name or IP address, without IPv6 brackets, lowercase.
    pub host: String,
    pub port: u16,
    /// `(user, password)`, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl SmtpUrl {
    pub fn parse(url: &str) -> Result<SmtpUrl, BadChannel> {
        let bad = |problem: String| {
            BadChannel::new(
                "smtp",
                format!("smtp: {problem}; use smtp://[USER:PASSWORD@]HOST[:PORT] or smtp+starttls://USER:PASSWORD@HOST[:PORT]"),
            )
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(format!("{:?} is not a URL", redact_userinfo(url))))?;
        let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => (Security::Plain, 25),
            "smtp+starttls" => (Security::StartTls, 587),
            "smtps" => {
                return Err(bad(
                    "smtps:// (TLS from the first byte, port 465) is not supported; use smtp+starttls:// with port 587".to_owned(),
                ))
            }
            other => return Err(bad(format!("unknown scheme {other}://"))),
        };
        // The last '@' ends the user info: a password may contain '@' unencoded.
        let (userinfo, host_port) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let host_port = host_port.strip_suffix('/').unwrap_or(host_port);
        if host_port.contains(['/', '?', '#']) {
            return Err(bad("an SMTP URL has no path, query or fragment".to_owned()));
        }
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').ok_or_else(|| {
                    bad("the user has no password; write USER:PASSWORD@".to_owned())
                })?;
                let user = percent_decode(user)
                    .ok_or_else(|| bad("the user is not valid percent-encoded UTF-8".to_owned()))?;
                let password = percent_decode(password).ok_or_else(|| {
                    bad("the password is not valid percent-encoded UTF-8".to_owned())
                })?;
                if user.is_empty() || password.is_empty() {
                    return Err(bad("the user and the password must not be empty".to_owned()));
                }
                Some((user, password))
            }
        };
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (ip, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("the IPv6 address has no closing ']'".to_owned()))?;
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(format!("[{ip}] is not an IPv6 address")));
            }
            let port =
                match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or_else(|| {
                        bad("expected ':PORT' after the IPv6 address".to_owned())
                    })?),
                };
            (ip.to_ascii_lowercase(), port)
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
                None => (host_port.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("the URL has no host".to_owned()));
        }
        if !host.contains(':')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            return Err(bad(format!("{host:?} is not a host name")));
        }
        let port = match port {
            None => default_port,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(bad(format!("{port:?} is not a port number"))),
            },
        };
        Ok(SmtpUrl {
            security,
            host,
            port,
            credentials,
        })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL with the user but without the password.
    pub fn redacted(&self) -> String {
        let scheme = match self.security {
            Security::Plain => "smtp",
            Security::StartTls => "smtp+starttls",
        };
        match &self.credentials {
            Some((user, _)) => format!("{scheme}://{user}@{}", self.host_port()),
            None => format!("{scheme}://{}", self.host_port()),
        }
    }
}

/// `localhost` or a loopback IP address: where a plain-text password never leaves the machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut byte_idx = 0;
    while byte_idx < bytes.len() {
        if bytes[byte_idx] == b'%' {
            let hex = text.get(byte_idx + 1..byte_idx + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            byte_idx += 3;
        } else {
            out.push(bytes[byte_idx]);
            byte_idx += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// For error messages about unparsable URLs: drops everything before the last '@'.
fn redact_userinfo(url: &str) -> &str {
    match url.rfind('@') {
        Some(at) => &url[at + 1..],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_url_parts() {
        let check = |url: &str, expect: (Security, &str, u16, Option<(&str, &str)>)| {
            let parsed = SmtpUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.security, expect.0, "{url}");
            assert_eq!(parsed.host, expect.1, "{url}");
            assert_eq!(parsed.port, expect.2, "{url}");
            assert_eq!(
                parsed.credentials,
                expect.3.map(|(u, p)| (u.to_owned(), p.to_owned())),
                "{url}"
            );
        };
        check(
            "smtp://mail.example.com",
            (Security::Plain, "mail.example.com", 25, None),
        );
        check(
            "smtp://Mail.Example.com:2525/",
            (Security::Plain, "mail.example.com", 2525, None),
        );
        check(
            "smtp+starttls://u:p@mx.example.com",
            (Security::StartTls, "mx.example.com", 587, Some(("u", "p"))),
        );
        check(
            "smtp+starttls://me%40corp:p@ss@mx:26",
            (Security::StartTls, "mx", 26, Some(("me@corp", "p@ss"))),
        );
        check("smtp://[::1]:2525", (Security::Plain, "::1", 2525, None));
        check("smtp://127.0.0.1", (Security::Plain, "127.0.0.1", 25, None));
    }

    #[test]
    fn redacted_urls_hide_passwords() {
        let smtp = SmtpUrl::parse("smtp+starttls://ferry:hunter2@[::1]:587").unwrap();
        assert_eq!(smtp.redacted(), "smtp+starttls://ferry@[::1]:587");
        assert_eq!(
            redacted_webhook_url("https://u:pw@hooks.example.com/x?token=abc#f"),
            "https://hooks.example.com/x?…"
        );
    }
}

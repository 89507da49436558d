//! Channel validation, redacted descriptions and the serialised form.

use ferry_notify::Channel;
use serde_json::json;

use crate::SECRET;

#[test]
fn validate_channels() {
    let webhook = |url: &str, secret: &str| Channel::Webhook {
        url: url.to_owned(),
        secret: secret.to_owned(),
        allow_private: false,
    };
    let private_webhook = |url: &str| Channel::Webhook {
        url: url.to_owned(),
        secret: SECRET.to_owned(),
        allow_private: true,
    };
    let email = |smtp: &str, from: &str, to: &[&str]| Channel::Email {
        smtp: smtp.to_owned(),
        from: from.to_owned(),
        to: to.iter().map(|t| t.to_string()).collect(),
    };
    let twenty: Vec<String> = (0..20).map(|n| format!("r{n}@example.com")).collect();
    let twenty: Vec<&str> = twenty.iter().map(String::as_str).collect();
    let twenty_one: Vec<String> = (0..21).map(|n| format!("r{n}@example.com")).collect();
    let twenty_one: Vec<&str> = twenty_one.iter().map(String::as_str).collect();
    let ok = "ferry@example.com";
    let ops: &[&str] = &["ops@example.com"];

    // (channel, None if valid or Some((field, a piece of the message)))
    let cases: Vec<(Channel, Option<(&str, &str)>)> = vec![
        (webhook("https://hooks.example.com/ferry", SECRET), None),
        (webhook("http://203.0.113.5:8080/x?token=1", SECRET), None),
        // Loopback, link-local and private addresses need an admin's allow-private, however
        // the address is written.
        (
            webhook("http://10.0.0.5:8080/x?token=1", SECRET),
            Some(("url", "10.0.0.5 is a private address (10.0.0.0/8); webhooks to loopback, link-local and private addresses need --allow-private")),
        ),
        (
            webhook("http://127.0.0.1:9/x", SECRET),
            Some(("url", "loopback")),
        ),
        (webhook("http://2130706433/x", SECRET), Some(("url", "127.0.0.1 is a loopback"))),
        (webhook("http://0x7f.1/x", SECRET), Some(("url", "127.0.0.1 is a loopback"))),
        (webhook("http://[::1]:9/x", SECRET), Some(("url", "::1 is a loopback"))),
        (webhook("http://[::ffff:169.254.169.254]/", SECRET), Some(("url", "link-local"))),
        (webhook("http://[fd00::5]/", SECRET), Some(("url", "unique local"))),
        (webhook("http://[fe80::1]/", SECRET), Some(("url", "link-local"))),
        (webhook("http://0.0.0.0:8080/", SECRET), Some(("url", "unspecified"))),
        (webhook("http://172.20.1.1/", SECRET), Some(("url", "172.16.0.0/12"))),
        (webhook("http://192.168.1.10/", SECRET), Some(("url", "192.168.0.0/16"))),
        (private_webhook("http://10.0.0.5:8080/x?token=1"), None),
        (private_webhook("http://127.0.0.1:9/x"), None),
        // A host name is judged by what it resolves to when a message is sent.
        (webhook("http://localhost:9/x", SECRET), None),
        (
            webhook("ftp://example.com/x", SECRET),
            Some(("url", "http:// or https://")),
        ),
        (
            webhook("hooks.example.com/ferry", SECRET),
            Some(("url", "not a URL")),
        ),
        (webhook("", SECRET), Some(("url", "not a URL"))),
        (
            webhook("mailto:ops@example.com", SECRET),
            Some(("url", "http:// or https://")),
        ),
        (
            webhook("https://hooks.example.com/", "short"),
            Some(("secret", "at least 16")),
        ),
        (
            webhook("https://hooks.example.com/", "0123456789abcde"),
            Some(("secret", "15 bytes")),
        ),
        (
            webhook("https://hooks.example.com/", "0123456789abcdef"),
            None,
        ),
        (email("smtp://mail.example.com", ok, ops), None),
        (email("smtp://mail.example.com:2525", ok, &twenty), None),
        (email("smtp+starttls://u:p@mail.example.com", ok, ops), None),
        (email("smtp://u:p@127.0.0.1:25", ok, ops), None),
        (email("smtp://u:p@localhost", ok, ops), None),
        (email("smtp://u:p@[::1]:25", ok, ops), None),
        (
            email("smtp://u:p@mail.example.com", ok, ops),
            Some(("smtp", "only over TLS")),
        ),
        (
            email("smtp://u@mail.example.com", ok, ops),
            Some(("smtp", "no password")),
        ),
        (
            email("smtps://mail.example.com", ok, ops),
            Some(("smtp", "smtp+starttls://")),
        ),
        (
            email("http://mail.example.com", ok, ops),
            Some(("smtp", "unknown scheme")),
        ),
        (
            email("mail.example.com", ok, ops),
            Some(("smtp", "not a URL")),
        ),
        (email("smtp://", ok, ops), Some(("smtp", "no host"))),
        (
            email("smtp://mail.example.com:0", ok, ops),
            Some(("smtp", "not a port")),
        ),
        (
            email("smtp://mail.example.com:99999", ok, ops),
            Some(("smtp", "not a port")),
        ),
        (
            email("smtp://mail.example.com/path", ok, ops),
            Some(("smtp", "no path")),
        ),
        (
            email("smtp://mail example.com", ok, ops),
            Some(("smtp", "not a host name")),
        ),
        (email("smtp://[::1", ok, ops), Some(("smtp", "closing"))),
        (
            email("smtp://mail.example.com", "ferry", ops),
            Some(("from", "exactly one '@'")),
        ),
        (
            email("smtp://mail.example.com", "a@b@c", ops),
            Some(("from", "exactly one '@'")),
        ),
        (
            email("smtp://mail.example.com", "fe rry@x.com", ops),
            Some(("from", "space")),
        ),
        (
            email("smtp://mail.example.com", "ferry@x.com\r\nBcc: y@z", ops),
            Some(("from", "control")),
        ),
        (
            email("smtp://mail.example.com", "@example.com", ops),
            Some(("from", "before the '@'")),
        ),
        (
            email("smtp://mail.example.com", "ferry@", ops),
            Some(("from", "no valid domain")),
        ),
        (
            email("smtp://mail.example.com", "<ferry@x.com>", ops),
            Some(("from", "'<'")),
        ),
        (
            email("smtp://mail.example.com", ok, &[]),
            Some(("to", "no recipients")),
        ),
        (
            email("smtp://mail.example.com", ok, &twenty_one),
            Some(("to", "21 recipients")),
        ),
        (
            email("smtp://mail.example.com", ok, &["ops@example.com", "x"]),
            Some(("to", "recipient 2")),
        ),
        (
            email("smtp://mail.example.com", ok, &["a@x.com\n"]),
            Some(("to", "control")),
        ),
        (
            email("smtp://mail.example.com", ok, &["a@x.com", "A@x.com"]),
            Some(("to", "twice")),
        ),
        (
            email("smtp://mail.example.com", ok, &["jörg@example.com"]),
            Some(("to", "not ASCII")),
        ),
    ];
    for (channel, expect) in cases {
        let outcome = channel.validate();
        match (expect, outcome) {
            (None, Ok(())) => {}
            (Some((field, piece)), Err(bad)) => {
                assert_eq!(bad.field, field, "{channel:?}: {bad}");
                assert!(
                    bad.message.contains(piece),
                    "{channel:?}: {bad:?} lacks {piece:?}"
                );
                assert!(bad.message.starts_with(&format!("{field}: ")), "{bad}");
                assert!(!bad.message.ends_with('.'), "{bad}");
            }
            (expect, outcome) => panic!("{channel:?}: expected {expect:?}, got {outcome:?}"),
        }
    }
}

#[test]
fn describe_and_debug_never_show_secrets() {
    let cases = [
        (
            Channel::Webhook {
                url: "https://user:pw@hooks.example.com/ferry?token=tok3n".to_owned(),
                secret: SECRET.to_owned(),
                allow_private: false,
            },
            "webhook https://hooks.example.com/ferry?…",
        ),
        (
            Channel::Webhook {
                url: "http://10.0.0.5/ferry".to_owned(),
                secret: SECRET.to_owned(),
                allow_private: true,
            },
            "webhook http://10.0.0.5/ferry (private addresses allowed)",
        ),
        (
            Channel::Email {
                smtp: "smtp+starttls://ferry:hunter2hunter2@mail.example.com".to_owned(),
                from: "ferry@example.com".to_owned(),
                to: vec!["ops@example.com".to_owned()],
            },
            "email to ops@example.com from ferry@example.com via smtp+starttls://ferry@mail.example.com:587",
        ),
        (
            Channel::Email {
                smtp: "smtp://mail.example.com".to_owned(),
                from: "ferry@example.com".to_owned(),
                to: (0..5).map(|n| format!("r{n}@x.com")).collect(),
            },
            "email to r0@x.com, r1@x.com, r2@x.com and 2 more from ferry@example.com via smtp://mail.example.com:25",
        ),
    ];
    for (channel, expect) in cases {
        assert_eq!(channel.describe(), expect);
        let debug = format!("{channel:?}");
        for secret in [SECRET, "hunter2hunter2", "tok3n", "pw@"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}

#[test]
fn channels_serialise_with_a_kind_tag() {
    let cases = [
        (
            Channel::Webhook {
                url: "https://hooks.example.com/ferry".to_owned(),
                secret: SECRET.to_owned(),
                allow_private: false,
            },
            json!({"kind": "webhook", "url": "https://hooks.example.com/ferry", "secret": SECRET}),
        ),
        (
            Channel::Webhook {
                url: "http://10.0.0.5/ferry".to_owned(),
                secret: SECRET.to_owned(),
                allow_private: true,
            },
            json!({"kind": "webhook", "url": "http://10.0.0.5/ferry", "secret": SECRET, "allow_private": true}),
        ),
        (
            Channel::Email {
                smtp: "smtp://mail.example.com".to_owned(),
                from: "ferry@example.com".to_owned(),
                to: vec!["ops@example.com".to_owned()],
            },
            json!({"kind": "email", "smtp": "smtp://mail.example.com", "from": "ferry@example.com", "to": ["ops@example.com"]}),
        ),
    ];
    for (channel, expect) in cases {
        assert_eq!(serde_json::to_value(&channel).unwrap(), expect);
        assert_eq!(serde_json::from_value::<Channel>(expect).unwrap(), channel);
    }
    let typo = json!({"kind": "webhook", "url": "https://x.com", "secrett": SECRET});
    assert!(serde_json::from_value::<Channel>(typo).is_err());
    let unknown = json!({"kind": "pager", "number": "1"});
    assert!(serde_json::from_value::<Channel>(unknown).is_err());
}

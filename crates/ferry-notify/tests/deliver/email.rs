//! E-mail against an SMTP sink written here: envelope, headers, dot-stuffing, refusals.

use std::sync::{Arc, Mutex};

use ferry_notify::{deliver, Channel, Message};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::{closed_port, message};

/// What the sink received in one DATA, with the envelope around it.
#[derive(Clone, Debug)]
struct Mail {
    from: String,
    to: Vec<String>,
    /// The message with dot-stuffing undone, CRLF line endings.
    data: String,
}

/// How the sink answers, beyond plain success.
#[derive(Clone, Copy, Default)]
struct SinkReplies {
    ehlo: Option<&'static str>,
    rcpt: Option<&'static str>,
}

struct Sink {
    url: String,
    mails: Arc<Mutex<Vec<Mail>>>,
    commands: Arc<Mutex<Vec<String>>>,
}

/// An SMTP server on 127.0.0.1:0 that speaks just enough SMTP: 220, multi-line EHLO, HELO,
/// AUTH PLAIN, MAIL, RCPT, DATA with dot-stuffing undone, RSET, QUIT.
async fn start_sink(replies: SinkReplies) -> Sink {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink = Sink {
        url: format!("smtp://{}", listener.local_addr().unwrap()),
        mails: Arc::default(),
        commands: Arc::default(),
    };
    let (mails, commands) = (sink.mails.clone(), sink.commands.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(sink_session(tcp, replies, mails.clone(), commands.clone()));
        }
    });
    sink
}

async fn sink_session(
    tcp: tokio::net::TcpStream,
    replies: SinkReplies,
    mails: Arc<Mutex<Vec<Mail>>>,
    commands: Arc<Mutex<Vec<String>>>,
) {
    let mut io = BufReader::new(tcp);
    io.get_mut()
        .write_all(b"220 sink.test ESMTP ready\r\n")
        .await
        .unwrap();
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        assert!(line.ends_with("\r\n"), "command without CRLF: {line:?}");
        let line = line.trim_end_matches("\r\n").to_owned();
        commands.lock().unwrap().push(line.clone());
        let upper = line.to_ascii_uppercase();
        let angle = || line[line.find('<').unwrap() + 1..line.find('>').unwrap()].to_owned();
        let reply: String = if upper.starts_with("EHLO ") {
            replies
                .ehlo
                .unwrap_or("250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SIZE 10000000")
                .to_owned()
        } else if upper.starts_with("HELO ") {
            "250 sink.test".to_owned()
        } else if upper.starts_with("AUTH PLAIN ") {
            "235 2.7.0 authenticated".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            from = angle();
            to.clear();
            "250 2.1.0 ok".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            match replies.rcpt {
                Some(reply) => reply.to_owned(),
                None => {
                    to.push(angle());
                    "250 2.1.5 ok".to_owned()
                }
            }
        } else if upper == "DATA" {
            io.get_mut()
                .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                .await
                .unwrap();
            let mut data = String::new();
            loop {
                let mut line = String::new();
                assert!(
                    io.read_line(&mut line).await.unwrap() > 0,
                    "connection closed in DATA"
                );
                assert!(
                    line.ends_with("\r\n"),
                    "line without CRLF in DATA: {line:?}"
                );
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            mails.lock().unwrap().push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            "250 2.0.0 queued as SINK1".to_owned()
        } else if upper == "RSET" {
            "250 ok".to_owned()
        } else if upper == "QUIT" {
            let _ = io.get_mut().write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else {
            "500 5.5.1 unknown command".to_owned()
        };
        io.get_mut()
            .write_all(format!("{reply}\r\n").as_bytes())
            .await
            .unwrap();
    }
}

fn email(smtp: &str, to: &[&str]) -> Channel {
    Channel::Email {
        smtp: smtp.to_owned(),
        from: "ferry@example.com".to_owned(),
        to: to.iter().map(|t| t.to_string()).collect(),
    }
}

/// The headers of a message as (name, unfolded value), and its body.
fn split_mail(data: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = data
        .split_once("\r\n\r\n")
        .expect("a blank line after the headers");
    let unfolded = head.replace("\r\n ", " ");
    let headers = unfolded
        .split("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("name: value");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    (headers, body.to_owned())
}

#[tokio::test]
async fn email_reaches_the_sink_with_headers_and_dot_stuffing_undone() {
    let sink = start_sink(SinkReplies::default()).await;
    let text = ".hidden line\n..two dots\n.\nend.\nü and ß";
    let message = Message {
        subject: "Störung: shop".to_owned(),
        text: text.to_owned(),
        ..message()
    };
    let channel = email(&sink.url, &["ops@example.com", "ana@example.com"]);
    let delivered = deliver(&channel, &message).await.unwrap();
    assert_eq!(delivered.detail, "250 2.0.0 queued as SINK1");

    let mails = sink.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "ferry@example.com");
    assert_eq!(mail.to, ["ops@example.com", "ana@example.com"]);
    let (headers, body) = split_mail(&mail.data);
    assert_eq!(body, text.replace('\n', "\r\n") + "\r\n");
    let header = |name: &str| {
        let found: Vec<&String> = headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(found.len(), 1, "{name} in {headers:?}");
        found[0].clone()
    };
    assert_eq!(header("From"), "ferry@example.com");
    assert_eq!(header("To"), "ops@example.com, ana@example.com");
    // RFC 2047: the word that is not ASCII as a UTF-8 encoded-word ("Störung:"), the rest as is.
    assert_eq!(header("Subject"), "=?utf-8?b?U3TDtnJ1bmc6?= shop");
    assert_eq!(header("Date"), "Tue, 14 Nov 2023 22:13:20 +0000");
    assert_eq!(header("Message-ID"), "<ferry.dlv-42@example.com>");
    assert_eq!(header("MIME-Version"), "1.0");
    assert_eq!(header("Content-Type"), "text/plain; charset=utf-8");
    assert_eq!(header("Content-Transfer-Encoding"), "8bit");
    assert_eq!(header("X-Ferry-Event"), "incident.opened");

    let commands = sink.commands.lock().unwrap().clone();
    assert!(commands[0].starts_with("EHLO [127.0.0.1]"), "{commands:?}");
    assert_eq!(commands[1], "MAIL FROM:<ferry@example.com> BODY=8BITMIME");
    assert_eq!(commands.last().unwrap(), "QUIT");
    assert!(
        !commands.iter().any(|c| c.starts_with("AUTH")),
        "{commands:?}"
    );
}

#[tokio::test]
async fn email_authenticates_with_plain_on_loopback() {
    let sink = start_sink(SinkReplies::default()).await;
    let smtp = sink.url.replace("smtp://", "smtp://ferry:p%40ss@");
    deliver(&email(&smtp, &["ops@example.com"]), &message())
        .await
        .unwrap();
    let commands = sink.commands.lock().unwrap().clone();
    // base64 of "\0ferry\0p@ss"
    assert_eq!(commands[1], "AUTH PLAIN AGZlcnJ5AHBAc3M=");
}

/// ferry speaks ESMTP only: a server that refuses EHLO gets no message and no HELO, and the
/// error says so rather than being retried.
#[tokio::test]
async fn email_to_a_server_that_refuses_ehlo_is_not_retried() {
    let sink = start_sink(SinkReplies {
        ehlo: Some("502 5.5.2 EHLO not implemented"),
        ..SinkReplies::default()
    })
    .await;
    let error = deliver(&email(&sink.url, &["ops@example.com"]), &message())
        .await
        .unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(error.message.contains("refused EHLO: 502"), "{error}");
    let commands = sink.commands.lock().unwrap().clone();
    assert!(commands[0].starts_with("EHLO "), "{commands:?}");
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("HELO") || c.starts_with("MAIL")),
        "{commands:?}"
    );
    assert_eq!(commands.last().unwrap(), "QUIT", "{commands:?}");
    assert!(sink.mails.lock().unwrap().is_empty());
}

#[tokio::test]
async fn email_refusals_decide_retries() {
    let cases = [
        ("550 5.1.1 <ops@example.com>: no such user", false),
        ("451 4.3.0 try again later", true),
    ];
    for (rcpt_reply, retryable) in cases {
        let sink = start_sink(SinkReplies {
            rcpt: Some(rcpt_reply),
            ..SinkReplies::default()
        })
        .await;
        let error = deliver(&email(&sink.url, &["ops@example.com"]), &message())
            .await
            .unwrap_err();
        assert_eq!(error.retryable, retryable, "{rcpt_reply}: {error}");
        assert!(
            error.message.contains("RCPT TO:<ops@example.com>"),
            "{error}"
        );
        assert!(error.message.contains(&rcpt_reply[..3]), "{error}");
        let commands = sink.commands.lock().unwrap().clone();
        assert!(!commands.iter().any(|c| c == "DATA"), "{commands:?}");
        assert_eq!(commands.last().unwrap(), "QUIT", "{commands:?}");
        assert!(sink.mails.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn email_connection_refused_is_retryable() {
    let smtp = format!("smtp://{}", closed_port().await);
    let error = deliver(&email(&smtp, &["ops@example.com"]), &message())
        .await
        .unwrap_err();
    assert!(error.retryable, "{error}");
}

#[tokio::test]
async fn email_to_something_that_is_not_smtp_is_not_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let error = deliver(
        &email(&format!("smtp://{addr}"), &["ops@example.com"]),
        &message(),
    )
    .await
    .unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(error.message.contains("does not speak SMTP"), "{error}");
}

/// A server that goes away mid-conversation (restarting, say) may be back later.
#[tokio::test]
async fn email_to_a_server_that_hangs_up_is_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut io = BufReader::new(tcp);
        io.get_mut()
            .write_all(b"220 sink.test ESMTP\r\n")
            .await
            .unwrap();
        let mut ehlo = String::new();
        io.read_line(&mut ehlo).await.unwrap();
        // Dropped here: the connection closes without an answer to EHLO.
    });
    let error = deliver(
        &email(&format!("smtp://{addr}"), &["ops@example.com"]),
        &message(),
    )
    .await
    .unwrap_err();
    assert!(error.retryable, "{error}");
    assert!(error.message.contains("closed the connection"), "{error}");
}

/// Regression: lettre 0.11 panics on an EHLO reply line of nothing but spaces. Whatever a
/// server answers, the delivery must come back with an outcome rather than a panic.
#[tokio::test]
async fn email_an_ehlo_line_of_spaces_does_not_panic() {
    let sink = start_sink(SinkReplies {
        ehlo: Some("250-sink.test\r\n250- \r\n250 8BITMIME"),
        ..SinkReplies::default()
    })
    .await;
    match deliver(&email(&sink.url, &["ops@example.com"]), &message()).await {
        Ok(delivered) => assert_eq!(delivered.detail, "250 2.0.0 queued as SINK1"),
        Err(error) => {
            assert!(!error.retryable, "{error}");
            assert!(error.message.contains("cannot handle"), "{error}");
        }
    }
}

//! `ferry-notify` through its public API: real receivers on 127.0.0.1 (an HTTP server that
//! checks signatures, an SMTP sink written here), plus the table tests of validation,
//! signing and the retry schedule. One test binary, one module per concept.

mod channel;
mod email;
mod retry;
mod webhook;

use std::net::SocketAddr;

use ferry_notify::Message;
use serde_json::json;
use tokio::net::TcpListener;

/// A webhook secret that validates.
pub const SECRET: &str = "0123456789abcdef-webhook-secret";

fn message() -> Message {
    Message {
        id: "dlv-42".to_owned(),
        event: "incident.opened".to_owned(),
        subject: "shop: checkout fails in prd".to_owned(),
        text: "severity critical\nassigned to ana".to_owned(),
        data: json!({"incident": 7, "app": "shop", "severity": "critical"}),
        sent_at_ms: 1_700_000_000_000,
    }
}

/// An address where nothing listens: bound, then closed.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

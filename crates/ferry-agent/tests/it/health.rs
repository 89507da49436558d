//! URL health checks against a real HTTP server on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use ferry_agent::{DeployOutcome, StepKind};

use crate::fixture::*;

/// A tiny HTTP server answering the given statuses in turn (the last one forever), and
/// the request lines and Host headers it received.
fn serve(statuses: Vec<u16>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push(line.trim_end().to_owned());
            }
            let host = head.iter().find(|l| l.starts_with("Host: ")).cloned();
            log.lock()
                .unwrap()
                .push(format!("{} | {}", head[0], host.unwrap_or_default()));
            let status = statuses[i.min(statuses.len() - 1)];
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    (port, seen)
}

fn release_checking(target: &Target, port: u16, content: &str) -> ferry_cas::manifest::Manifest {
    target.release(&[
        ferry_toml(&format!(
            "[health]\nurl = \"http://127.0.0.1:{port}/health?deep=1\"\ntimeout = \"3s\""
        )),
        file("index.html", content),
    ])
}

#[test]
fn a_url_health_check_is_retried_until_it_answers_2xx() {
    let target = Target::new();
    let (port, seen) = serve(vec![503, 502, 204]);
    let v1 = release_checking(&target, port, "1");
    let (outcome, steps) = target.deploy("1.0", &v1);
    assert!(
        matches!(outcome, DeployOutcome::Succeeded { .. }),
        "{outcome:?}"
    );
    let health = steps
        .iter()
        .find(|s| s.kind == StepKind::HealthChecked)
        .unwrap();
    assert!(
        health.detail.contains("after 3 attempt"),
        "{}",
        health.detail
    );
    let expected = format!("GET /health?deep=1 HTTP/1.1 | Host: 127.0.0.1:{port}");
    assert_eq!(*seen.lock().unwrap(), vec![expected; 3]);
}

#[test]
fn a_url_that_never_answers_2xx_switches_back() {
    let target = Target::new();
    let v1 = target.release(&[file("index.html", "1")]);
    target.deploy_ok("1.0", &v1);
    let (port, _) = serve(vec![500]);
    let v2 = target.release(&[
        ferry_toml(&format!(
            "[health]\nurl = \"http://127.0.0.1:{port}/health\"\ntimeout = \"600ms\""
        )),
        file("index.html", "2"),
    ]);
    match target.deploy("2.0", &v2).0 {
        DeployOutcome::RolledBack { reason, .. } => {
            assert!(
                reason.starts_with(&format!(
                    "health check `http://127.0.0.1:{port}/health` failed after"
                )) && reason.ends_with("answered 500"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(target.current().as_deref(), Some("1.0"));
}

#[test]
fn nothing_listening_is_unhealthy() {
    let target = Target::new();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let v1 = target.release(&[
        ferry_toml(&format!(
            "[health]\nurl = \"http://127.0.0.1:{port}/\"\ntimeout = \"300ms\""
        )),
        file("index.html", "1"),
    ]);
    match target.deploy("1.0", &v1).0 {
        DeployOutcome::RolledBack { reason, .. } => {
            assert!(reason.contains("cannot connect"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(target.current(), None);
}

//! What one client may hold of a server: connections that never finish their headers are
//! closed, failed enrollments from one address are throttled, one target's credential holds
//! a bounded number of long-polls, one user a bounded number of live dashboard streams.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::dashboard::browser::Browser;
use crate::dashboard::{log_in, set_password, Web, PASSWORD};
use crate::harness::Server;

fn address(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let server = Server::start_with(&["--header-timeout", "1s"]);
    let mut slow = TcpStream::connect(address(&server)).unwrap();
    slow.write_all(b"GET /api/v1/me HTTP/1.1\r\nHost: ferry\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    // The server closes the connection (with a 408 or nothing): the read ends.
    let _ = slow.read_to_end(&mut answer);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the connection was held {:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // An idle kept-alive connection goes the same way; a prompt client is served.
    server.admin(&["app", "list"]).success();

    // Nonsense flags are refused before the server starts.
    let refused = crate::harness::server_command(&server.dir.path().join("other"))
        .args(["--header-timeout", "0s"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("--header-timeout must be between 1s and 10m"),
        "{said}"
    );
}

async fn enroll(server: &Server, token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/agent/enroll", server.url))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn failed_enrollments_from_one_address_are_throttled() {
    let server = Server::start();
    let token = server.enrollment_token("dev", "dev-1");
    for _ in 0..10 {
        let (status, said) = enroll(&server, "a-guess").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{said}");
    }
    // Past ten failures a minute, even the right token waits: guessing goes no faster.
    let (status, said) = enroll(&server, &token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{said}");
    let message = said["error"]["message"].as_str().unwrap();
    assert!(message.contains("too many failed enrollments"), "{message}");
    assert!(message.contains("wait"), "{message}");
}

#[tokio::test]
async fn one_targets_credential_holds_a_bounded_number_of_long_polls() {
    // Long-polls are held for one heartbeat interval.
    let server = Server::start_with(&["--heartbeat-every", "2s"]);
    let token = server.enrollment_token("dev", "dev-1");
    let (_, enrolled) = enroll(&server, &token).await;
    let credential = enrolled["credential"].as_str().unwrap().to_owned();
    let poll = {
        let (url, credential) = (server.url.clone(), credential.clone());
        move || {
            reqwest::Client::new()
                .get(format!(
                    "{url}/api/v1/agent/desired?after=9223372036854775807"
                ))
                .bearer_auth(&credential)
                .send()
        }
    };
    // Five at once: four are held, the fifth is refused at once.
    let polls: Vec<_> = (0..5).map(|_| tokio::spawn(poll())).collect();
    let mut refusals = Vec::new();
    let mut held = 0;
    for answer in polls {
        let response = answer.await.unwrap().unwrap();
        match response.status() {
            StatusCode::OK => held += 1,
            StatusCode::TOO_MANY_REQUESTS => refusals.push(response.json::<Value>().await.unwrap()),
            other => panic!("{other}"),
        }
    }
    assert_eq!((held, refusals.len()), (4, 1), "{refusals:?}");
    let message = refusals[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("more than one agent"), "{message}");
    // Their places came back.
    assert_eq!(poll().await.unwrap().status(), StatusCode::OK);
}

#[test]
fn one_user_holds_a_bounded_number_of_live_dashboard_streams() {
    let server = Server::start();
    set_password(&server, &server.admin_token);
    let vic = server.create_user("vic", "viewer", &[]);
    set_password(&server, &vic);
    let log_in = |user| Web::log_in(&server, &[("user", user), ("password", PASSWORD)]).unwrap();
    let open = |web: &Web| {
        let (status, stream) = web.open("/live/overview");
        assert_eq!(status, 200);
        stream
    };

    // Sixteen streams over two sessions are held; the seventeenth is refused, saying why.
    let (first, second) = (log_in("admin"), log_in("admin"));
    let mut firsts: Vec<_> = (0..8).map(|_| open(&first)).collect();
    let seconds: Vec<_> = (0..8).map(|_| open(&second)).collect();
    let (status, refused) = second.open("/live/overview");
    assert_eq!(status, 429);
    let page = second.text_of(refused);
    assert!(
        page.contains("admin has 16 live pages open already"),
        "{page}"
    );
    assert!(page.contains("close some of them"), "{page}");
    // Another user is not counted with them.
    assert_eq!(log_in("vic").open("/live/overview").0, 200);

    // A stream closed gives its place back (the first session's: its client runs again).
    let reopen = || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, stream) = first.open("/live/overview");
            if status == 200 {
                return stream;
            }
            assert!(
                Instant::now() < deadline,
                "a closed stream's place never came back"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    drop(firsts.pop());
    firsts.push(reopen());

    // A session that ends ends its streams, and their places come back.
    let out = second.post("/logout", &[("form_token", &second.form_token())], &[]);
    assert_eq!(out.status, 303, "{out:?}");
    for stream in seconds {
        second.text_of(stream);
    }
    while firsts.len() < 16 {
        firsts.push(reopen());
    }
}

#[test]
fn a_page_whose_live_stream_is_refused_says_so() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    set_password(&server, &server.admin_token);
    let web = Web::log_in(&server, &[("user", "admin"), ("password", PASSWORD)]).unwrap();
    let _open: Vec<_> = (0..16).map(|_| web.open("/live/overview").1).collect();
    log_in(&browser, &server, "admin");
    let notice = browser.wait_for_text(".notice.stopped", "stopped updating live");
    assert!(
        notice.contains("close other ferry pages and reload"),
        "{notice}"
    );
}

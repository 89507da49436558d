//! Notifications through the binary: channels per team, real receivers (an HTTP server and
//! an SMTP sink), retries with backoff under an injected clock, permissions, and an audited
//! override reaching the team's webhook.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deployments::{release, setup, start_agent};
use crate::harness::{audit_len, Server};
use crate::receivers::{verify_signature, SmtpSink, WebhookReceiver, REFUSAL_BODY};

const SECRET: &str = "6f1d2c3b4a59687766554433221100ff";
const WAIT: Duration = Duration::from_secs(30);

/// Adds a webhook to a receiver on this machine, which takes an admin's `--allow-private`.
pub(crate) fn add_webhook(server: &Server, team: &str, url: &str) -> i64 {
    let added = server
        .admin(&[
            "channel",
            "add",
            team,
            "--webhook",
            url,
            "--secret",
            SECRET,
            "--allow-private",
            "--json",
        ])
        .success()
        .json();
    added["id"].as_i64().unwrap()
}

/// How a webhook channel to `url` allowed to reach private addresses is described.
fn described(url: &str) -> String {
    format!("webhook {url} (private addresses allowed)")
}

fn deliveries(server: &Server, team: &str) -> Vec<Value> {
    let log = server
        .admin(&["channel", "deliveries", team, "--json"])
        .success()
        .json();
    log.as_array().unwrap().clone()
}

/// Polls the delivery log until delivery `id` satisfies `done`.
fn wait_for_delivery(server: &Server, team: &str, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = deliveries(server, team);
        let delivery = log
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("no delivery {id} in {log:?}"))
            .clone();
        if done(&delivery) {
            return delivery;
        }
        assert!(
            Instant::now() < deadline,
            "delivery never got there: {delivery}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 UTC time like `2027-01-15T08:00:00.123Z`.
fn epoch_ms(text: &str) -> i64 {
    let (date, time) = text.trim_end_matches('Z').split_once('T').unwrap();
    let date: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (y, m, d) = (date[0], date[1], date[2]);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let hms: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap();
    ((days * 24 + hms[0]) * 60 + hms[1]) * 60_000 + hms[2] * 1000 + ms
}

fn set_clock_offset(file: &Path, ms: i64) {
    std::fs::write(file, ms.to_string()).unwrap();
}

#[test]
fn a_channel_test_reaches_a_webhook_and_a_mailbox() {
    let server = Server::start();
    setup(&server);
    let hook = WebhookReceiver::start(200);
    let sink = SmtpSink::start();
    let events_before = audit_len(&server);

    let webhook = add_webhook(&server, "shop", &hook.url());
    let email = server
        .admin(&[
            "channel",
            "add",
            "shop",
            "--email",
            "ops@example.com,dev@example.com",
            "--smtp",
            &sink.url(),
            "--from",
            "ferry@example.com",
            "--json",
        ])
        .success()
        .json()["id"]
        .as_i64()
        .unwrap();

    let listed = server
        .admin(&["channel", "list", "shop", "--json"])
        .success();
    assert!(!listed.stdout.contains(SECRET), "{listed:?}");
    let channels = listed.json();
    assert_eq!(channels.as_array().unwrap().len(), 2, "{channels}");
    assert_eq!(channels[0]["kind"], "webhook");
    assert_eq!(channels[0]["description"], described(&hook.url()));
    assert_eq!(channels[1]["kind"], "email");
    let human = server.admin(&["channel", "list"]).success();
    assert!(human.stdout.contains("ops@example.com"), "{human:?}");

    // The webhook: a signed JSON body.
    let tested = server
        .admin(&[
            "channel",
            "test",
            "shop",
            &webhook.to_string(),
            "--wait",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(tested["status"], "delivered", "{tested}");
    assert_eq!(tested["detail"], "HTTP 200", "{tested}");
    assert_eq!(tested["attempts"], 1);
    let posted = hook.wait_for(1, WAIT);
    let request = &posted[0];
    let signature = &request.headers["x-ferry-signature"];
    assert!(
        verify_signature(SECRET, &request.body, signature),
        "bad signature {signature}"
    );
    assert!(!verify_signature(
        "another-secret-of-16+",
        &request.body,
        signature
    ));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["event"], "channel.test");
    assert_eq!(body["id"], tested["message"]["id"]);
    assert_eq!(body["subject"], "[ferry] test notification for team shop");
    assert_eq!(body["data"]["team"], "shop");

    // The mailbox: the subject and every recipient.
    let tested = server
        .admin(&["channel", "test", "shop", &email.to_string(), "--wait"])
        .success();
    assert!(tested.stdout.contains("delivered"), "{tested:?}");
    let mails = sink.wait_for(1, WAIT);
    assert_eq!(mails[0].from, "ferry@example.com");
    assert_eq!(mails[0].to, ["ops@example.com", "dev@example.com"]);
    assert!(
        mails[0]
            .data
            .contains("Subject: [ferry] test notification for team shop"),
        "{}",
        mails[0].data
    );

    // Both are in the log, adding and testing are audited, and no secret is anywhere.
    let log = deliveries(&server, "shop");
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:?}");
    let audit = server.admin(&["audit", "--json"]).success();
    assert!(!audit.stdout.contains(SECRET));
    let actions: Vec<String> = audit.json().as_array().unwrap()[events_before..]
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["channel.add", "channel.add", "channel.test", "channel.test"]
    );
    let table = server.admin(&["channel", "deliveries", "shop"]).success();
    assert!(table.stdout.contains("HTTP 200"), "{table:?}");
}

#[test]
fn failing_receivers_are_retried_with_backoff_or_given_up() {
    let clock = tempfile::tempdir().unwrap();
    let offset = clock.path().join("offset-ms");
    set_clock_offset(&offset, 0);
    let server = Server::start_with(&["--clock-offset-file", offset.to_str().unwrap()]);
    setup(&server);

    // A receiver answering 500 is tried again: 1 s, then 5 s, then 30 s later.
    let flaky = WebhookReceiver::start(500);
    let channel = add_webhook(&server, "shop", &flaky.url());
    let queued = server
        .admin(&["channel", "test", "shop", &channel.to_string(), "--json"])
        .success()
        .json();
    let id = queued["id"].as_i64().unwrap();
    assert_eq!(queued["status"], "pending");
    let mut moved = 0;
    for (attempts, delay_ms) in [(1, 1_000), (2, 5_000), (3, 30_000)] {
        let delivery = wait_for_delivery(&server, "shop", id, |d| d["attempts"] == attempts);
        assert_eq!(delivery["status"], "pending", "{delivery}");
        assert!(
            delivery["last_error"].as_str().unwrap().contains("500"),
            "{delivery}"
        );
        let last = epoch_ms(delivery["last_attempt_at"].as_str().unwrap());
        let next = epoch_ms(delivery["next_attempt_at"].as_str().unwrap());
        assert_eq!(next - last, delay_ms, "{delivery}");
        if attempts == 3 {
            flaky.set_status(200);
        }
        // Time passes: the next attempt is due. After the second attempt the clock is set
        // back two hours instead: the retry scheduled before that is not held up by it.
        moved += if attempts == 2 { -7_200_000 } else { delay_ms };
        set_clock_offset(&offset, moved);
    }
    let delivered = wait_for_delivery(&server, "shop", id, |d| d["status"] != "pending");
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(delivered["attempts"], 4);
    assert_eq!(delivered["detail"], "HTTP 200");
    assert!(delivered["finished_at"].is_string());
    // Every attempt carried the same message, signed.
    let posted = flaky.requests();
    assert_eq!(posted.len(), 4);
    let ids: Vec<Value> = posted
        .iter()
        .map(|r| {
            assert!(verify_signature(
                SECRET,
                &r.body,
                &r.headers["x-ferry-signature"]
            ));
            serde_json::from_slice::<Value>(&r.body).unwrap()["id"].clone()
        })
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");

    // A receiver answering 404 will not change its mind: failed at once.
    let gone = WebhookReceiver::start(404);
    let channel = add_webhook(&server, "shop", &gone.url());
    let failed = server
        .admin(&["channel", "test", "shop", &channel.to_string(), "--wait"])
        .fails(1, "failed");
    assert!(failed.stderr.contains("404"), "{failed:?}");
    // The log keeps the status; what the receiver said stays with the receiver.
    assert!(!failed.stderr.contains(REFUSAL_BODY), "{failed:?}");
    let log = deliveries(&server, "shop");
    let last = &log[0];
    assert_eq!(
        (&last["status"], &last["attempts"], &last["channel"]),
        (
            &Value::from("failed"),
            &Value::from(1),
            &Value::from(channel)
        ),
        "{last}"
    );
    assert!(last["next_attempt_at"].is_null());
    set_clock_offset(&offset, moved + 3_600_000);
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(gone.requests().len(), 1, "a failed delivery is not retried");

    // The log tells it all, newest first.
    let log = deliveries(&server, "shop");
    let statuses: Vec<&str> = log.iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "delivered"]);
    assert!(log[1]["last_error"].as_str().unwrap().contains("500"));
    let table = server
        .admin(&["channel", "deliveries", "shop", "--json"])
        .success();
    assert!(!table.stdout.contains("hunter2"), "{table:?}");
    let table = server.admin(&["channel", "deliveries", "shop"]).success();
    assert!(table.stdout.contains("4/6"), "{table:?}");
    assert!(table.stdout.contains("404"), "{table:?}");
}

#[test]
fn bad_channels_are_refused_and_only_leads_manage_them() {
    let server = Server::start();
    setup(&server);
    server.admin(&["team", "create", "other"]).success();
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let olga = server.create_user("olga", "viewer", &["other:lead"]);
    let hook = WebhookReceiver::start(200);
    let events_before = audit_len(&server);

    // Refused with what is wrong, and nothing is stored.
    let add = |args: &[&str]| {
        let mut all = vec!["channel", "add", "shop"];
        all.extend_from_slice(args);
        server.ferry(&lee, &all)
    };
    add(&[
        "--webhook",
        "https://hooks.example.com/ferry",
        "--secret",
        "short",
    ])
    .fails(3, "at least 16");
    add(&["--webhook", "ftp://example.com/x", "--secret", SECRET]).fails(3, "http:// or https://");
    add(&[
        "--email",
        "not-an-address",
        "--smtp",
        "smtp://127.0.0.1:2525",
        "--from",
        "ferry@example.com",
    ])
    .fails(3, "'@'");
    add(&[
        "--email",
        "ops@example.com",
        "--smtp",
        "smtp://user:pw@mail.example.com",
        "--from",
        "ferry@example.com",
    ])
    .fails(3, "smtp+starttls");
    add(&["--webhook", &hook.url()]).fails(2, "--secret");
    add(&["--email", "ops@example.com"]).fails(2, "--smtp");
    let listed = server
        .admin(&["channel", "list", "shop", "--json"])
        .success();
    assert_eq!(listed.json(), Value::Array(vec![]));
    assert_eq!(audit_len(&server), events_before);

    // A developer cannot add one. The lead can, but not to this machine's receiver: an
    // address like 127.0.0.1 takes an admin's --allow-private.
    server
        .ferry(
            &dana,
            &[
                "channel",
                "add",
                "shop",
                "--webhook",
                &hook.url(),
                "--secret",
                SECRET,
            ],
        )
        .fails(3, "lead");
    add(&["--webhook", &hook.url(), "--secret", SECRET])
        .fails(3, "127.0.0.1 is a loopback address (127.0.0.0/8); webhooks to loopback, link-local and private addresses need --allow-private");
    add(&[
        "--webhook",
        &hook.url(),
        "--secret",
        SECRET,
        "--allow-private",
    ])
    .fails(
        3,
        "only an admin may let a webhook reach loopback, link-local and private addresses",
    );
    add(&[
        "--email",
        "ops@example.com",
        "--smtp",
        "smtp://127.0.0.1:25",
        "--from",
        "ferry@example.com",
        "--allow-private",
    ])
    .fails(2, "--webhook");
    assert_eq!(audit_len(&server), events_before);
    let id = add_webhook(&server, "shop", &hook.url()).to_string();
    let lead_added = add(&[
        "--webhook",
        "https://hooks.example.com/ferry",
        "--secret",
        SECRET,
        "--json",
    ])
    .success()
    .json();
    server
        .ferry(
            &lee,
            &["channel", "remove", "shop", &lead_added["id"].to_string()],
        )
        .success();
    let seen = server
        .ferry(&dana, &["channel", "list", "shop", "--json"])
        .success()
        .json();
    assert_eq!(seen.as_array().unwrap().len(), 1, "{seen}");
    server
        .ferry(&dana, &["channel", "deliveries", "shop"])
        .success();
    server
        .ferry(&dana, &["channel", "test", "shop", &id])
        .fails(3, "lead");
    server
        .ferry(&dana, &["channel", "remove", "shop", &id])
        .fails(3, "lead");
    server
        .ferry(&olga, &["channel", "list", "shop"])
        .fails(3, "not a member");
    server
        .ferry(&olga, &["channel", "deliveries", "shop"])
        .fails(3, "not a member");
    server
        .ferry(&olga, &["channel", "remove", "shop", &id])
        .fails(3, "not a member");
    let everything = server
        .ferry(&olga, &["channel", "list", "--json"])
        .success()
        .json();
    assert_eq!(
        everything,
        Value::Array(vec![]),
        "other's lead sees only other's"
    );
    server
        .ferry(&olga, &["channel", "remove", "other", &id])
        .fails(1, "has no channel");

    // Removing keeps the log.
    server
        .ferry(&lee, &["channel", "test", "shop", &id, "--wait"])
        .success();
    server
        .ferry(&lee, &["channel", "remove", "shop", &id])
        .success();
    server
        .ferry(&lee, &["channel", "remove", "shop", &id])
        .fails(1, "has no channel");
    let listed = server
        .admin(&["channel", "list", "shop", "--json"])
        .success();
    assert_eq!(listed.json(), Value::Array(vec![]));
    let log = deliveries(&server, "shop");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["channel_description"], described(&hook.url()));
    server
        .admin(&["channel", "deliveries", "shop", "--limit", "0"])
        .fails(3, "limit");
}

#[test]
fn a_break_glass_deploy_notifies_the_team() {
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    release(&server, "1.0.1", "");
    let hook = WebhookReceiver::start(200);
    add_webhook(&server, "shop", &hook.url());
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    server
        .admin(&["env", "set", "dev", "--freeze", "* * * * * 2h"])
        .success();
    server
        .admin(&[
            "deploy",
            "web",
            "1.0.1",
            "--to",
            "dev",
            "--break-glass",
            "--reason",
            "checkout is down",
            "--wait",
        ])
        .success();

    let posted = hook.wait_for(1, WAIT);
    let request = &posted[0];
    assert!(verify_signature(
        SECRET,
        &request.body,
        &request.headers["x-ferry-signature"]
    ));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["event"], "deployment.break_glass", "{body}");
    assert_eq!(
        body["subject"],
        "[ferry] break-glass: admin deployed web 1.0.1 to dev: checkout is down"
    );
    let data = &body["data"];
    assert_eq!(
        (&data["app"], &data["team"], &data["actor"], &data["env"]),
        (
            &Value::from("web"),
            &Value::from("shop"),
            &Value::from("admin"),
            &Value::from("dev")
        ),
        "{data}"
    );
    assert!(data["seq"].is_i64() && data["at"].is_string(), "{data}");
    assert!(
        data["break_glass"]["summary"]
            .as_str()
            .unwrap()
            .contains("checkout is down"),
        "{data}"
    );
    assert!(body["text"]
        .as_str()
        .unwrap()
        .contains("Reason: checkout is down"));

    // Only the override was notifiable: plain deploys and the freeze were not.
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(hook.requests().len(), 1);
    let log = deliveries(&server, "shop");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["event"], "deployment.break_glass");
    assert_eq!(log[0]["audit_seq"], data["seq"]);
}

#[test]
fn incidents_reach_the_routed_team_and_escalations_follow() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock-offset");
    set_clock_offset(&clock, 0);
    let server = Server::start_in_with(dir, &["--clock-offset-file", clock.to_str().unwrap()]);
    setup(&server);
    server.admin(&["team", "create", "ops"]).success();
    server.create_user("amy", "viewer", &["shop:support"]);
    server.create_user("bob", "viewer", &["shop:support"]);
    server.create_user("olga", "viewer", &["ops:support"]);
    server
        .admin(&["team", "rotation", "shop", "--members", "amy,bob"])
        .success();
    server
        .admin(&["route", "set", "infrastructure", "--team", "ops"])
        .success();
    let shop_hook = WebhookReceiver::start(200);
    let ops_hook = WebhookReceiver::start(200);
    let sink = SmtpSink::start();
    add_webhook(&server, "shop", &shop_hook.url());
    add_webhook(&server, "ops", &ops_hook.url());
    server
        .admin(&[
            "channel",
            "add",
            "shop",
            "--email",
            "oncall@example.com",
            "--smtp",
            &sink.url(),
            "--from",
            "ferry@example.com",
        ])
        .success();

    let open = |severity: &str, title: &str, category: &[&str]| {
        let mut args = vec![
            "incident",
            "open",
            "web",
            "--env",
            "prd",
            "--severity",
            severity,
            "--title",
            title,
            "--json",
        ];
        args.extend(category);
        server.admin(&args).success().json()["id"].as_i64().unwrap()
    };
    let critical = open("critical", "checkout down", &[]);
    let received = shop_hook.wait_for(1, WAIT);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["event"], "incident.open", "{body}");
    let subject = body["subject"].as_str().unwrap();
    assert!(subject.contains(&format!("incident {critical}")), "{body}");
    assert_eq!(body["data"]["assignee"], "amy");
    let signature = &received[0].headers["x-ferry-signature"];
    assert!(verify_signature(SECRET, &received[0].body, signature));
    let mail = sink.wait_for(1, WAIT);
    assert!(mail[0].data.contains("checkout down"), "{}", mail[0].data);

    // An infrastructure problem goes to ops' channel, not shop's.
    open("high", "disk full", &["--category", "infrastructure"]);
    let received = ops_hook.wait_for(1, WAIT);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["data"]["team"], "ops", "{body}");

    // Nobody acknowledges: the escalation reaches shop's channel too.
    set_clock_offset(&clock, 16 * 60_000);
    let received = shop_hook.wait_for(2, WAIT);
    let body: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(body["event"], "incident.escalate", "{body}");
    assert_eq!(body["data"]["assignee"], "bob", "{body}");
    assert_eq!(
        shop_hook.requests().len(),
        2,
        "ops' incident stays with ops"
    );
}

#[test]
fn a_webhook_whose_host_resolves_to_a_private_address_fails_when_sent() {
    let server = Server::start();
    setup(&server);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let hook = WebhookReceiver::start(200);
    // A host name is accepted when the channel is added: what it resolves to may change, so
    // it is judged by the addresses it resolves to each time a message is sent.
    let by_name = hook.url().replace("127.0.0.1", "localhost");
    let added = server
        .ferry(
            &lee,
            &[
                "channel",
                "add",
                "shop",
                "--webhook",
                &by_name,
                "--secret",
                SECRET,
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(added["description"], format!("webhook {by_name}"));
    let id = added["id"].to_string();
    let failed = server
        .ferry(&lee, &["channel", "test", "shop", &id, "--wait"])
        .fails(1, "failed");
    let resolved = |text: &str| {
        text.contains("localhost resolves to 127.0.0.1, a loopback address (127.0.0.0/8)")
            || text.contains("localhost resolves to ::1, a loopback address (::1)")
    };
    assert!(resolved(&failed.stderr), "{failed:?}");
    assert!(failed.stderr.contains("--allow-private"), "{failed:?}");
    let log = deliveries(&server, "shop");
    assert_eq!(
        (&log[0]["status"], &log[0]["attempts"]),
        (&Value::from("failed"), &Value::from(1))
    );
    assert!(resolved(log[0]["last_error"].as_str().unwrap()), "{log:?}");
    assert!(hook.requests().is_empty(), "nothing reached the receiver");

    // The same name in a channel an admin allowed to reach private addresses is delivered.
    let allowed = add_webhook(&server, "shop", &by_name);
    server
        .ferry(
            &lee,
            &["channel", "test", "shop", &allowed.to_string(), "--wait"],
        )
        .success();
    assert_eq!(hook.wait_for(1, WAIT).len(), 1);
}

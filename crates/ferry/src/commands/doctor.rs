//! `ferry doctor`: whether this client can work with its server, and whether the server's
//! targets can: the server answers, TLS and the CA it is pinned to, the token, the clocks,
//! then every target's agent and drift. Each finding says what to fix; exit 1 when one is a
//! problem.

use ferry_api::{Target, TargetDrift, WhoAmI};
use ferry_domain::agent_build::DiskSpace;
use ferry_domain::token::ca_fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::client::{Client, Probe, UNTRUSTED_CERTIFICATE, WRONG_SCHEME};
use crate::error::{CliError, CliResult, Failure};
use crate::output::Output;

/// Clocks further apart than this are a problem: freeze windows, approvals, timeouts and
/// incident escalations follow the server's clock, and drift is dated by the agents'.
const CLOCK_SKEW_ALLOWED_SECS: f64 = 2.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Ok,
    Warning,
    Problem,
}

/// One thing checked, what was found, and what to do about it.
#[derive(Debug, Serialize)]
struct Finding {
    check: &'static str,
    verdict: Verdict,
    found: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, found: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Ok,
            found: found.into(),
            fix: None,
        }
    }

    fn warning(check: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Warning,
            fix: Some(fix.into()),
            ..Finding::ok(check, found)
        }
    }

    fn problem(check: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Problem,
            ..Finding::warning(check, found, fix)
        }
    }
}

#[derive(Serialize)]
struct Report {
    server: String,
    findings: Vec<Finding>,
}

pub async fn run(global: &GlobalArgs, output: Output) -> CliResult {
    let client = Client::from_args_maybe_without_token(global)?;
    let findings = examine(&client, token_source(global)).await;
    let problems = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Problem)
        .count();
    let report = Report {
        server: client.base().to_owned(),
        findings,
    };
    output.print(&report, |report| {
        for finding in &report.findings {
            let verdict = match finding.verdict {
                Verdict::Ok => "ok",
                Verdict::Warning => "warning",
                Verdict::Problem => "problem",
            };
            println!("{verdict:<8} {:<7} {}", finding.check, finding.found);
            if let Some(fix) = &finding.fix {
                println!("{:<16} fix: {fix}", "");
            }
        }
    });
    match problems {
        0 => Ok(()),
        n => Err(CliError::after_report(
            Failure::Failed,
            format!("{n} problem{} found", if n == 1 { "" } else { "s" }),
        )),
    }
}

/// Where the token came from, for saying where to change it.
fn token_source(global: &GlobalArgs) -> TokenSource {
    match &global.token {
        Some(token) if std::env::var("FERRY_TOKEN").is_ok_and(|env| env == *token) => {
            TokenSource::Environment
        }
        Some(_) => TokenSource::Flag,
        None => TokenSource::Login,
    }
}

#[derive(Clone, Copy)]
enum TokenSource {
    Flag,
    Environment,
    Login,
}

/// Every check, in order; those that need the server stop at the first it fails.
async fn examine(client: &Client, source: TokenSource) -> Vec<Finding> {
    let mut findings = Vec::new();
    let probe = match client.probe().await {
        Ok(probe) => probe,
        Err(error) => {
            findings.push(unreachable(client, error).await);
            return findings;
        }
    };
    let ours = env!("CARGO_PKG_VERSION");
    let server_version = probe
        .server_version
        .clone()
        .unwrap_or_else(|| "unknown".into());
    findings.push(Finding::ok(
        "server",
        format!(
            "{} answers ({} ms), ferry {server_version}",
            client.base(),
            probe.round_trip.as_millis()
        ),
    ));
    if server_version != ours {
        findings.push(Finding::warning(
            "version",
            format!("this client is ferry {ours}, the server ferry {server_version}"),
            "use the client of the server's version (`ferry --version` says which this is)",
        ));
    }
    findings.push(transport(client));
    findings.push(clock(&probe));
    if client.token().is_empty() {
        findings.push(Finding::problem(
            "token",
            "no API token: the checks that need one were not made",
            format!(
                "`ferry login --server {} --token TOKEN` (or --token, or FERRY_TOKEN)",
                client.base()
            ),
        ));
        return findings;
    }
    let me = match client.get::<WhoAmI>("/api/v1/me").await {
        Ok(me) => me,
        Err(error) => {
            findings.push(token_refused(client, error, source));
            return findings;
        }
    };
    findings.push(Finding::ok(
        "token",
        format!("valid: you are {} (role {})", me.user, me.role),
    ));
    match client.get::<Vec<Target>>("/api/v1/targets").await {
        Ok(targets) => findings.extend(agents(&targets, &server_version)),
        Err(error) => findings.push(Finding::problem(
            "agents",
            format!("cannot list the targets: {}", error.message),
            "check the server's log",
        )),
    }
    match client.get::<Vec<TargetDrift>>("/api/v1/drift").await {
        Ok(drift) => findings.extend(drift.iter().map(drifted)),
        Err(error) => findings.push(Finding::problem(
            "drift",
            format!("cannot list drift: {}", error.message),
            "check the server's log",
        )),
    }
    findings
}

/// Why the server did not answer: with a CA file that did not issue the server's
/// certificate, which CA the server's is from (a pinning mismatch).
async fn unreachable(client: &Client, error: CliError) -> Finding {
    let untrusted = error.code == UNTRUSTED_CERTIFICATE;
    let Some(file) = client.ca_cert().filter(|_| untrusted) else {
        return match error.code.as_str() {
            UNTRUSTED_CERTIFICATE => Finding::problem(
                "tls",
                error.message,
                "copy the server's DATA/tls/ca.pem here and pass it with --ca-cert (or `ferry login --ca-cert FILE`), or put a certificate this machine trusts on the server",
            ),
            WRONG_SCHEME => Finding::problem(
                "tls",
                error.message,
                "correct the scheme of --server (FERRY_SERVER, or `ferry login --server URL`)",
            ),
            _ => Finding::problem(
                "server",
                error.message,
                "start the server, or correct --server (FERRY_SERVER, or `ferry login --server URL`)",
            ),
        };
    };
    let pinned = CertificateDer::pem_file_iter(file)
        .map(|certificates| {
            certificates
                .flatten()
                .map(|c| ca_fingerprint(&c))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let presented = ferry_agent::process::presented_ca_fingerprint(client.base())
        .await
        .unwrap_or_else(|e| format!("unknown ({e:#})"));
    Finding::problem(
        "tls",
        format!(
            "pinning mismatch: the server's certificate is from the CA with fingerprint {presented}, \
             not from the CA in {} ({pinned})",
            file.display()
        ),
        format!(
            "{} is another server's, or this server's CA was made again: copy DATA/tls/ca.pem \
             from the server and pass it with --ca-cert (or `ferry login --ca-cert FILE`)",
            file.display()
        ),
    )
}

/// How requests and the token travel.
fn transport(client: &Client) -> Finding {
    let base = client.base();
    if !base.starts_with("https://") {
        let url = reqwest::Url::parse(base).ok();
        let host = url.as_ref().and_then(|u| u.host_str()).unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse()
                .is_ok_and(ferry_server::is_loopback);
        if loopback {
            return Finding::ok("tls", "plain HTTP on this machine (loopback)");
        }
        return Finding::warning(
            "tls",
            format!("plain HTTP to {host}: the token crosses the network in the clear"),
            "serve HTTPS (`ferry server --tls`, then --ca-cert DATA/tls/ca.pem here), or reach the server through a proxy that terminates TLS",
        );
    }
    match client.ca_cert() {
        Some(file) => Finding::ok(
            "tls",
            format!(
                "the server's certificate is from the CA in {}",
                file.display()
            ),
        ),
        None => Finding::ok(
            "tls",
            "the server's certificate is trusted by this machine's roots",
        ),
    }
}

/// Whether this machine's clock and the server's agree.
fn clock(probe: &Probe) -> Finding {
    let Some(ahead) = probe.server_ahead_secs else {
        return Finding::warning(
            "clock",
            "the server's answer says no time (no Date header)",
            "check what answers in front of the server",
        );
    };
    if ahead.abs() <= CLOCK_SKEW_ALLOWED_SECS {
        return Finding::ok("clock", "this machine's clock agrees with the server's");
    }
    let (seconds, side) = if ahead > 0.0 {
        (ahead, "behind")
    } else {
        (-ahead, "ahead of")
    };
    let apart = ferry_domain::duration::format_duration(std::time::Duration::from_secs(
        seconds.round() as u64,
    ));
    Finding::problem(
        "clock",
        format!("this machine's clock is about {apart} {side} the server's"),
        "synchronise both clocks with NTP (systemd-timesyncd or chrony): freeze windows, \
         approvals and escalations follow the server's clock, drift is dated by the agents'",
    )
}

/// Why `/api/v1/me` failed: a token the server does not know, or something else.
fn token_refused(client: &Client, error: CliError, source: TokenSource) -> Finding {
    if error.code == "unauthorized" {
        let replace = match source {
            TokenSource::Flag => "pass it with --token".to_owned(),
            TokenSource::Environment => {
                "put it in FERRY_TOKEN, which holds the refused one (it wins over a login)"
                    .to_owned()
            }
            TokenSource::Login => {
                format!("`ferry login --server {} --token TOKEN`", client.base())
            }
        };
        return Finding::problem(
            "token",
            format!("the server refuses this token: {}", error.message),
            format!(
                "the token was rotated, mistyped, or its user disabled: get a new one \
                 (`ferry user rotate-token NAME` by an admin) and {replace}"
            ),
        );
    }
    Finding::problem("token", error.message, "check the server's log")
}

/// Each target that cannot be deployed to, or one line when all can.
fn agents(targets: &[Target], server_version: &str) -> Vec<Finding> {
    let mut findings: Vec<Finding> = targets
        .iter()
        .filter_map(|target| match target.health.as_str() {
            "online" => None,
            "not_enrolled" => Some(Finding::warning(
                "agent",
                format!("{} ({}) is not enrolled: no agent has used its token", target.name, target.env),
                format!(
                    "on that machine: `ferry agent enroll --root DIR --server URL TOKEN` with a token from `ferry target enroll {} {}`",
                    target.env, target.name
                ),
            )),
            _ => Some(Finding::problem(
                "agent",
                format!(
                    "{} ({}) is offline: its agent was last heard {}",
                    target.name,
                    target.env,
                    target.last_seen.as_deref().unwrap_or("never")
                ),
                format!(
                    "on {}: start the agent (`systemctl start ferry-agent`, or `ferry agent --root DIR`) and read its log for why it stopped",
                    target.name
                ),
            )),
        })
        .collect();
    findings.extend(
        targets
            .iter()
            .filter_map(|t| agent_build(t, server_version)),
    );
    let online = targets.iter().filter(|t| t.health == "online").count();
    let summary = match targets.len() {
        0 => Finding::warning(
            "agents",
            "no target is enrolled yet: nothing can be deployed",
            "`ferry target enroll ENV NAME`, then `ferry agent enroll` on that machine (docs/install.md)",
        ),
        all => Finding::ok("agents", format!("{online} of {all} targets online")),
    };
    findings.insert(0, summary);
    findings
}

/// What a target's agent said of itself that needs doing something about: a disk running
/// full, or a version other than the server's.
fn agent_build(target: &Target, server_version: &str) -> Option<Finding> {
    let agent = target.agent.as_ref()?;
    if let (Some(free), Some(total)) = (agent.disk_free, agent.disk_total) {
        let disk = DiskSpace { free, total };
        if disk.is_low() {
            return Some(Finding::problem(
                "disk",
                format!(
                    "{} ({}) has {} free on its root's disk ({} % used)",
                    target.name,
                    target.env,
                    crate::output::human_bytes(free),
                    disk.percent_used()
                ),
                format!(
                    "free space on {}: `ferry release prune APP` keeps fewer releases, and the agent prunes its cache of what no kept release uses",
                    target.name
                ),
            ));
        }
    }
    (agent.version != server_version).then(|| {
        Finding::warning(
            "agent",
            format!(
                "{} ({}) runs ferry {}, the server {server_version}",
                target.name, target.env, agent.version
            ),
            format!(
                "upgrade ferry on {} once the server runs the newer one (servers first, then agents)",
                target.name
            ),
        )
    })
}

/// Files on a target that differ from the release it runs.
fn drifted(drift: &TargetDrift) -> Finding {
    Finding::warning(
        "drift",
        format!(
            "{} on {} ({}): {} differ{} from {}",
            drift.app,
            drift.target,
            drift.env,
            match drift.count {
                1 => "1 path".to_owned(),
                n => format!("{n} paths"),
            },
            if drift.count == 1 { "s" } else { "" },
            drift.version
        ),
        format!(
            "`ferry drift {app} --target {target}` lists them; keep them with `ferry drift capture {target} {app} --as VERSION` or undo them with `ferry drift revert {target} {app}`",
            app = drift.app,
            target = drift.target
        ),
    )
}

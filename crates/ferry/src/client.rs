//! The HTTP client of the API: one request per call, API errors mapped to exit codes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_api::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::config;
use crate::error::{CliError, CliResult, Failure};

/// A client of one server, as one user. Cloning shares the connection pool.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    /// The CA certificate an https server's must be issued by, if one was given.
    ca_cert: Option<PathBuf>,
    http: reqwest::Client,
}

/// How the server answered `GET /healthz`.
pub struct Probe {
    pub round_trip: Duration,
    /// How far the server's clock is ahead of this machine's (behind when negative), in
    /// seconds, as far as its `Date` header (whole seconds) tells: `None` without one.
    pub server_ahead_secs: Option<f64>,
    /// The server's ferry version, when it says it.
    pub server_version: Option<String>,
}

impl Client {
    /// The client for the server and token from the flags, the environment or the config.
    pub fn from_args(global: &GlobalArgs) -> CliResult<Client> {
        Client::resolve(global, true)
    }

    /// As [`Client::from_args`], with an empty token where none is given (`ferry doctor`
    /// checks the server without one, and says the token is missing).
    pub fn from_args_maybe_without_token(global: &GlobalArgs) -> CliResult<Client> {
        Client::resolve(global, false)
    }

    fn resolve(global: &GlobalArgs, need_token: bool) -> CliResult<Client> {
        let stored = config::load()?;
        let base = global.server.clone().or(stored.server).ok_or_else(|| {
            CliError::usage(
                "no server: pass --server URL, set FERRY_SERVER, or run `ferry login --server URL --token TOKEN`",
            )
        })?;
        if global.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(CliError::usage(
                "the API token given with --token or FERRY_TOKEN is empty: is the variable you meant to pass set? (`FERRY_TOKEN=$LEE ferry …` needs LEE to hold the token)",
            ));
        }
        let token = match global.token.clone().or(stored.token) {
            Some(token) => token,
            None if !need_token => String::new(),
            None => {
                return Err(CliError::usage(
                    "no API token: pass --token TOKEN, set FERRY_TOKEN, or run `ferry login --server URL --token TOKEN`",
                ))
            }
        };
        let ca_cert = global.ca_cert.clone().or(stored.ca_cert);
        Client::new(&base, &token, ca_cert.as_deref())
    }

    /// A client of `base` (`http://host:port` or `https://…`) with `token`. With `ca_cert`
    /// (a PEM file) an https server is trusted only if that CA issued its certificate;
    /// without it, the platform's roots and Mozilla's are trusted.
    pub fn new(base: &str, token: &str, ca_cert: Option<&Path>) -> CliResult<Client> {
        let base = base.trim_end_matches('/').to_owned();
        check_server_url(&base)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120));
        if let Some(path) = ca_cert {
            builder = builder.tls_built_in_root_certs(false);
            for certificate in read_ca_cert(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| CliError::failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            base,
            token: token.trim().to_owned(),
            ca_cert: ca_cert.map(Path::to_owned),
            http,
        })
    }

    /// The CA certificate file this client trusts an https server by, if one was given.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// Asks `GET /healthz`, which needs no token: whether the server answers, how fast, and
    /// what its clock says.
    pub async fn probe(&self) -> CliResult<Probe> {
        let sent = SystemTime::now();
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let round_trip = started.elapsed();
        if !response.status().is_success() {
            return Err(CliError::failed(format!(
                "{} answered {} to GET /healthz: is it a ferry server?",
                self.base,
                response.status()
            )));
        }
        let server_version = response
            .headers()
            .get(ferry_api::SERVER_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let server_ahead_secs = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|date| date.to_str().ok())
            .and_then(http_date_secs)
            .map(|date| {
                let asked = sent.duration_since(UNIX_EPOCH).unwrap_or_default() + round_trip / 2;
                // The header truncates to the second: the server's clock read within it.
                date as f64 + 0.5 - asked.as_secs_f64()
            });
        Ok(Probe {
            round_trip,
            server_ahead_secs,
            server_version,
        })
    }

    /// The server's URL, as given.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The API token this client sends.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> CliResult<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> CliResult<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> CliResult<T> {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> CliResult<T> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Deletes; the answer has no body.
    pub async fn delete(&self, path: &str) -> CliResult<()> {
        self.send(self.request(Method::DELETE, path))
            .await
            .map(drop)
    }

    /// Deletes and reads a JSON answer (what was removed).
    pub async fn delete_for<T: DeserializeOwned>(&self, path: &str) -> CliResult<T> {
        self.call(Method::DELETE, path, None::<&()>).await
    }

    /// Posts raw bytes (a blob batch) and reads a JSON answer.
    pub async fn post_bytes<T: DeserializeOwned>(&self, path: &str, body: Vec<u8>) -> CliResult<T> {
        let request = self
            .request(Method::POST, path)
            .header("content-type", "application/octet-stream")
            .body(body);
        parse(&self.send(request).await?)
    }

    /// Posts JSON and reads a raw answer (a blob batch).
    pub async fn post_for_bytes<B: Serialize>(&self, path: &str, body: &B) -> CliResult<Vec<u8>> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> CliResult<T> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        parse(&self.send(request).await?)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends a request; a success answers its body, a failure the API error.
    async fn send(&self, request: reqwest::RequestBuilder) -> CliResult<Vec<u8>> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CliError::failed(format!("reading the server's answer: {e}")))?;
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err(api_error(status, &bytes))
        }
    }
}

impl Client {
    /// What a request that got no answer means, and what to do about it.
    fn transport_error(&self, error: &reqwest::Error) -> CliError {
        match tls_error(error) {
            Some(tls @ rustls::Error::InvalidCertificate(_)) => {
                return CliError::new(
                    Failure::Failed,
                    UNTRUSTED_CERTIFICATE,
                    format!(
                        "the ferry server at {} presented a certificate this client does not trust ({tls}); pass --ca-cert FILE or set FERRY_CA_CERT (a server started with --tls keeps its CA in DATA/tls/ca.pem)",
                        self.base
                    ),
                );
            }
            Some(rustls::Error::InvalidMessage(_)) => {
                return CliError::new(
                    Failure::Failed,
                    WRONG_SCHEME,
                    format!(
                        "the ferry server at {} does not answer in TLS: it serves plain HTTP; use {} (or start it with --tls)",
                        self.base,
                        self.base.replacen("https://", "http://", 1)
                    ),
                );
            }
            _ => {}
        }
        let cause = root_cause(error);
        // What a TLS server answers a request in plain HTTP, as hyper reads it.
        if self.base.starts_with("http://") && cause.contains("invalid HTTP version") {
            return CliError::new(
                Failure::Failed,
                WRONG_SCHEME,
                format!(
                    "the ferry server at {} answers in TLS, not plain HTTP: use {}",
                    self.base,
                    self.base.replacen("http://", "https://", 1)
                ),
            );
        }
        CliError::failed(format!(
            "cannot reach the ferry server at {}: {cause}; is it running, and are --server or FERRY_SERVER right?",
            self.base,
        ))
    }
}

/// Refuses (exit 2) a server URL that is neither `http://` nor `https://`.
pub fn check_server_url(url: &str) -> CliResult {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "server URL {url:?} must start with http:// or https://"
    )))
}

/// The code of a failure to trust the server's certificate.
pub const UNTRUSTED_CERTIFICATE: &str = "untrusted_certificate";
/// The code of a server URL whose scheme (http, https) is not the one the server speaks.
pub const WRONG_SCHEME: &str = "wrong_scheme";

/// Seconds since the Unix epoch of an HTTP date (`Sat, 05 Dec 2026 23:20:00 GMT`).
fn http_date_secs(text: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = time::PrimitiveDateTime::parse(text, format).ok()?;
    Some(date.assume_utc().unix_timestamp())
}

/// A successful answer as the type the caller expects.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> CliResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        CliError::failed(format!(
            "the server's answer is not what this client expects ({e}); are client and server the same version?"
        ))
    })
}

/// The CA certificates in a PEM file.
fn read_ca_cert(path: &Path) -> CliResult<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .map_err(|e| CliError::usage(format!("cannot read --ca-cert {}: {e}", path.display())))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        CliError::usage(format!(
            "--ca-cert {} is not a PEM certificate: {e}",
            path.display()
        ))
    })?;
    if certificates.is_empty() {
        return Err(CliError::usage(format!(
            "--ca-cert {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The TLS failure behind a transport error, if there is one.
fn tls_error(error: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        // I/O errors wrap the TLS error, sometimes twice, and skip it in `source()`.
        let mut inner = Some(error);
        while let Some(error) = inner {
            if let Some(tls) = error.downcast_ref::<rustls::Error>() {
                return Some(tls.clone());
            }
            inner = error
                .downcast_ref::<std::io::Error>()
                .and_then(|e| e.get_ref())
                .map(|e| e as &(dyn std::error::Error + 'static));
        }
        cause = error.source();
    }
    None
}

/// The innermost cause of a transport error: "connection refused" rather than a chain.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Maps an API error response to a command failure: refusals exit 3, the rest 1.
fn api_error(status: StatusCode, body: &[u8]) -> CliError {
    let failure = match status.as_u16() {
        400 | 401 | 403 | 409 | 413 | 422 => Failure::Refused,
        _ => Failure::Failed,
    };
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => CliError {
            details: body.error.details,
            ..CliError::new(failure, &body.error.code, body.error.message)
        },
        Err(_) => CliError::new(
            failure,
            "http",
            format!(
                "the server answered {status}: {}",
                String::from_utf8_lossy(body).trim()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_read_as_unix_seconds() {
        for (text, expected) in [
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Sat, 05 Dec 2026 23:20:00 GMT", Some(1_796_512_800)),
            ("Sat, 05 Dec 2026 23:20:00 UTC", None),
            ("yesterday", None),
        ] {
            assert_eq!(http_date_secs(text), expected, "{text}");
        }
    }

    #[test]
    fn refusals_exit_3_and_the_rest_1() {
        let body = br#"{"error":{"code":"forbidden","message":"no"}}"#;
        for (status, exit) in [(403, 3), (401, 3), (422, 3), (409, 3), (404, 1), (500, 1)] {
            let error = api_error(StatusCode::from_u16(status).unwrap(), body);
            assert_eq!(error.exit_code(), exit, "status {status}");
        }
        let body = br#"{"error":{"code":"guard","message":"no","details":{"undone":[]}}}"#;
        let error = api_error(StatusCode::CONFLICT, body);
        assert_eq!(error.details, Some(serde_json::json!({ "undone": [] })));
        let error = api_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(
            error.message,
            "the server answered 502 Bad Gateway: upstream down"
        );
    }
}

//! `ferry server --tls`: a certificate authority of the server's own in `DATA/tls`, a server
//! certificate it signs, and a listener that serves HTTPS with them.
//!
//! `ca.pem` and `ca.key` are created once and kept: agents pin the SHA-256 fingerprint of
//! `ca.pem` (enrollment tokens carry it) and clients trust it with `--ca-cert`. The server
//! certificate (`server.pem`, `server.key`) is issued again by that CA whenever it no longer
//! covers every name asked for (the machine was renamed, `--tls-name` changed) or is about to
//! expire, so neither agents nor clients notice.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ferry_domain::token::ca_fingerprint;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::RootCertStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::files::{create_private_dir, write_private_file};

/// How long the server certificate is valid (what browsers accept for a server certificate).
const SERVER_CERT_DAYS: i64 = 825;
/// The CA lives long: agents pin it.
const CA_CERT_DAYS: i64 = 365 * 30;
/// A server certificate expiring sooner than this is issued again at start.
const RENEW_BEFORE_DAYS: u64 = 30;
/// The longest a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once; more connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 512;
/// The CA's name, the same for every installation: a server certificate is issued again from
/// `ca.key` with these parameters, so they must not change.
const CA_COMMON_NAME: &str = "ferry server CA";

/// What the server serves HTTPS with.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the CA certificate's DER, lowercase hex: what agents pin.
    pub fingerprint: String,
    /// `DATA/tls/ca.pem`, for `--ca-cert`.
    pub ca_path: PathBuf,
}

/// The ring provider, the only one ferry builds with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The names the server certificate covers: loopback, this machine's host name, and `extra`.
pub fn certificate_names(extra: &[String]) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    if let Some(host) = host_name() {
        names.push(host);
    }
    for name in extra {
        let name = name.trim().to_ascii_lowercase();
        if ServerName::try_from(name.as_str()).is_err() {
            bail!("--tls-name {name:?} is neither a DNS name nor an IP address");
        }
        names.push(name);
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    Ok(names)
}

/// This machine's host name, when it is a usable DNS name.
fn host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let host = uname.nodename().to_str().ok()?.trim().to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.parse::<IpAddr>().is_err()
        && matches!(
            ServerName::try_from(host.as_str()),
            Ok(ServerName::DnsName(_))
        );
    valid.then_some(host)
}

/// Loads the CA and server certificate from `DATA/tls`, creating them on the first start and
/// issuing a new server certificate when `names` are not all covered.
pub fn load_or_create(data_dir: &Path, names: &[String]) -> anyhow::Result<Tls> {
    let dir = data_dir.join("tls");
    create_private_dir(&dir)?;
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    let provider = provider();

    if !ca_path.exists() {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let ca_cert = ca_params()?
            .self_signed(&ca_key)
            .context("creating the CA certificate")?;
        // The key first: a CA certificate without its key could issue nothing.
        write_private_file(&ca_key_path, ca_key.serialize_pem().as_bytes())?;
        write_private_file(&ca_path, ca_cert.pem().as_bytes())?;
        // A server certificate of an earlier CA is of no use now.
        for stale in [&cert_path, &key_path] {
            match std::fs::remove_file(stale) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", stale.display()))
                }
                _ => {}
            }
        }
        tracing::info!("created a certificate authority in {}", dir.display());
    }
    let ca = CertificateDer::from_pem_file(&ca_path)
        .with_context(|| format!("reading the CA certificate {}", ca_path.display()))?;

    let renew_at = UnixTime::since_unix_epoch(
        UnixTime::now()
            .as_secs()
            .checked_add(RENEW_BEFORE_DAYS * 24 * 3600)
            .map(Duration::from_secs)
            .context("the clock is past any date")?,
    );
    let existing = if cert_path.exists() && key_path.exists() {
        let leaf = CertificateDer::from_pem_file(&cert_path)
            .with_context(|| format!("reading {}", cert_path.display()))?;
        Some((leaf, read_key(&key_path)?))
    } else {
        None
    };
    let problem = match &existing {
        Some((leaf, _)) => check_leaf(&provider, &ca, leaf, names, renew_at).err(),
        None => Some("there is none yet".to_owned()),
    };
    let (leaf, key) = match (existing, problem) {
        (Some(existing), None) => existing,
        (_, Some(problem)) => {
            if !ca_key_path.exists() {
                bail!(
                    "{} cannot be used ({problem}), and without {} no new one can be issued: remove {} to start over with a new CA (agents must then enroll again)",
                    cert_path.display(),
                    ca_key_path.display(),
                    dir.display()
                );
            }
            let ca_key = KeyPair::from_pem(&read_text(&ca_key_path)?)
                .with_context(|| format!("reading {}", ca_key_path.display()))?;
            let issuer = Issuer::new(ca_params()?, ca_key);
            let key = KeyPair::generate().context("generating the server key")?;
            let cert = server_params(names)?
                .signed_by(&key, &issuer)
                .context("issuing the server certificate")?;
            let leaf = cert.der().clone();
            check_leaf(&provider, &ca, &leaf, names, renew_at).map_err(|e| {
                anyhow::anyhow!(
                    "the new server certificate does not verify against {} ({e}): was the CA replaced by hand? Remove {} to start over",
                    ca_path.display(),
                    dir.display()
                )
            })?;
            write_private_file(&key_path, key.serialize_pem().as_bytes())?;
            write_private_file(&cert_path, cert.pem().as_bytes())?;
            tracing::info!(
                "issued a server certificate for {} ({problem})",
                names.join(", ")
            );
            (leaf, read_key(&key_path)?)
        }
        (None, None) => unreachable!("a missing certificate is a problem"),
    };

    // The CA goes along with the leaf, so agents find the certificate they pinned.
    let chain = vec![leaf, ca.clone()];
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| format!("using {} with {}", cert_path.display(), key_path.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint: ca_fingerprint(&ca),
        ca_path,
    })
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| format!("reading {}", path.display()))
}

/// The CA's parameters; the same on every start (see [`CA_COMMON_NAME`]).
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ferry");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_CERT_DAYS);
    Ok(params)
}

fn server_params(names: &[String]) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(names.to_vec())
        .context("the certificate's names are not DNS names or IP addresses")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "ferry server");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ferry");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SERVER_CERT_DAYS);
    Ok(params)
}

/// Whether `leaf` chains to `ca` and is valid for every name at `at`, as a client checks it.
fn check_leaf(
    provider: &Arc<CryptoProvider>,
    ca: &CertificateDer<'static>,
    leaf: &CertificateDer<'static>,
    names: &[String],
    at: UnixTime,
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).map_err(|e| e.to_string())?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    for name in names {
        let server_name = ServerName::try_from(name.clone()).map_err(|e| e.to_string())?;
        verifier
            .verify_server_cert(leaf, &[], &server_name, &[], at)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// A listener that accepts TCP connections and completes each TLS handshake in a task of its
/// own, so a slow or silent client never holds up the others.
pub struct TlsListener {
    local_addr: SocketAddr,
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (tx, connections) = mpsc::channel(64);
        let accepting = tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(TlsListener {
            local_addr,
            connections,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::error!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(permit);
            match handshake {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
            }
        });
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_made_once_and_reissued_only_for_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let names = certificate_names(&[]).unwrap();
        let first = load_or_create(dir.path(), &names).unwrap();
        let leaf = std::fs::read(dir.path().join("tls/server.pem")).unwrap();
        let again = load_or_create(dir.path(), &names).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(
            leaf,
            std::fs::read(dir.path().join("tls/server.pem")).unwrap()
        );

        let more = certificate_names(&["ferry.example.org".into(), "10.1.2.3".into()]).unwrap();
        let renamed = load_or_create(dir.path(), &more).unwrap();
        assert_eq!(first.fingerprint, renamed.fingerprint, "the CA stays");
        assert_ne!(
            leaf,
            std::fs::read(dir.path().join("tls/server.pem")).unwrap()
        );
        let ca = CertificateDer::from_pem_file(dir.path().join("tls/ca.pem")).unwrap();
        let leaf = CertificateDer::from_pem_file(dir.path().join("tls/server.pem")).unwrap();
        check_leaf(&provider(), &ca, &leaf, &more, UnixTime::now()).unwrap();
        assert!(check_leaf(
            &provider(),
            &ca,
            &leaf,
            &["other.example".into()],
            UnixTime::now()
        )
        .unwrap_err()
        .contains("not valid for name"));
    }

    #[test]
    fn bad_names_are_refused() {
        let error = certificate_names(&["not a name".into()]).unwrap_err();
        assert!(error.to_string().contains("--tls-name"), "{error}");
    }
}

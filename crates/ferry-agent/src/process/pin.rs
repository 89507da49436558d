//! Pinning the server's certificate authority: an enrollment token from a server with TLS
//! ends in `.FINGERPRINT`, the SHA-256 of the server's CA certificate, and the agent then
//! trusts exactly that CA, on the first run and every later one.

use std::sync::{Arc, Mutex};

use anyhow::bail;
use ferry_domain::token::ca_fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Splits an enrollment token into the token itself and the fingerprint it pins, if any.
pub fn split_token(token: &str) -> anyhow::Result<(&str, Option<String>)> {
    let token = token.trim();
    match token.split_once('.') {
        None => Ok((token, None)),
        Some((token, pin)) => {
            if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "the enrollment token ends in {pin:?}, which is not a certificate fingerprint (64 hex digits): copy the whole token `ferry target enroll` printed"
                );
            }
            Ok((token, Some(pin.to_ascii_lowercase())))
        }
    }
}

/// A pinned certificate the server did not present: expected, and what it presented.
#[derive(Clone)]
pub struct Mismatch {
    pub expected: String,
    pub presented: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "certificate fingerprint mismatch: expected {}, the server presented {}",
            self.expected, self.presented
        )
    }
}

/// rustls shows this error with `{:?}`: the same sentence.
impl std::fmt::Debug for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Mismatch {}

/// Accepts a server only if some certificate of the chain it presents has the pinned
/// fingerprint, and its certificate verifies (signature chain, validity, name) against that
/// one certificate as the only root.
#[derive(Debug)]
pub struct PinnedCa {
    pin: String,
    provider: Arc<CryptoProvider>,
    /// The last mismatch seen, so the caller can say clearly what went wrong.
    pub mismatch: Arc<Mutex<Option<Mismatch>>>,
}

impl PinnedCa {
    pub fn new(pin: &str) -> PinnedCa {
        PinnedCa {
            pin: pin.to_ascii_lowercase(),
            provider: provider(),
            mismatch: Arc::default(),
        }
    }
}

/// The ring provider, the only one ferry builds with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration that trusts only the CA with fingerprint `pin`, and the
/// verifier, whose `mismatch` tells why a handshake failed.
pub fn pinned_config(pin: &str) -> anyhow::Result<(rustls::ClientConfig, Arc<PinnedCa>)> {
    let verifier = Arc::new(PinnedCa::new(pin));
    let config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    Ok((config, verifier))
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = || std::iter::once(end_entity).chain(intermediates);
        let Some(ca) = chain().find(|c| ca_fingerprint(c) == self.pin) else {
            let presented = chain()
                .last()
                .map(|c| ca_fingerprint(c))
                .unwrap_or_default();
            let mismatch = Mismatch {
                expected: self.pin.clone(),
                presented,
            };
            *self.mismatch.lock().unwrap_or_else(|e| e.into_inner()) = Some(mismatch.clone());
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(mismatch))),
            ));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_into_token_and_pin() {
        let pin = "AB".repeat(32);
        let with = format!("ferry_123.{pin}");
        assert_eq!(
            split_token(&with).unwrap(),
            ("ferry_123", Some("ab".repeat(32)))
        );
        assert_eq!(split_token(" ferry_123\n").unwrap(), ("ferry_123", None));
        let error = split_token("ferry_123.abc").unwrap_err().to_string();
        assert!(error.contains("not a certificate fingerprint"), "{error}");
    }
}

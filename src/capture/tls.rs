//! Per-camera TLS trust: the one place that decides whether a camera's certificate is accepted,
//! for every path a capture can take over TLS — `https` snapshot URLs ([`super::http`]) and
//! `rtsps`/`https` streams read by ffmpeg ([`super::ffmpeg`], through [`check`]) — so the two
//! paths can never disagree.
//!
//! A camera's `tls_verify` picks the verifier ([`Trust`]):
//!
//! - `system` ([`SystemVerifier`]): rustls' WebPKI verification against Mozilla's root set
//!   (`webpki-roots`, what Heldar's HTTP client always used): chain to a trusted authority, the
//!   URL's host name, validity dates. A refusal carries the presented leaf certificate's SHA-256
//!   fingerprint ([`Refused`]), so an operator can pin a self-signed camera after checking it.
//! - `pinned` ([`PinnedVerifier`]): the leaf certificate's SHA-256 must equal the pin. Issuer,
//!   host name and dates are not checked: a camera's self-signed certificate names whatever its
//!   maker chose and often has odd dates; the pin identifies it exactly.
//! - `off` ([`AnyCertVerifier`]): any certificate. The connection is encrypted but whoever
//!   answers at the camera's address is believed.
//!
//! In every mode the handshake signature is verified with the crypto provider
//! (`verify_tls12_signature`/`verify_tls13_signature`): the server proves it holds the key of the
//! certificate it presented, so a pin cannot be satisfied by replaying the camera's certificate.
//!
//! ffmpeg (whose TLS layer does not verify `rtsps` at all, and which cannot pin) is never asked
//! to decide: [`check`] makes a TLS handshake with the same verifier before ffmpeg starts and
//! refuses the capture the same way the HTTP path would. The residual gap is documented in
//! `docs/security.md`: ffmpeg's own connection, moments later, is not verified.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};
use sha2::{Digest, Sha256};

use super::{CaptureError, GrabRequest};
use crate::camera::fingerprint;
use crate::models::{CameraSpec, TlsVerify};

/// How one camera's certificate is checked (from its `tls_verify` and `tls_fingerprint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Trust {
    #[default]
    System,
    /// The SHA-256 digest of the only certificate accepted.
    Pinned([u8; 32]),
    Off,
}

impl Trust {
    /// The trust a camera's spec asks for. A pinned camera's fingerprint was checked by
    /// `camera::spec`; a stored one that does not parse pins nothing (every certificate is
    /// refused) rather than falling back to a weaker mode.
    pub fn of(spec: &CameraSpec) -> Trust {
        match spec.tls_verify {
            TlsVerify::System => Trust::System,
            TlsVerify::Off => Trust::Off,
            TlsVerify::Pinned => Trust::Pinned(
                spec.tls_fingerprint
                    .as_deref()
                    .and_then(|f| fingerprint::parse(f).ok())
                    .unwrap_or([0; 32]),
            ),
        }
    }
}

/// The SHA-256 fingerprint of a DER certificate, as the API writes it (`sha256:AB:CD:…`).
pub fn fingerprint_of(der: &[u8]) -> String {
    fingerprint::format(&Sha256::digest(der).into())
}

/// Why a verifier refused the camera's certificate; travels inside rustls' error
/// (`CertificateError::Other`) so the capture error can report the presented fingerprint.
#[derive(Debug)]
pub struct Refused {
    /// The presented leaf certificate's fingerprint (`sha256:AB:CD:…`).
    pub presented: String,
    pub why: Why,
}

#[derive(Debug)]
pub enum Why {
    /// `system` mode: WebPKI verification failed (rustls' certificate error, as text).
    Untrusted(String),
    /// `pinned` mode: the certificate is not the pinned one.
    PinMismatch { pinned: String },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.why {
            Why::Untrusted(error) => {
                let problem =
                    super::http::tls_problem(&format!("invalid peer certificate: {error}"))
                        .unwrap_or("the camera's certificate was refused");
                write!(
                    f,
                    "{problem} ({error}); the camera presented a certificate with SHA-256 \
                     fingerprint {}: if this is your camera's certificate, pin it with \
                     tls_verify \"pinned\" and that tls_fingerprint",
                    self.presented
                )
            }
            Why::PinMismatch { pinned } => write!(
                f,
                "the camera's certificate does not match the pinned fingerprint: tls_fingerprint \
                 is {pinned}, the camera presented {} (if the camera's certificate was replaced \
                 on purpose, pin the new one)",
                self.presented
            ),
        }
    }
}

impl std::error::Error for Refused {}

fn refuse(end_entity: &CertificateDer<'_>, why: Why) -> TlsError {
    TlsError::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        Refused {
            presented: fingerprint_of(end_entity),
            why,
        },
    ))))
}

/// The [`Refused`] inside an error chain, if a verifier of this module refused the certificate.
/// Looks through `io::Error` wrappers (whose `source()` skips the error they wrap).
pub fn refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(TlsError::InvalidCertificate(CertificateError::Other(o))) =
            err.downcast_ref::<TlsError>()
        {
            if let Some(r) = o.0.downcast_ref::<Refused>() {
                return Some(r);
            }
        }
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(r) = refusal(inner) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// The `tls` capture error for a refused certificate, with its fingerprint for the API body.
pub fn refused_error(req: &GrabRequest, refused: &Refused) -> CaptureError {
    CaptureError::Tls {
        message: format!(
            "camera {}: the TLS handshake with {} failed: {refused}",
            req.camera,
            req.shown_url()
        ),
        fingerprint: Some(refused.presented.clone()),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Signature checks shared by every verifier: the server holds the presented certificate's key.
#[derive(Debug)]
struct Signatures(Arc<CryptoProvider>);

impl Signatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `system`: WebPKI against Mozilla's roots; a refusal reports the presented fingerprint.
#[derive(Debug)]
pub struct SystemVerifier {
    inner: Arc<WebPkiServerVerifier>,
    sig: Signatures,
}

impl SystemVerifier {
    fn new(provider: Arc<CryptoProvider>) -> SystemVerifier {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("Mozilla's root set is not empty");
        SystemVerifier {
            inner,
            sig: Signatures(provider),
        }
    }
}

impl ServerCertVerifier for SystemVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| match e {
                TlsError::InvalidCertificate(ce) => {
                    refuse(end_entity, Why::Untrusted(format!("{ce}")))
                }
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.sig.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.sig.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.sig.schemes()
    }
}

/// `pinned`: the leaf certificate's SHA-256 is the pin; nothing else about it is checked.
#[derive(Debug)]
pub struct PinnedVerifier {
    pin: [u8; 32],
    sig: Signatures,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let presented: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if presented == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(refuse(
                end_entity,
                Why::PinMismatch {
                    pinned: fingerprint::format(&self.pin),
                },
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.sig.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.sig.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.sig.schemes()
    }
}

/// `off`: any certificate (the handshake signature is still checked against it).
#[derive(Debug)]
pub struct AnyCertVerifier {
    sig: Signatures,
}

impl ServerCertVerifier for AnyCertVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.sig.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.sig.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.sig.schemes()
    }
}

/// The rustls client configuration for `trust` (ring provider, TLS 1.2 and 1.3, no client
/// certificate), used by both the HTTP client and [`check`].
pub fn client_config(trust: Trust) -> rustls::ClientConfig {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        Trust::System => Arc::new(SystemVerifier::new(provider.clone())),
        Trust::Pinned(pin) => Arc::new(PinnedVerifier {
            pin,
            sig: Signatures(provider.clone()),
        }),
        Trust::Off => Arc::new(AnyCertVerifier {
            sig: Signatures(provider.clone()),
        }),
    };
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// Verify the certificate of the TLS server at `req.url` (an `rtsps` or `https` stream that
/// ffmpeg is about to open) with the camera's trust: connect, handshake, close. `rtsps` without a
/// port means 322, ffmpeg's default. With `off` nothing is checked (ffmpeg accepts anything).
///
/// # Errors
/// `tls` when the certificate is refused (with its fingerprint) or the handshake fails,
/// `unreachable` when the camera cannot be connected to, `timeout` past `req.deadline`.
pub async fn check(req: &GrabRequest) -> Result<(), CaptureError> {
    if req.tls == Trust::Off {
        return Ok(());
    }
    let shown = req.shown_url();
    let Some(host) = req.url.host_str() else {
        return Ok(());
    };
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = req.url.port().unwrap_or(if req.url.scheme() == "rtsps" {
        322
    } else {
        443
    });
    let name = ServerName::try_from(bare.clone()).map_err(|e| CaptureError::Tls {
        message: format!(
            "camera {}: {shown}: {bare:?} cannot be used as a TLS server name ({e})",
            req.camera
        ),
        fingerprint: None,
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(req.tls)));
    let work = async {
        let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(|e| {
                CaptureError::Unreachable(format!(
                    "camera {}: cannot connect to {shown} ({e})",
                    req.camera
                ))
            })?;
        let _ = tcp.set_nodelay(true);
        let mut tls = connector.connect(name, tcp).await.map_err(|e| {
            if let Some(r) = refusal(&e) {
                return refused_error(req, r);
            }
            let why = e.to_string();
            let problem = super::http::tls_problem(&why).unwrap_or("the TLS handshake failed");
            CaptureError::Tls {
                message: format!(
                    "camera {}: the TLS handshake with {shown} failed: {problem} ({why})",
                    req.camera
                ),
                fingerprint: None,
            }
        })?;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
        Ok(())
    };
    match tokio::time::timeout_at(req.deadline, work).await {
        Ok(r) => r,
        Err(_) => Err(CaptureError::Timeout(format!(
            "camera {}: {shown}: the TLS handshake did not finish in time",
            req.camera
        ))),
    }
}

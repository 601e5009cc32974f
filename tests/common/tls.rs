//! An HTTPS (TLS) fake camera with a fresh self-signed certificate (made by rcgen, served by
//! tokio-rustls on a loopback port): answers every request with one JPEG.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use heldar::fakecam::pattern;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTPS camera: answers every request with one JPEG, over TLS with a fresh self-signed
/// certificate.
pub struct TlsCamera {
    pub port: u16,
    /// `sha256:AB:CD:…` of the certificate it presents.
    pub fingerprint: String,
    /// Handshakes completed (a refused certificate never completes one).
    pub handshakes: Arc<AtomicUsize>,
}

impl TlsCamera {
    pub async fn start() -> TlsCamera {
        let key = rcgen::generate_simple_self_signed(vec!["ipcam.local".to_string()]).unwrap();
        let der = key.cert.der().clone();
        let fingerprint = heldar::camera::fingerprint::format(&Sha256::digest(&der).into());
        let private =
            rustls::pki_types::PrivateKeyDer::try_from(key.key_pair.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], private)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let count = handshakes.clone();
        let jpeg = pattern::solid_jpeg(160, 120, [200, 40, 40]);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (acceptor, count, jpeg) = (acceptor.clone(), count.clone(), jpeg.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        jpeg.len()
                    );
                    let _ = tls.write_all(resp.as_bytes()).await;
                    let _ = tls.write_all(&jpeg).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsCamera {
            port,
            fingerprint,
            handshakes,
        }
    }

    pub fn https(&self) -> String {
        format!("https://127.0.0.1:{}/snap.jpg", self.port)
    }

    pub fn rtsps(&self) -> String {
        format!("rtsps://127.0.0.1:{}/stream", self.port)
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

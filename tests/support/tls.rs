//! TLS for the tests of `MOSTDB_TLS_*`: throwaway certificates from `rcgen` (a CA and what it
//! signs, for this process's loopback addresses), a `rustls` client over a blocking socket,
//! and a readiness probe over TLS for [`Node::wait_until`](super::Node::wait_until).
//!
//! Must not import the `mostdb` library.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::addr;

/// Socket timeout of one client request.
pub const TLS_IO_TIMEOUT_MS: u64 = 5_000;

// ------------------------------------------------------------------------------------------------
// Certificates

/// A CA and what it signed, written as PEM files into one directory.
pub struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-signed CA");
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("pki dir");
        std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write CA");
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for 127.0.0.1, this process's own loopback address (where cluster
    /// members listen) and localhost, for servers and clients alike: its (certificate chain,
    /// key) paths.
    pub fn issue(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let sans = vec![
            "127.0.0.1".to_string(),
            addr::process_ip().to_string(),
            "localhost".to_string(),
        ];
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}

// ------------------------------------------------------------------------------------------------
// A client over TLS

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config that trusts `ca`, presenting `client` (certificate, key) if given.
pub fn client_config(ca: &Path, client: Option<&(PathBuf, PathBuf)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("read cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("cert PEM");
            let key = PrivateKeyDer::from_pem_file(key).expect("key PEM");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client cert")
        }
    };
    Arc::new(config)
}

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends one request over TLS and reads its answer (up to its `Content-Length`).
pub fn tls_request(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    head: &str,
    body: &str,
) -> std::io::Result<Answer> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_millis(TLS_IO_TIMEOUT_MS)))?;
    tcp.set_write_timeout(Some(Duration::from_millis(TLS_IO_TIMEOUT_MS)))?;
    let name = ServerName::from(addr.ip());
    let conn =
        rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "{head}\r\nHost: {}\r\nContent-Length: {}\r\n\r\n{body}",
        addr.ip(),
        body.len()
    );
    tls.write_all(request.as_bytes())?;
    read_answer(&mut tls)
}

/// Reads one HTTP answer from `r`: its head, then `Content-Length` bytes of body.
pub fn read_answer(r: &mut impl Read) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                return Ok(Answer { status, body });
            }
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub fn set(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, key: &str, value: &str) -> Answer {
    let body = format!(r#"{{"key":"{key}","value":"{value}"}}"#);
    tls_request(addr, config, "POST /mostdb/set HTTP/1.1", &body).expect("set over TLS")
}

/// This node's own copy of `key` (`/mostdb/api/get`, no quorum).
pub fn local_get(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    key: &str,
) -> std::io::Result<Answer> {
    let body = format!(r#"{{"key":"{key}"}}"#);
    tls_request(addr, config, "POST /mostdb/api/get HTTP/1.1", &body)
}

pub fn tls_env(cert: &(PathBuf, PathBuf), ca: Option<&Path>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("MOSTDB_TLS_CERT", cert.0.display().to_string()),
        ("MOSTDB_TLS_KEY", cert.1.display().to_string()),
    ];
    if let Some(ca) = ca {
        env.push(("MOSTDB_TLS_CA", ca.display().to_string()));
    }
    env
}

/// A readiness probe over TLS: `GET /readyz` answered 200.
pub fn ready_over_tls(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> bool {
    matches!(
        tls_request(addr, config, "GET /readyz HTTP/1.1", ""),
        Ok(Answer { status: 200, .. })
    )
}

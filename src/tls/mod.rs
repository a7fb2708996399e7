//! TLS for clients and peer links (DESIGN §14): the rustls configurations built from the
//! `MOSTDB_TLS_*` PEM files, and [`Stream`], a connection that is either plain TCP or TLS,
//! which the HTTP layer serves and the peer links split into their read and write loops.
//! rustls does all the cryptography, with the `ring` provider; `stream.rs` only moves bytes.
//!
//! With `MOSTDB_TLS_CERT` and `MOSTDB_TLS_KEY` the port speaks only TLS, to clients and peers
//! alike; peers are then dialled over TLS too. `MOSTDB_TLS_CA` turns on mutual TLS between
//! nodes: a dialler verifies the peer's certificate against it (for the member's host name or
//! IP address) and presents its own certificate; the server asks every client for one but
//! does not insist, so plain clients still work, and the API admits the peer upgrade only on a
//! connection whose certificate verified ([`Stream::peer_certified`]).
//!
//! Must not import `http`, `api`, `replication`, `storage` or `cluster`: it sits below them.

mod stream;

pub use stream::{TlsReadHalf, TlsStream, TlsWriteHalf};

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Splitable};
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::config::Settings;
use crate::limits::TLS_HANDSHAKE_TIMEOUT_MS;

const ENV_CERT: &str = "MOSTDB_TLS_CERT";
const ENV_KEY: &str = "MOSTDB_TLS_KEY";
const ENV_CA: &str = "MOSTDB_TLS_CA";

/// A TLS file that cannot be used. `Display` is one line naming the setting and the path.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting}={path}: cannot read it: {source}")]
    Read {
        setting: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("{setting}={path}: {problem}")]
    Invalid {
        setting: &'static str,
        path: String,
        problem: String,
    },
}

/// The node's TLS: how it accepts connections and, with a CA, how it dials its peers.
pub struct Tls {
    server: Arc<ServerConfig>,
    dialer: Option<TlsDialer>,
}

impl Tls {
    /// The configurations the settings ask for; `None` when TLS is off. Reads and checks
    /// every file now, so a bad one stops the start with a line naming its setting.
    pub fn from_settings(settings: &Settings) -> Result<Option<Tls>, TlsError> {
        let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = read_certs(ENV_CERT, cert)?;
        let key_der = read_key(key)?;
        let roots = match &settings.tls_ca {
            Some(ca) => Some((Arc::new(read_roots(ca)?), ca)),
            None => None,
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(ENV_CERT, cert, e))?;
        let builder = match &roots {
            Some((roots, ca)) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| invalid(ENV_CA, ca, e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let server = builder
            .with_single_cert(chain.clone(), key_der.clone_key())
            .map_err(|e| invalid(ENV_KEY, key, format!("does not fit {ENV_CERT}: {e}")))?;
        let dialer = match roots {
            Some((roots, _)) => Some(TlsDialer::new(provider, roots, chain, key_der, key)?),
            None => None,
        };
        Ok(Some(Tls {
            server: Arc::new(server),
            dialer,
        }))
    }

    /// How peers are dialled: over TLS with this node's certificate (`None` without a CA).
    pub fn dialer(&self) -> Option<TlsDialer> {
        self.dialer.clone()
    }
}

/// An accepted connection as the HTTP layer serves it: plain with TLS off, else after a
/// TLS handshake bounded by `TLS_HANDSHAKE_TIMEOUT_MS`.
pub async fn accept(tls: Option<&Tls>, tcp: TcpStream) -> io::Result<Stream> {
    let Some(tls) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    let conn = ServerConnection::new(tls.server.clone()).map_err(io::Error::other)?;
    let limit = Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS);
    match monoio::time::timeout(limit, TlsStream::accept(tcp, conn.into())).await {
        Ok(stream) => stream.map(Stream::Tls),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

/// Dials peers over TLS: verifies them against `MOSTDB_TLS_CA` and presents this node's
/// certificate. Cheap to clone.
#[derive(Clone)]
pub struct TlsDialer {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for TlsDialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsDialer")
    }
}

impl TlsDialer {
    fn new(
        provider: Arc<CryptoProvider>,
        roots: Arc<RootCertStore>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        key_path: &Path,
    ) -> Result<TlsDialer, TlsError> {
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(ENV_KEY, key_path, e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| invalid(ENV_KEY, key_path, format!("does not fit {ENV_CERT}: {e}")))?;
        Ok(TlsDialer {
            config: Arc::new(config),
        })
    }

    /// A blocking TLS client stream over `tcp` to `addr` (`host:port`), with this node's
    /// certificate: for calls made off the event loop (the admin fan-out). The handshake
    /// happens on the first read or write, within the socket's timeouts.
    pub fn blocking(
        &self,
        tcp: std::net::TcpStream,
        addr: &str,
    ) -> io::Result<rustls::StreamOwned<ClientConnection, std::net::TcpStream>> {
        let name = server_name(addr)?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(io::Error::other)?;
        Ok(rustls::StreamOwned::new(conn, tcp))
    }

    /// The TLS handshake on a connected socket to `addr` (`host:port`), whose certificate
    /// must name `host`. The caller bounds the time it takes (the peer handshake deadline).
    pub async fn connect(&self, tcp: TcpStream, addr: &str) -> io::Result<Stream> {
        let name = server_name(addr)?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(io::Error::other)?;
        TlsStream::connect(tcp, conn.into()).await.map(Stream::Tls)
    }
}

/// The name a peer's certificate must carry: the host of `host:port` (a DNS name, or an IP
/// address, bracketed or not, for an IP SAN).
fn server_name(addr: &str) -> io::Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _port)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        let what = format!("{host:?} cannot be checked against a certificate: {e}");
        io::Error::new(io::ErrorKind::InvalidInput, what)
    })
}

fn invalid(setting: &'static str, path: &Path, problem: impl fmt::Display) -> TlsError {
    TlsError::Invalid {
        setting,
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

/// `pem::Error` as a `TlsError` of `setting`: I/O errors are `Read`, the rest `Invalid`.
fn pem_error(setting: &'static str, path: &Path, what: &str, err: pem::Error) -> TlsError {
    match err {
        pem::Error::Io(source) => TlsError::Read {
            setting,
            path: path.display().to_string(),
            source,
        },
        pem::Error::NoItemsFound => invalid(setting, path, format!("no {what} in it")),
        other => invalid(setting, path, format!("not a PEM file of {what}: {other}")),
    }
}

fn read_certs(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let what = "CERTIFICATE blocks";
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(setting, path, what, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(setting, path, what, e))?;
    if certs.is_empty() {
        return Err(pem_error(setting, path, what, pem::Error::NoItemsFound));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(ENV_KEY, path, "PRIVATE KEY", e))
}

fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ENV_CA, path)? {
        roots.add(cert).map_err(|e| {
            invalid(
                ENV_CA,
                path,
                format!("a certificate is not a usable CA: {e}"),
            )
        })?;
    }
    Ok(roots)
}

/// A connection, plain TCP or TLS. Reads and writes like a `TcpStream`; split into halves
/// for concurrent read and write loops (peer links).
pub enum Stream {
    Plain(TcpStream),
    Tls(TlsStream),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Plain(_) => f.write_str("Stream::Plain"),
            Stream::Tls(_) => f.write_str("Stream::Tls"),
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(tcp: TcpStream) -> Stream {
        Stream::Plain(tcp)
    }
}

impl Stream {
    /// Whether this is TLS and the other side's certificate verified (see
    /// [`TlsStream::peer_certified`]). Always false for plain TCP.
    pub fn peer_certified(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.peer_certified(),
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Plain(tcp) => tcp.peer_addr(),
            Stream::Tls(tls) => tls.peer_addr(),
        }
    }

    /// `TCP_NODELAY`. A TLS stream had it set on its socket before the handshake (by the
    /// accept loop or the dialler), so this changes nothing there.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.set_nodelay(nodelay),
            Stream::Tls(_) => Ok(()),
        }
    }
}

/// The reading half of a split [`Stream`].
pub enum ReadHalf {
    Plain(TcpOwnedReadHalf),
    Tls(TlsReadHalf),
}

/// The writing half of a split [`Stream`].
pub enum WriteHalf {
    Plain(TcpOwnedWriteHalf),
    Tls(TlsWriteHalf),
}

impl Splitable for Stream {
    type OwnedRead = ReadHalf;
    type OwnedWrite = WriteHalf;

    fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            Stream::Tls(tls) => {
                let (r, w) = tls.into_split();
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

/// Forwards the read methods to whichever variant `$self` is.
macro_rules! forward_read {
    ($ty:ty) => {
        impl AsyncReadRent for $ty {
            async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    Self::Plain(io) => io.read(buf).await,
                    Self::Tls(io) => io.read(buf).await,
                }
            }

            async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    Self::Plain(io) => io.readv(buf).await,
                    Self::Tls(io) => io.readv(buf).await,
                }
            }
        }
    };
}

/// Forwards the write methods to whichever variant `$self` is.
macro_rules! forward_write {
    ($ty:ty) => {
        impl AsyncWriteRent for $ty {
            async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    Self::Plain(io) => io.write(buf).await,
                    Self::Tls(io) => io.write(buf).await,
                }
            }

            async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
                match self {
                    Self::Plain(io) => io.writev(buf).await,
                    Self::Tls(io) => io.writev(buf).await,
                }
            }

            async fn flush(&mut self) -> io::Result<()> {
                match self {
                    Self::Plain(io) => io.flush().await,
                    Self::Tls(io) => io.flush().await,
                }
            }

            async fn shutdown(&mut self) -> io::Result<()> {
                match self {
                    Self::Plain(io) => io.shutdown().await,
                    Self::Tls(io) => io.shutdown().await,
                }
            }
        }
    };
}

forward_read!(Stream);
forward_read!(ReadHalf);
forward_write!(Stream);
forward_write!(WriteHalf);

#[cfg(test)]
mod tests;

#[cfg(test)]
mod name_tests {
    use super::server_name;

    #[test]
    fn the_name_checked_is_the_host_of_the_member_address() {
        let name = |addr| server_name(addr).map(|n| n.to_str().into_owned()).ok();
        assert_eq!(name("db-1.example:5379").as_deref(), Some("db-1.example"));
        assert_eq!(name("10.0.0.7:5379").as_deref(), Some("10.0.0.7"));
        assert_eq!(name("[::1]:5379").as_deref(), Some("::1"));
        assert!(name("bad host:1").is_none());
    }
}

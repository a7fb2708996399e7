//! Tests of the TLS stream on a real loopback socket (monoio, epoll driver): the split halves
//! run at once, a client certificate is seen, a read dropped by a timeout breaks nothing (with
//! epoll nothing is lost either; under io_uring a cancelled read may lose its bytes, but the
//! connection is closed then anyway).

use std::path::{Path, PathBuf};
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRentExt, Splitable};
use monoio::net::{TcpListener, TcpStream};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use super::*;

/// Bytes sent each way in the concurrent test: many records and full socket buffers.
const PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// A CA and one certificate for 127.0.0.1 written into a fresh directory; the settings that
/// name them.
fn settings_with_certs(label: &str) -> (Settings, PathBuf) {
    let dir = std::env::temp_dir().join(format!("mostdb-tls-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("sign");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        Some(path)
    };
    let settings = Settings {
        tls_cert: write("node.pem", cert.pem()),
        tls_key: write("node.key", key.serialize_pem()),
        tls_ca: write("ca.pem", ca_cert.pem()),
        ..Settings::default()
    };
    (settings, dir)
}

fn run<F: std::future::Future<Output = ()>>(test: F) {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("runtime");
    rt.block_on(test);
}

/// A server and a client TLS stream connected to each other over loopback.
async fn pair(tls: &Tls) -> (Stream, Stream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let dialer = tls.dialer().expect("a dialer with a CA");
    let client = monoio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        dialer
            .connect(tcp, &addr.to_string())
            .await
            .expect("client handshake")
    });
    let (tcp, _) = listener.accept().await.expect("accept");
    let server = accept(Some(tls), tcp).await.expect("server handshake");
    (server, client.await)
}

fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn split_halves_carry_a_large_payload_both_ways_at_once() {
    let (settings, dir) = settings_with_certs("split");
    let tls = Tls::from_settings(&settings).expect("load").expect("on");
    run(async move {
        let (server, client) = pair(&tls).await;
        assert!(
            server.peer_certified(),
            "the dialler presents its certificate"
        );
        // The server echoes through its halves; the client writes and reads at once.
        let echo = monoio::spawn(async move {
            let (mut r, mut w) = server.into_split();
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                let (res, b) = r.read(buf).await;
                buf = b;
                match res {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let (res, b) = w.write_all(buf).await;
                        res.expect("echo write");
                        buf = b;
                        buf.clear();
                    }
                }
            }
        });
        let (mut r, mut w) = client.into_split();
        let sent: Vec<u8> = (0..PAYLOAD_BYTES).map(|i| (i % 251) as u8).collect();
        let expected = sent.clone();
        let writer = monoio::spawn(async move {
            let (res, _) = w.write_all(sent).await;
            res.expect("client write");
            w
        });
        let (res, got) = r.read_exact(vec![0u8; PAYLOAD_BYTES]).await;
        res.expect("client read");
        assert!(got == expected, "the echo differs");
        let mut w = writer.await;
        monoio::io::AsyncWriteRent::shutdown(&mut w)
            .await
            .expect("close_notify");
        echo.await;
    });
    cleanup(&dir);
}

#[test]
fn a_read_dropped_by_a_timeout_leaves_the_stream_usable() {
    let (settings, dir) = settings_with_certs("cancel");
    let tls = Tls::from_settings(&settings).expect("load").expect("on");
    run(async move {
        let (mut server, mut client) = pair(&tls).await;
        // Nothing arrives: the timeout drops the read in flight (as the HTTP loop does).
        let dropped = monoio::time::timeout(
            Duration::from_millis(50),
            server.read(Vec::with_capacity(1024)),
        )
        .await;
        assert!(dropped.is_err(), "nothing was sent");
        let (res, _) = client.write_all(b"after".to_vec()).await;
        res.expect("client write");
        let (res, got) = server.read(Vec::with_capacity(1024)).await;
        assert_eq!(res.expect("server read"), 5);
        assert_eq!(&got[..], b"after");
    });
    cleanup(&dir);
}

/// The client side of a handshake from `dialer` to a server with `server`'s certificate, the
/// dialler naming the server `host`.
async fn dial_result(server: &Tls, dialer: &Tls, host: &str) -> io::Result<Stream> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server_config = server.server.clone();
    let accepting = monoio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let conn = ServerConnection::new(server_config).expect("server connection");
        let _ = TlsStream::accept(tcp, conn.into()).await;
    });
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let dialer = dialer.dialer().expect("a dialer");
    let result = dialer.connect(tcp, &format!("{host}:{port}")).await;
    accepting.await;
    result
}

#[test]
fn a_dialler_checks_the_peer_certificate_against_its_ca_and_the_member_name() {
    let (settings_a, dir_a) = settings_with_certs("ca-a");
    let (settings_b, dir_b) = settings_with_certs("ca-b");
    let a = Tls::from_settings(&settings_a).expect("load").expect("on");
    let b = Tls::from_settings(&settings_b).expect("load").expect("on");
    run(async move {
        let other_ca = dial_result(&a, &b, "127.0.0.1").await;
        let err = other_ca.expect_err("a certificate from another CA is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        // The certificate names 127.0.0.1 only.
        let wrong_name = dial_result(&a, &a, "localhost").await;
        let err = wrong_name.expect_err("a certificate for another name is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(dial_result(&a, &a, "127.0.0.1").await.is_ok());
    });
    cleanup(&dir_a);
    cleanup(&dir_b);
}

//! TLS with client authentication: certificates made here with rcgen,
//! `redis-server --tls-port ... --tls-auth-clients yes`.

mod common;

use std::path::Path;

use common::*;
use databroker_client::{new_record, RecordExt, TlsConfig};
use databroker_testkit::free_port;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, PEM.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn leaf(
    names: &[&str],
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
    ca: &CertifiedIssuer<'_, KeyPair>,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "databroker test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let (server_cert, server_key) = leaf(
        &["127.0.0.1", "localhost"],
        "redis-server",
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    let (client_cert, client_key) = leaf(
        &[],
        "databroker client",
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
    );
    Pki {
        ca: ca.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p.to_string_lossy().into_owned()
}

/// A Redis server with a TLS port that requires client certificates (and a
/// plain port, used only by the testkit to see that it is up).
fn tls_server(pki: &Pki, dir: &Path) -> (Server, u16) {
    let tls_port = free_port();
    let port = tls_port.to_string();
    let (cert, key, ca) = (
        write(dir, "server.crt", &pki.server_cert),
        write(dir, "server.key", &pki.server_key),
        write(dir, "ca.crt", &pki.ca),
    );
    let server = Server::start(Options::default().arg([
        "--tls-port",
        port.as_str(),
        "--tls-cert-file",
        cert.as_str(),
        "--tls-key-file",
        key.as_str(),
        "--tls-ca-cert-file",
        ca.as_str(),
        "--tls-auth-clients",
        "yes",
    ]));
    (server, tls_port)
}

#[tokio::test]
async fn client_certificate_required() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (_server, tls_port) = tls_server(&pki, dir.path());
    let url = format!("rediss://127.0.0.1:{tls_port}");

    // With the CA and the client certificate: everything works, the
    // sync stream's own connection included.
    let tls = TlsConfig::default()
        .ca_cert_pem(pki.ca.clone())
        .client_identity(pki.client_cert.clone(), pki.client_key.clone());
    let db = Backend::connect(&url, config("tls").tls(tls))
        .await
        .unwrap();
    let sv = db
        .put(&mut [new_record("t", "a", "over TLS")])
        .await
        .unwrap();
    assert_eq!(
        db.get("t", "a").await.unwrap().unwrap().payload(),
        b"over TLS"
    );
    let mut feed = db.sync(None, sv, 0);
    assert_eq!(next_within(&mut feed, 5).await.unwrap().unwrap().id, "a");

    // Without the client certificate: the server refuses the connection.
    let no_cert = TlsConfig::default().ca_cert_pem(pki.ca.clone());
    let err = Backend::connect(&url, config("tls").tls(no_cert).retry(fast_retry(2)))
        .await
        .expect_err("a client without a certificate must be refused");
    eprintln!("without a client certificate: {err:?}");
    // A TLS alert is not transient: refused at once, not retried.
    assert!(matches!(err, Error::Redis(_)), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // Without our CA, the client does not trust the server.
    let no_ca =
        TlsConfig::default().client_identity(pki.client_cert.clone(), pki.client_key.clone());
    let err = Backend::connect(&url, config("tls").tls(no_ca).retry(fast_retry(2)))
        .await
        .expect_err("an unknown CA must not be trusted");
    eprintln!("without the CA: {err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // A plain client on the TLS port gets nowhere either.
    let plain = Backend::connect(
        &format!("redis://127.0.0.1:{tls_port}"),
        config("tls").retry(fast_retry(2)),
    )
    .await;
    assert!(plain.is_err());
    // TLS material with a plain URL is a configuration error.
    let tls = TlsConfig::default().ca_cert_pem(pki.ca.clone());
    assert!(matches!(
        Backend::connect(
            &format!("redis://127.0.0.1:{tls_port}"),
            config("tls").tls(tls)
        )
        .await,
        Err(Error::Config(_))
    ));
}

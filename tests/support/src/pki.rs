//! Certificates for the TLS tests, made with rcgen: a test CA and a server certificate it
//! signed for the given names (DNS names or IP addresses), written as PEM files.

use std::path::{Path, PathBuf};

/// The PEM files of a test PKI.
pub struct Pki {
    /// The CA's certificate (what clients trust).
    pub ca: PathBuf,
    /// The server's certificate, signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (PKCS #8).
    pub key: PathBuf,
}

/// A CA named `ca_name` and a server certificate for `names`, written into `dir` with the
/// file names prefixed by `prefix`.
pub fn write_pki(dir: &Path, prefix: &str, ca_name: &str, names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("generate the CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign the CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("generate the server key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut server = CertificateParams::new(names).expect("server parameters");
    server
        .distinguished_name
        .push(DnType::CommonName, "ctid test server");
    let cert = server
        .signed_by(&key, &issuer)
        .expect("sign the server certificate");
    let pki = Pki {
        ca: dir.join(format!("{prefix}ca.pem")),
        cert: dir.join(format!("{prefix}cert.pem")),
        key: dir.join(format!("{prefix}key.pem")),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).expect("write the CA");
    std::fs::write(&pki.cert, cert.pem()).expect("write the certificate");
    std::fs::write(&pki.key, key.serialize_pem()).expect("write the key");
    pki
}

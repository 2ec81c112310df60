//! The cluster CA, each master's serving certificate, and the admin kubeconfig.
//!
//! The CA (certificate and key) is generated once, by the master that initializes the cluster, and
//! kept in the replicated store, so every master signs its serving certificate with the same CA
//! and one kubeconfig works against any master.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Pki {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
}

const CA_COMMON_NAME: &str = "rkube-ca";

fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name.push(DnType::OrganizationName, "rkube");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

pub fn generate_ca() -> Result<Pki> {
    let key = KeyPair::generate()?;
    let cert = ca_params()?.self_signed(&key)?;
    Ok(Pki { ca_cert_pem: cert.pem(), ca_key_pem: key.serialize_pem() })
}

/// A serving certificate for `hosts` (DNS names and IP addresses), signed by the cluster CA.
pub fn serving_cert(pki: &Pki, hosts: &[String]) -> Result<(String, String)> {
    let ca_key = KeyPair::from_pem(&pki.ca_key_pem).context("the cluster CA key does not parse")?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    params.subject_alt_names = hosts
        .iter()
        .map(|h| match h.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(h.as_str().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A certificate for a master's peer port: server and client authentication, for `hosts`.
pub fn peer_cert(pki: &Pki, hosts: &[String]) -> Result<(String, String)> {
    let ca_key = KeyPair::from_pem(&pki.ca_key_pem).context("the peer CA key does not parse")?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, hosts.first().map(String::as_str).unwrap_or("rkube-peer"));
    params.subject_alt_names = hosts
        .iter()
        .map(|h| match h.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(h.as_str().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A rustls server configuration that requires a client certificate signed by `ca_pem`.
pub fn mutual_server_config(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>().context("peer certificate PEM")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("peer key PEM")?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.context("peer CA PEM")?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A rustls server configuration offering HTTP/2 and HTTP/1.1.
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>().context("serving certificate PEM")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("serving key PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The admin kubeconfig for `server` (an https URL).
pub fn kubeconfig(server: &str, ca_pem: &str, token: &str, name: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         users:\n- name: {name}-admin\n  user:\n    token: {token}\n\
         contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\n    namespace: default\n\
         current-context: {name}\npreferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_certificates_chain_to_the_ca() {
        let pki = generate_ca().unwrap();
        let (cert, key) = serving_cert(&pki, &["127.0.0.1".into(), "localhost".into(), "kubernetes.default.svc".into()]).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        server_config(&cert, &key).expect("rustls accepts the certificate and key");
        // The issuer recreated from the stored key yields the same CA identity every time.
        let (cert2, _) = serving_cert(&pki, &["10.0.0.1".into()]).unwrap();
        assert_ne!(cert, cert2);
        let cfg = kubeconfig("https://127.0.0.1:6443", &pki.ca_cert_pem, "tok", "rkube");
        assert!(cfg.contains("token: tok"));
    }
}

//! DANE for SMTP (RFC 7672): an MX host whose MX and address records are DNSSEC-secure and which publishes secure
//! TLSA records (`_25._tcp.<mx host>`) is only sent to over TLS, with a certificate matching one of them.
//!
//! What applies to one host is a [`DanePolicy`], decided from the validating resolver's answers
//! ([`policy_for`]); an enforced policy gives the connection its own TLS client ([`DaneConnector`]), whose
//! certificate verifier ([`DaneVerifier`]) checks DANE-EE(3) and DANE-TA(2) records with selector 0 (whole
//! certificate) or 1 (public key) and matching 0 (exact), 1 (SHA-256) or 2 (SHA-512). PKIX-TA(0) and PKIX-EE(1)
//! records are "unusable" for SMTP (§3.1.3), as are unknown parameters; a secure TLSA RRset with no usable record
//! still makes TLS mandatory, unauthenticated (§2.2). Failures are named by their RFC 8460 (TLS-RPT) result type
//! ([`DaneFailureKind`]).

use std::{
    borrow::Cow,
    sync::{Arc, Mutex},
};

use hickory_resolver::proto::rr::{Name, RData, RecordType};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio_rustls::TlsConnector;

use crate::resolve::{MxHost, MxResolver, all_secure, is_bogus, is_denial};

/// Certificate usage DANE-TA: the record names a trust anchor of the server's chain.
pub const USAGE_DANE_TA: u8 = 2;
/// Certificate usage DANE-EE: the record names the server's own certificate or key.
pub const USAGE_DANE_EE: u8 = 3;

/// One TLSA record (RFC 6698 §2.1), by its numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsaRecord {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The certificate association data.
    pub data: Vec<u8>,
}

impl TlsaRecord {
    /// Whether an SMTP client may use the record (RFC 7672 §3.1): DANE-TA or DANE-EE with a known selector and
    /// matching type, and for the hash types data of the hash's length.
    pub fn usable(&self) -> bool {
        let length_ok = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        matches!(self.usage, USAGE_DANE_TA | USAGE_DANE_EE) && self.selector <= 1 && length_ok
    }

    /// Whether the DER certificate `cert` is the one this record describes (selector and matching type applied;
    /// the usage is not considered).
    pub fn matches_certificate(&self, cert: &[u8]) -> bool {
        selected(self.selector, cert)
            .and_then(|content| digest(self.matching, &content))
            .is_some_and(|d| d == self.data)
    }

    /// The record describing `cert` with this usage, selector and matching type (what a domain publishes).
    pub fn for_certificate(usage: u8, selector: u8, matching: u8, cert: &[u8]) -> Option<TlsaRecord> {
        let data = digest(matching, &selected(selector, cert)?)?;
        Some(TlsaRecord {
            usage,
            selector,
            matching,
            data,
        })
    }
}

/// The part of `cert` a selector designates: the whole certificate (0) or its DER SubjectPublicKeyInfo (1).
fn selected(selector: u8, cert: &[u8]) -> Option<Cow<'_, [u8]>> {
    match selector {
        0 => Some(Cow::Borrowed(cert)),
        1 => {
            let der = CertificateDer::from(cert);
            let parsed = webpki::EndEntityCert::try_from(&der).ok()?;
            Some(Cow::Owned(parsed.subject_public_key_info().as_ref().to_vec()))
        }
        _ => None,
    }
}

/// `content` under a matching type: as is (0), SHA-256 (1), SHA-512 (2).
fn digest(matching: u8, content: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::digest::{SHA256, SHA512, digest};
    match matching {
        0 => Some(content.to_vec()),
        1 => Some(digest(&SHA256, content).as_ref().to_vec()),
        2 => Some(digest(&SHA512, content).as_ref().to_vec()),
        _ => None,
    }
}

/// Why a DANE-enforced delivery failed, named by the result types of RFC 8460 §4.3 so that a TLS-RPT report can
/// count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaneFailureKind {
    /// The MX host does not offer (or refuses) STARTTLS although DANE requires TLS.
    StarttlsNotSupported,
    /// The TLSA records could not be obtained as validated answers (bogus signatures, lookup failure).
    DnssecInvalid,
    /// No usable TLSA record matches the certificate the host presented.
    TlsaInvalid,
    /// A DANE-TA chain verified but the certificate does not name the MX host.
    CertificateHostMismatch,
    /// A DANE-TA chain verified but a certificate in it has expired (or is not valid yet).
    CertificateExpired,
    /// The certificate matched a DANE-TA record's anchor but does not chain to it.
    CertificateNotTrusted,
    /// The TLS handshake failed for another reason.
    ValidationFailure,
}

impl DaneFailureKind {
    /// The RFC 8460 result type: `starttls-not-supported`, `dnssec-invalid`, `tlsa-invalid`,
    /// `certificate-host-mismatch`, `certificate-expired`, `certificate-not-trusted` or `validation-failure`.
    pub fn result_type(self) -> &'static str {
        match self {
            DaneFailureKind::StarttlsNotSupported => "starttls-not-supported",
            DaneFailureKind::DnssecInvalid => "dnssec-invalid",
            DaneFailureKind::TlsaInvalid => "tlsa-invalid",
            DaneFailureKind::CertificateHostMismatch => "certificate-host-mismatch",
            DaneFailureKind::CertificateExpired => "certificate-expired",
            DaneFailureKind::CertificateNotTrusted => "certificate-not-trusted",
            DaneFailureKind::ValidationFailure => "validation-failure",
        }
    }
}

/// A DANE failure: its kind and what happened, shown as `DANE: <detail>` in the delivery status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DANE: {detail}")]
pub struct DaneFailure {
    /// The RFC 8460 classification.
    pub kind: DaneFailureKind,
    /// What happened, for people.
    pub detail: String,
}

impl DaneFailure {
    fn new(kind: DaneFailureKind, detail: impl Into<String>) -> Self {
        DaneFailure {
            kind,
            detail: detail.into(),
        }
    }

    /// The deferral text kept in the delivery status: `4.7.5 DANE: …` (RFC 3463 4.7.5: cryptographic failure).
    pub(crate) fn reply(&self) -> String {
        format!("4.7.5 {self}")
    }
}

/// What DANE asks of a connection to one MX host (RFC 7672 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DanePolicy {
    /// DANE does not apply (no validation, an insecure MX or address answer, no secure TLSA records): the
    /// configured TLS policy does.
    NotApplicable,
    /// Secure TLSA records exist but none is usable: TLS is mandatory, the certificate is not authenticated.
    EncryptOnly,
    /// TLS is mandatory and the certificate must match one of these (usable) records.
    Verify(Arc<[TlsaRecord]>),
    /// The TLSA records could not be had as validated answers: the host must not be used now (deferral).
    Unusable(DaneFailure),
}

impl DanePolicy {
    /// Whether DANE makes TLS mandatory on the connection.
    pub fn enforced(&self) -> bool {
        matches!(self, DanePolicy::EncryptOnly | DanePolicy::Verify(_))
    }
}

/// The TLSA owner name of a host's SMTP service on `port` (RFC 6698 §3): `_25._tcp.mx.example.com.`.
fn tlsa_name(host: &str, port: u16) -> Option<Name> {
    Name::from_ascii(format!("_{port}._tcp.{}.", host.trim_end_matches('.'))).ok()
}

/// The DANE policy for `host` reached on `port`: TLSA records are only looked up when validation is on and the
/// host's MX and address records were secure (RFC 7672 §2.2.1–2.2.2), and only believed when secure themselves.
pub(crate) async fn policy_for(resolver: &MxResolver, host: &MxHost, port: u16) -> DanePolicy {
    if !resolver.validates_dnssec() || !host.secure {
        return DanePolicy::NotApplicable;
    }
    let Some(name) = tlsa_name(&host.name, port) else {
        return DanePolicy::NotApplicable;
    };
    let lookup = resolver.hickory().tlsa_lookup(name.clone()).await;
    mailpush_telemetry::dns_lookup("tlsa", lookup.as_ref().is_err_and(|e| !is_denial(e)));
    match lookup {
        Ok(lookup) => {
            let records: Vec<TlsaRecord> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TLSA(t) => Some(TlsaRecord {
                        usage: t.cert_usage.into(),
                        selector: t.selector.into(),
                        matching: t.matching.into(),
                        data: t.cert_data.clone(),
                    }),
                    _ => None,
                })
                .collect();
            if records.is_empty() || !all_secure(lookup.answers(), RecordType::TLSA) {
                return DanePolicy::NotApplicable;
            }
            let usable: Vec<TlsaRecord> = records.into_iter().filter(TlsaRecord::usable).collect();
            if usable.is_empty() {
                DanePolicy::EncryptOnly
            } else {
                DanePolicy::Verify(usable.into())
            }
        }
        Err(e) if is_denial(&e) => DanePolicy::NotApplicable,
        Err(e) if is_bogus(&e) => DanePolicy::Unusable(DaneFailure::new(
            DaneFailureKind::DnssecInvalid,
            format!("the TLSA records of {} do not validate (DNSSEC bogus)", host.name),
        )),
        Err(e) => DanePolicy::Unusable(DaneFailure::new(
            DaneFailureKind::DnssecInvalid,
            format!("TLSA lookup for {name} failed: {e}"),
        )),
    }
}

/// The TLS client of one DANE-enforced connection, with the verifier that remembers why it refused a
/// certificate.
pub(crate) struct DaneConnector {
    connector: TlsConnector,
    verifier: Arc<DaneVerifier>,
}

impl DaneConnector {
    /// The client for `policy` towards `host`; `None` when DANE does not make TLS mandatory.
    pub(crate) fn for_policy(policy: &DanePolicy, host: &str) -> Option<Result<DaneConnector, DaneFailure>> {
        let records = match policy {
            DanePolicy::Verify(records) => records.clone(),
            DanePolicy::EncryptOnly => Arc::from(Vec::new()),
            DanePolicy::NotApplicable | DanePolicy::Unusable(_) => return None,
        };
        Some(DaneConnector::new(records, host))
    }

    fn new(records: Arc<[TlsaRecord]>, host: &str) -> Result<DaneConnector, DaneFailure> {
        let setup = |e: rustls::Error| {
            DaneFailure::new(
                DaneFailureKind::ValidationFailure,
                format!("TLS client setup failed: {e}"),
            )
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(DaneVerifier {
            records,
            host: host.to_string(),
            provider: provider.clone(),
            failure: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(setup)?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(DaneConnector {
            connector: TlsConnector::from(Arc::new(config)),
            verifier,
        })
    }

    pub(crate) fn connector(&self) -> &TlsConnector {
        &self.connector
    }

    /// Whether the certificate is authenticated (usable TLSA records), not only encrypted to.
    pub(crate) fn authenticates(&self) -> bool {
        !self.verifier.records.is_empty()
    }

    /// The host the certificate is checked for (the MX host name, also sent as SNI).
    pub(crate) fn host(&self) -> &str {
        &self.verifier.host
    }

    /// Why the handshake failed on the certificate, when it did.
    pub(crate) fn failure(&self) -> Option<DaneFailure> {
        self.verifier
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The failure for `label` when the host offers no STARTTLS (or refuses it).
    pub(crate) fn no_starttls(label: &str, what: &str) -> DaneFailure {
        DaneFailure::new(
            DaneFailureKind::StarttlsNotSupported,
            format!("{label} {what}, and its TLSA records require TLS"),
        )
    }

    /// The failure for a handshake that broke down for another reason than the certificate.
    pub(crate) fn handshake_failed(label: &str, reason: &str) -> DaneFailure {
        DaneFailure::new(
            DaneFailureKind::ValidationFailure,
            format!("TLS handshake with {label} failed: {reason}"),
        )
    }
}

/// Checks the server's certificate against usable TLSA records (RFC 7672 §3): DANE-EE(3) matches the end-entity
/// certificate whatever its names and dates (§3.1.1); DANE-TA(2) names a certificate of the presented chain as
/// the trust anchor, and the chain must verify to it for the MX host name (§3.1.2). With no records (TLSA present
/// but unusable) any certificate is accepted: TLS then only encrypts. Handshake signatures are always verified.
#[derive(Debug)]
pub(crate) struct DaneVerifier {
    records: Arc<[TlsaRecord]>,
    host: String,
    provider: Arc<CryptoProvider>,
    failure: Mutex<Option<DaneFailure>>,
}

impl DaneVerifier {
    /// Checks `end_entity` (and its chain `intermediates`) against the records, for `server_name` at `now`.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), DaneFailure> {
        if self.records.is_empty() {
            return Ok(());
        }
        let ee = |r: &&TlsaRecord| r.usage == USAGE_DANE_EE;
        if self
            .records
            .iter()
            .filter(ee)
            .any(|r| r.matches_certificate(end_entity))
        {
            return Ok(());
        }
        let mut anchored = None;
        for record in self.records.iter().filter(|r| r.usage == USAGE_DANE_TA) {
            for anchor in intermediates.iter().filter(|c| record.matches_certificate(c)) {
                match self.chain_to(anchor, end_entity, intermediates, server_name, now) {
                    Ok(()) => return Ok(()),
                    Err(failure) => anchored = Some(failure),
                }
            }
        }
        Err(anchored.unwrap_or_else(|| {
            DaneFailure::new(
                DaneFailureKind::TlsaInvalid,
                format!("no TLSA record matches the certificate of {}", self.host),
            )
        }))
    }

    /// Verifies the chain from `end_entity` to `anchor` and the name, with the anchor as the only root.
    fn chain_to(
        &self,
        anchor: &CertificateDer<'_>,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), DaneFailure> {
        let untrusted = |e: &dyn std::fmt::Display| {
            DaneFailure::new(
                DaneFailureKind::CertificateNotTrusted,
                format!(
                    "the certificate of {} does not chain to its DANE-TA anchor: {e}",
                    self.host
                ),
            )
        };
        let mut roots = RootCertStore::empty();
        roots.add(anchor.clone().into_owned()).map_err(|e| untrusted(&e))?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| untrusted(&e))?;
        match verifier.verify_server_cert(end_entity, intermediates, server_name, &[], now) {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Err(DaneFailure::new(
                DaneFailureKind::CertificateHostMismatch,
                format!("the certificate of {} (DANE-TA) does not name it", self.host),
            )),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            )) => Err(DaneFailure::new(
                DaneFailureKind::CertificateExpired,
                format!(
                    "the certificate chain of {} (DANE-TA) is expired or not yet valid",
                    self.host
                ),
            )),
            Err(e) => Err(untrusted(&e)),
        }
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, server_name, now) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(failure) => {
                *self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(failure.clone());
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
                    Arc::new(failure),
                ))))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    /// A CA and a leaf it issued for `mx.example.test`, and the leaf's key (built once: key generation is slow).
    struct Pki {
        ca: CertificateDer<'static>,
        leaf: CertificateDer<'static>,
    }

    static PKI: LazyLock<Pki> = LazyLock::new(|| {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
        let leaf_params = CertificateParams::new(vec!["mx.example.test".to_string()]).expect("params");
        let leaf = leaf_params
            .signed_by(&KeyPair::generate().expect("key"), &ca)
            .expect("leaf");
        Pki {
            ca: ca.der().clone(),
            leaf: leaf.der().clone(),
        }
    });

    fn verifier(records: Vec<TlsaRecord>) -> DaneVerifier {
        DaneVerifier {
            records: records.into(),
            host: "mx.example.test".into(),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            failure: Mutex::new(None),
        }
    }

    fn check(records: Vec<TlsaRecord>, name: &str) -> Result<(), DaneFailure> {
        let server_name = ServerName::try_from(name.to_string()).expect("name");
        verifier(records).check(&PKI.leaf, std::slice::from_ref(&PKI.ca), &server_name, UnixTime::now())
    }

    #[test]
    fn usability_follows_rfc_7672() {
        let record = |usage, selector, matching, len| TlsaRecord {
            usage,
            selector,
            matching,
            data: vec![7; len],
        };
        assert!(record(3, 1, 1, 32).usable());
        assert!(record(2, 0, 2, 64).usable());
        assert!(record(3, 0, 0, 300).usable());
        // PKIX-TA and PKIX-EE are not for SMTP (§3.1.3).
        assert!(!record(0, 1, 1, 32).usable());
        assert!(!record(1, 1, 1, 32).usable());
        // Unknown selector or matching type, or a digest of the wrong length.
        assert!(!record(3, 2, 1, 32).usable());
        assert!(!record(3, 1, 3, 32).usable());
        assert!(!record(3, 1, 1, 31).usable());
        assert!(!record(3, 0, 0, 0).usable());
    }

    #[test]
    fn every_selector_and_matching_type_matches_its_own_certificate() {
        for selector in 0..=1 {
            for matching in 0..=2 {
                let r = TlsaRecord::for_certificate(3, selector, matching, &PKI.leaf).expect("record");
                assert!(r.usable());
                assert!(r.matches_certificate(&PKI.leaf), "{selector} {matching}");
                assert!(!r.matches_certificate(&PKI.ca), "{selector} {matching}");
            }
        }
        // Selector 1 is the DER SubjectPublicKeyInfo: a SEQUENCE.
        let spki = TlsaRecord::for_certificate(3, 1, 0, &PKI.leaf).expect("record");
        assert_eq!(spki.data.first(), Some(&0x30));
        assert!(spki.data.len() < PKI.leaf.len());
    }

    #[test]
    fn dane_ee_ignores_the_name() {
        let ee = TlsaRecord::for_certificate(3, 1, 1, &PKI.leaf).expect("record");
        assert_eq!(check(vec![ee.clone()], "mx.example.test"), Ok(()));
        assert_eq!(check(vec![ee], "other.example.test"), Ok(()));
    }

    #[test]
    fn dane_ta_needs_the_chain_and_the_name() {
        let ta = TlsaRecord::for_certificate(2, 0, 1, &PKI.ca).expect("record");
        assert_eq!(check(vec![ta.clone()], "mx.example.test"), Ok(()));
        let mismatch = check(vec![ta], "other.example.test").expect_err("wrong name");
        assert_eq!(mismatch.kind, DaneFailureKind::CertificateHostMismatch);
        // The leaf named as a trust anchor is not in the presented intermediates.
        let leaf_as_ta = TlsaRecord::for_certificate(2, 1, 1, &PKI.leaf).expect("record");
        assert_eq!(
            check(vec![leaf_as_ta], "mx.example.test").map_err(|f| f.kind),
            Err(DaneFailureKind::TlsaInvalid)
        );
    }

    #[test]
    fn no_matching_record_is_tlsa_invalid() {
        let wrong = TlsaRecord {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0; 32],
        };
        let failure = check(vec![wrong], "mx.example.test").expect_err("no match");
        assert_eq!(failure.kind, DaneFailureKind::TlsaInvalid);
        assert_eq!(failure.kind.result_type(), "tlsa-invalid");
        assert_eq!(
            failure.to_string(),
            "DANE: no TLSA record matches the certificate of mx.example.test"
        );
        assert!(failure.reply().starts_with("4.7.5 DANE: no TLSA record matches"));
    }

    #[test]
    fn unusable_records_only_encrypt() {
        assert_eq!(check(Vec::new(), "anything.example"), Ok(()));
    }

    proptest::proptest! {
        /// A record built from the certificate matches it; changing any byte of its data, or matching another
        /// certificate, does not.
        #[test]
        fn tlsa_matching_is_exact(
            selector in 0u8..=1,
            matching in 0u8..=2,
            flip in proptest::num::usize::ANY,
            bit in 0u8..8,
        ) {
            let record = TlsaRecord::for_certificate(3, selector, matching, &PKI.leaf).expect("record");
            proptest::prop_assert!(record.matches_certificate(&PKI.leaf));
            proptest::prop_assert!(!record.matches_certificate(&PKI.ca));
            let mut altered = record.clone();
            let i = flip % altered.data.len();
            altered.data[i] ^= 1 << bit;
            proptest::prop_assert!(!altered.matches_certificate(&PKI.leaf));
        }

        /// Arbitrary bytes are never mistaken for a certificate's public key, and never panic the matcher.
        #[test]
        fn garbage_never_matches(cert in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let record = TlsaRecord::for_certificate(3, 1, 1, &PKI.leaf).expect("record");
            proptest::prop_assert!(!record.matches_certificate(&cert));
        }
    }
}

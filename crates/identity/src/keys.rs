//! DKIM keys: generation per [`DkimOption`], the public-key TXT value, and signing (RFC 6376, RFC 8463).
//!
//! Private keys leave this module as DER bytes ([`DkimKeyPair::private_der`]) for the caller to seal at rest;
//! [`SigningKey::from_der`] turns them back into a key for [`sign`].

use crate::IdentityError;
use crate::body_hash::relaxed_body_hash;
use crate::signature_header::{HeaderFields, SignatureTags, complete, relaxed, unsigned_header};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use mail_auth::common::crypto::{Algorithm, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderStream as _;
use mail_auth::common::headers::{Writable, Writer};
use mail_auth::dkim::{Canonicalization, Signature};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Headers signed on every mail (those present; a header named but absent is signed as empty, which stops
/// it from being added later).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// One key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA 1024 bits, rsa-sha256 (Tencent option 0; weak, kept for compatibility).
    Rsa1024,
    /// RSA 2048 bits, rsa-sha256.
    Rsa2048,
    /// Ed25519, ed25519-sha256 (RFC 8463).
    Ed25519,
}

impl KeyAlgorithm {
    /// Stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa1024 => "rsa-1024",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// Inverse of [`KeyAlgorithm::as_str`].
    pub fn parse(s: &str) -> Option<KeyAlgorithm> {
        match s {
            "rsa-1024" => Some(KeyAlgorithm::Rsa1024),
            "rsa-2048" => Some(KeyAlgorithm::Rsa2048),
            "ed25519" => Some(KeyAlgorithm::Ed25519),
            _ => None,
        }
    }

    /// The `k=` tag value of the DKIM record.
    pub fn dkim_k(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa1024 | KeyAlgorithm::Rsa2048 => "rsa",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// Suffix of the selector, so each key of a dual option has its own record.
    fn selector_suffix(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa1024 => "r1",
            KeyAlgorithm::Rsa2048 => "r2",
            KeyAlgorithm::Ed25519 => "ed",
        }
    }
}

/// `DKIMOption`: 0–2 are Tencent's, 3–4 mailpush's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimOption {
    /// 0: RSA-1024.
    Rsa1024,
    /// 1: RSA-2048 (mailpush's default when the field is absent).
    Rsa2048,
    /// 2: dual signing RSA-1024 + RSA-2048 (Tencent's 双签).
    DualRsa,
    /// 3: ed25519 (RFC 8463). mailpush extension.
    Ed25519,
    /// 4: dual signing RSA-2048 + ed25519, so verifiers without ed25519 still find a valid RSA signature.
    /// mailpush extension.
    Rsa2048Ed25519,
}

impl DkimOption {
    /// The wire value.
    pub fn code(self) -> i64 {
        match self {
            DkimOption::Rsa1024 => 0,
            DkimOption::Rsa2048 => 1,
            DkimOption::DualRsa => 2,
            DkimOption::Ed25519 => 3,
            DkimOption::Rsa2048Ed25519 => 4,
        }
    }

    /// From the wire value.
    pub fn from_code(code: i64) -> Option<DkimOption> {
        Some(match code {
            0 => DkimOption::Rsa1024,
            1 => DkimOption::Rsa2048,
            2 => DkimOption::DualRsa,
            3 => DkimOption::Ed25519,
            4 => DkimOption::Rsa2048Ed25519,
            _ => return None,
        })
    }

    /// The keys this option signs with, in signing order.
    pub fn algorithms(self) -> &'static [KeyAlgorithm] {
        match self {
            DkimOption::Rsa1024 => &[KeyAlgorithm::Rsa1024],
            DkimOption::Rsa2048 => &[KeyAlgorithm::Rsa2048],
            DkimOption::DualRsa => &[KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa1024],
            DkimOption::Ed25519 => &[KeyAlgorithm::Ed25519],
            DkimOption::Rsa2048Ed25519 => &[KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519],
        }
    }
}

/// A generated key pair.
#[derive(Clone)]
pub struct DkimKeyPair {
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// DKIM selector (`s=`); the record lives at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// Private key DER (PKCS#8 for RSA-2048 and ed25519, PKCS#1 for RSA-1024). Seal before storing.
    pub private_der: Vec<u8>,
    /// The `p=` value: base64 of the SubjectPublicKeyInfo (RSA) or of the raw 32-byte key (ed25519).
    pub public_key: String,
}

impl std::fmt::Debug for DkimKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKeyPair")
            .field("algorithm", &self.algorithm)
            .field("selector", &self.selector)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl DkimKeyPair {
    /// The TXT value to publish: `v=DKIM1; k=…; p=…`.
    pub fn record_value(&self) -> String {
        dkim_record_value(self.algorithm, &self.public_key)
    }
}

/// The DKIM TXT value for a public key.
pub fn dkim_record_value(algorithm: KeyAlgorithm, public_key: &str) -> String {
    format!("v=DKIM1; k={}; p={}", algorithm.dkim_k(), public_key)
}

fn key_err(what: &str, e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Key(format!("{what}: {e}"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, the form every verifier accepts (OpenDKIM reads
/// only SPKI).
fn rsa_spki_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    fn der_len(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
    }
    // SEQUENCE { OID rsaEncryption, NULL }
    const ALG_ID: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x03];
    der_len(pkcs1.len() + 1, &mut bit_string);
    bit_string.push(0); // no unused bits
    bit_string.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_len(ALG_ID.len() + bit_string.len(), &mut out);
    out.extend_from_slice(ALG_ID);
    out.extend(bit_string);
    out
}

/// Generates one key. RSA-2048 and ed25519 come from aws-lc-rs; RSA-1024 (which aws-lc-rs refuses) from
/// mail-auth's generator.
pub fn generate(algorithm: KeyAlgorithm, selector: String) -> Result<DkimKeyPair, IdentityError> {
    let (private_der, public_key) = match algorithm {
        KeyAlgorithm::Rsa2048 => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| key_err("RSA generation", e))?;
            let private = kp.as_der().map_err(|e| key_err("RSA encoding", e))?;
            let public = kp.public_key().as_der().map_err(|e| key_err("RSA public key", e))?;
            (private.as_ref().to_vec(), b64(public.as_ref()))
        }
        KeyAlgorithm::Rsa1024 => {
            let kp =
                mail_auth::dkim::generate::DkimKeyPair::generate_rsa(1024).map_err(|e| key_err("RSA generation", e))?;
            let (private, public_pkcs1) = kp.into_inner();
            (private, b64(&rsa_spki_from_pkcs1(&public_pkcs1)))
        }
        KeyAlgorithm::Ed25519 => {
            let doc = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
                .map_err(|e| key_err("ed25519 generation", e))?;
            let kp = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref())
                .map_err(|e| key_err("ed25519 key", e))?;
            (doc.as_ref().to_vec(), b64(kp.public_key().as_ref()))
        }
    };
    Ok(DkimKeyPair {
        algorithm,
        selector,
        private_der,
        public_key,
    })
}

/// Generates the keys of `option`, with selectors `<prefix><stem><suffix>` (the stem, e.g. a random or
/// dated token, keeps rotated keys apart).
pub fn generate_for(option: DkimOption, prefix: &str, stem: &str) -> Result<Vec<DkimKeyPair>, IdentityError> {
    option
        .algorithms()
        .iter()
        .map(|a| generate(*a, format!("{prefix}{stem}{}", a.selector_suffix())))
        .collect()
}

/// RSA-1024 through the `rsa` crate (aws-lc-rs signs only with ≥ 2048-bit keys).
struct Rsa1024Key {
    key: rsa::RsaPrivateKey,
}

/// DER DigestInfo prefix of SHA-256 (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
];

impl mail_auth::common::crypto::SigningKey for Rsa1024Key {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(512);
        input.write(&mut data);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data);
        let padding = rsa::Pkcs1v15Sign {
            hash_len: Some(32),
            prefix: SHA256_DIGEST_INFO.into(),
        };
        // Blinded signing (with an RNG) so timing does not leak the key.
        self.key
            .sign_with_rng(&mut rsa::rand_core::OsRng, padding, digest.as_ref())
            .map_err(|e| mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(e.to_string())))
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaSha256
    }
}

enum KeyImpl {
    Rsa(RsaKey<Sha256>),
    // Boxed: the rsa crate's key is several times larger than the others.
    Rsa1024(Box<Rsa1024Key>),
    Ed25519(Ed25519Key),
}

impl mail_auth::common::crypto::SigningKey for KeyImpl {
    // Unused: the body hash is `body_hash`'s, and the signing keys hash what they sign themselves.
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        match self {
            KeyImpl::Rsa(k) => k.sign(input),
            KeyImpl::Rsa1024(k) => k.sign(input),
            KeyImpl::Ed25519(k) => k.sign(input),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            KeyImpl::Rsa(k) => k.algorithm(),
            KeyImpl::Rsa1024(k) => k.algorithm(),
            KeyImpl::Ed25519(k) => k.algorithm(),
        }
    }
}

/// A key ready to sign for one domain and selector.
pub struct SigningKey {
    domain: String,
    selector: String,
    algorithm: KeyAlgorithm,
    key: KeyImpl,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a private key (as [`DkimKeyPair::private_der`] holds it) for `domain` (`d=`) and `selector`.
    pub fn from_der(
        domain: &str,
        selector: &str,
        algorithm: KeyAlgorithm,
        der: &[u8],
    ) -> Result<SigningKey, IdentityError> {
        let key = match algorithm {
            KeyAlgorithm::Rsa2048 => KeyImpl::Rsa(
                RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
                    .map_err(|e| key_err("RSA private key", e))?,
            ),
            KeyAlgorithm::Rsa1024 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                KeyImpl::Rsa1024(Box::new(Rsa1024Key {
                    key: rsa::RsaPrivateKey::from_pkcs1_der(der).map_err(|e| key_err("RSA private key", e))?,
                }))
            }
            KeyAlgorithm::Ed25519 => {
                KeyImpl::Ed25519(Ed25519Key::from_pkcs8_der(der).map_err(|e| key_err("ed25519 private key", e))?)
            }
        };
        Ok(SigningKey {
            domain: domain.to_string(),
            selector: selector.to_string(),
            algorithm,
            key,
        })
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// One `DKIM-Signature` field (relaxed/relaxed) in the form of [`crate::signature_header`], with `body_hash`
    /// (base64) as `bh=`. mail-auth selects and canonicalises the headers; the field is written here.
    fn sign_one(&self, message: &[u8], body_hash: &str) -> Result<String, IdentityError> {
        use mail_auth::common::crypto::SigningKey as _;
        let key = &self.key;
        let template = Signature {
            v: 1,
            a: key.algorithm(),
            d: self.domain.clone(),
            s: self.selector.clone(),
            h: SIGNED_HEADERS.iter().map(|h| (*h).to_string()).collect(),
            ch: Canonicalization::Relaxed,
            cb: Canonicalization::Relaxed,
            ..Signature::default()
        };
        // The canonical body mail-auth returns goes unused: `sign` hashed the body already.
        let (_, canonical_headers, signed_headers, _) = template.canonicalize(HeaderFields::new(message));
        if signed_headers.is_empty() {
            return Err(key_err("signing", "the message has no header to sign"));
        }
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let unsigned = unsigned_header(&SignatureTags {
            algorithm: match template.a {
                Algorithm::Ed25519Sha256 => "ed25519-sha256",
                Algorithm::RsaSha256 | Algorithm::RsaSha1 => "rsa-sha256",
            },
            domain: &self.domain,
            selector: &self.selector,
            timestamp,
            headers: &signed_headers,
            body_hash,
        });
        let signature = key
            .sign(SignedData {
                headers: canonical_headers,
                own_field: relaxed(&unsigned),
            })
            .map_err(|e| key_err("signing", e))?;
        Ok(complete(unsigned, &b64(&signature)))
    }
}

/// What a DKIM signature covers: the signed header fields, then its own field with `b=` empty, both relaxed.
struct SignedData<H> {
    headers: H,
    own_field: Vec<u8>,
}

impl<H: Writable> Writable for SignedData<H> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        writer.write(&self.own_field);
    }
}

impl mail_auth::common::crypto::SigningKey for &KeyImpl {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        (*self).sign(input)
    }

    fn algorithm(&self) -> Algorithm {
        (*self).algorithm()
    }
}

/// The `DKIM-Signature` header fields (each ending in CRLF) of `message` for every key, to be prepended to
/// it. Keys are applied in order; none is an empty result. Sign once per message: RSA costs ~0.5 ms.
///
/// `message` should be in the form of [`crate::normalize_message`], and be delivered as signed: over a bare CR
/// or whitespace-only lines at the end of the body, the body hash (mail-auth's canonicalisation) is not the
/// one dkimpy and Mail::DKIM compute, and delivery rewrites bare CRs and LFs.
pub fn sign(message: &[u8], keys: &[SigningKey]) -> Result<Vec<u8>, IdentityError> {
    let mut out = Vec::new();
    if keys.is_empty() {
        return Ok(out);
    }
    // Every key signs with c=…/relaxed and a SHA-256 body hash (rsa-sha256, ed25519-sha256): one hash serves all.
    let body_hash = b64(&relaxed_body_hash(HeaderFields::new(message).body()));
    for key in keys {
        out.extend_from_slice(key.sign_one(message, &body_hash)?.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_map_to_algorithms() {
        for code in 0..=4 {
            let o = DkimOption::from_code(code).unwrap();
            assert_eq!(o.code(), code);
            assert!(!o.algorithms().is_empty());
        }
        assert!(DkimOption::from_code(5).is_none());
        assert_eq!(DkimOption::Rsa2048Ed25519.algorithms().len(), 2);
        for a in [KeyAlgorithm::Rsa1024, KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519] {
            assert_eq!(KeyAlgorithm::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn generated_keys_load_and_sign() {
        let msg = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n";
        for a in [KeyAlgorithm::Rsa1024, KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519] {
            let kp = generate(a, format!("s{}", a.selector_suffix())).unwrap();
            assert!(kp.record_value().starts_with("v=DKIM1; k="));
            let key = SigningKey::from_der("example.com", &kp.selector, a, &kp.private_der).unwrap();
            let header = String::from_utf8(sign(msg, &[key]).unwrap()).unwrap();
            assert!(header.starts_with("DKIM-Signature:"), "{header}");
            assert!(header.contains("d=example.com"));
            assert!(header.contains("c=relaxed/relaxed"));
            assert!(header.ends_with("\r\n"));
        }
    }

    /// Public keys by DNS name, as mail-auth's verifier looks them up (no network).
    struct KeyRecords(std::collections::HashMap<Box<str>, mail_auth::Txt>);

    impl mail_auth::ResolverCache<Box<str>, mail_auth::Txt> for KeyRecords {
        fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
        where
            Box<str>: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.0.get(name).cloned()
        }

        fn remove<Q>(&self, _: &Q) -> Option<mail_auth::Txt>
        where
            Box<str>: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            None
        }

        fn insert(&self, _: Box<str>, _: mail_auth::Txt, _: std::time::Instant) {}
    }

    #[tokio::test]
    async fn signatures_of_bodies_canonicalisation_rewrites_verify_with_mail_auth() {
        use mail_auth::common::parse::TxtRecordParser as _;
        use mail_auth::common::verify::DomainKey;
        use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
        use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};

        let mut records = std::collections::HashMap::new();
        let mut keys = Vec::new();
        for a in [KeyAlgorithm::Rsa1024, KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519] {
            let kp = generate(a, format!("v{}", a.selector_suffix())).unwrap();
            let record = DomainKey::parse(kp.record_value().as_bytes()).unwrap();
            records.insert(
                format!("{}._domainkey.example.com.", kp.selector).into_boxed_str(),
                mail_auth::Txt::from(record),
            );
            keys.push(SigningKey::from_der("example.com", &kp.selector, a, &kp.private_der).unwrap());
        }
        let records = KeyRecords(records);
        // Only the cache is asked: no name server.
        let auth =
            MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![]), ResolverOpts::default()).unwrap();
        let long: String = (0..2_000).map(|i| format!("line {i}  of\tthe body \r\n")).collect();
        for body in [
            "",
            "body\r\n",
            "\r\n\r\n",
            "no final line end",
            "a  b\t\tc \r\n\t indented\r\n \r\n\r\n",
            "unix\nline ends \n\n",
            "bare\rcr \r x\r\n",
            " ",
            long.as_str(),
        ] {
            let message = format!("From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\n{body}");
            let mut signed = sign(message.as_bytes(), &keys).unwrap();
            signed.extend_from_slice(message.as_bytes());
            let parsed = AuthenticatedMessage::parse(&signed).unwrap();
            let results = auth
                .verify_dkim(Parameters::new(&parsed).with_txt_cache(&records))
                .await;
            assert_eq!(results.len(), 3, "{body:?}");
            for r in &results {
                assert_eq!(r.result(), &DkimResult::Pass, "{body:?}");
            }
        }
    }

    #[test]
    fn spki_wrapping_is_what_aws_lc_produces() {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let spki = kp.public_key().as_der().unwrap();
        assert_eq!(rsa_spki_from_pkcs1(kp.public_key().as_ref()), spki.as_ref());
    }
}

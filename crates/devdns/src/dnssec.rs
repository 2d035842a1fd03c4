//! DNSSEC for the authority: one ECDSA P-256 key signs the whole served tree as the root zone `.`, so a
//! validating resolver given that key as its trust anchor (in place of the real root's) gets *secure* answers,
//! *insecure* ones below the delegations marked unsigned, and *bogus* ones for names whose signatures are
//! deliberately broken.
//!
//! Denial of existence is "compact" (the NSEC "black lies" of RFC 4470 / RFC 9824, as large signing
//! services answer on the fly): a name or type that does not exist gets NOERROR with an NSEC record at the
//! query name listing only the types that do exist there, signed. A signed name that does not exist is
//! therefore NODATA rather than NXDOMAIN.

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, NSEC, RRSIG, SigInput};
use hickory_proto::dnssec::{Algorithm, SigningKey, TBS};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};

use crate::DevDnsError;

/// Signatures are valid from an hour ago (clock skew) …
const INCEPTION_BACK_SECS: u64 = 3_600;
/// … for a week: longer than any test or dev session.
const VALIDITY_SECS: u64 = 7 * 86_400;

/// The key of the signed root zone and how it signs.
pub(crate) struct ZoneSigner {
    key: EcdsaSigningKey,
    dnskey: DNSKEY,
    key_tag: u16,
}

impl ZoneSigner {
    /// A fresh ECDSA P-256 key (algorithm 13, the most deployed one).
    pub(crate) fn generate() -> Result<ZoneSigner, DevDnsError> {
        let dnssec = |e: &dyn std::fmt::Display| DevDnsError::Dnssec(e.to_string());
        let algorithm = Algorithm::ECDSAP256SHA256;
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(algorithm).map_err(|e| dnssec(&e))?;
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, algorithm).map_err(|e| dnssec(&e))?;
        let public = key.to_public_key().map_err(|e| dnssec(&e))?;
        // Flags 257: a zone key that is also the secure entry point (the trust anchor).
        let dnskey = DNSKEY::new(true, true, false, public);
        let key_tag = dnskey.calculate_key_tag().map_err(|e| dnssec(&e))?;
        Ok(ZoneSigner { key, dnskey, key_tag })
    }

    /// The zone's DNSKEY as a trust-anchor line: `. 3600 IN DNSKEY 257 3 13 <base64>`.
    pub(crate) fn trust_anchor(&self) -> String {
        format!(". 3600 IN DNSKEY {}", self.dnskey)
    }

    /// The DNSKEY record served at the apex.
    pub(crate) fn dnskey_record(&self, ttl: u32) -> Record {
        Record::from_rdata(
            Name::root(),
            ttl,
            RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
        )
    }

    /// The RRSIG over `rrset` (records of one owner and type). `broken` flips a bit of the signature, so a
    /// validator finds the answer *bogus*.
    pub(crate) fn rrsig(&self, rrset: &[Record], broken: bool) -> Option<Record> {
        let first = rrset.first()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // DNS times are 32-bit serial numbers (RFC 4034 §3.1.5): wrapping is intended.
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: self.key.algorithm(),
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new((now + VALIDITY_SECS) as u32),
            sig_inception: SerialNumber::new(now.saturating_sub(INCEPTION_BACK_SECS) as u32),
            key_tag: self.key_tag,
            signer_name: Name::root(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, rrset.iter()).ok()?;
        let mut signature = self.key.sign(&tbs).ok()?;
        if broken && let Some(byte) = signature.last_mut() {
            *byte ^= 0x01;
        }
        Some(Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, signature))),
        ))
    }

    /// `records` followed by one RRSIG per RRset (owner and type) among them whose owner is `signed` (not in an
    /// unsigned zone); the signature of an owner that is `broken` is corrupted.
    pub(crate) fn sign_all(
        &self,
        records: Vec<Record>,
        broken: impl Fn(&Name) -> bool,
        signed: impl Fn(&Name) -> bool,
    ) -> Vec<Record> {
        let mut sets: Vec<Vec<Record>> = Vec::new();
        for record in records {
            match sets
                .iter_mut()
                .find(|s| s[0].name == record.name && s[0].record_type() == record.record_type())
            {
                Some(set) => set.push(record),
                None => sets.push(vec![record]),
            }
        }
        let mut out = Vec::new();
        for set in sets {
            let rrsig = if signed(&set[0].name) {
                self.rrsig(&set, broken(&set[0].name))
            } else {
                None
            };
            out.extend(set);
            out.extend(rrsig);
        }
        out
    }
}

/// The NSEC record denying every type at `owner` but `present` (plus NSEC and RRSIG themselves). Its next
/// name is the owner's immediate successor in canonical order (RFC 4470 §3), so it covers nothing else.
pub(crate) fn nsec_at(owner: &Name, present: impl IntoIterator<Item = RecordType>, ttl: u32) -> Record {
    let next = owner.prepend_label(&[0u8][..]).unwrap_or_else(|_| owner.clone());
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::DNSSEC(DNSSECRData::NSEC(NSEC::new_cover_self(next, present))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_anchor_is_a_dnskey_line_for_the_root() {
        let signer = ZoneSigner::generate().expect("key");
        let anchor = signer.trust_anchor();
        assert!(anchor.starts_with(". 3600 IN DNSKEY 257 3 13 "), "{anchor}");
        let parsed: hickory_proto::dnssec::TrustAnchors = anchor.parse().expect("parses as a trust anchor");
        assert!(parsed.contains(signer.dnskey.public_key()));
    }

    #[test]
    fn signatures_verify_and_broken_ones_do_not() {
        use hickory_proto::dnssec::Verifier;
        use hickory_proto::rr::rdata::A;
        let signer = ZoneSigner::generate().expect("key");
        let name = Name::from_ascii("mx.example.test.").expect("name");
        let set = vec![Record::from_rdata(name.clone(), 1, RData::A(A::new(127, 0, 0, 1)))];
        for (broken, ok) in [(false, true), (true, false)] {
            let rrsig = signer.rrsig(&set, broken).expect("signed");
            let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &rrsig.data else {
                panic!("not an RRSIG");
            };
            let verified = signer
                .dnskey
                .verify_rrsig(&name, DNSClass::IN, rrsig, set.iter())
                .is_ok();
            assert_eq!(verified, ok, "broken = {broken}");
        }
    }
}

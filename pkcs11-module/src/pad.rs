//! RSA encodings done on the host (RFC 8017): the card only does the raw
//! private-key operation. The `rsa` crate keeps these functions private to
//! its own key type, so they live here, checked against its verifiers.

use crate::error::{Error, Result};
use sha2::Digest;
use std::sync::OnceLock;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

/// Hash functions PKCS#11 mechanisms name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish()
    }

    /// DigestInfo for a digest of this hash.
    pub fn digest_info(self, digest: &[u8]) -> Vec<u8> {
        let prefix = self.digest_info_prefix();
        let mut v = Vec::with_capacity(prefix.len() + digest.len());
        v.extend_from_slice(prefix);
        v.extend_from_slice(digest);
        v
    }

    /// The DER prefix of a DigestInfo (RFC 8017 §9.2 note 1), from the
    /// `rsa` crate, made once: each signature would otherwise encode it.
    /// Kept off the heap, which a static of a dlclose()d module would leak.
    fn digest_info_prefix(self) -> &'static [u8] {
        const ALL: [HashAlg; 5] = [
            HashAlg::Sha1,
            HashAlg::Sha224,
            HashAlg::Sha256,
            HashAlg::Sha384,
            HashAlg::Sha512,
        ];
        static PREFIXES: OnceLock<[(usize, [u8; 19]); 5]> = OnceLock::new();
        let all = PREFIXES.get_or_init(|| {
            ALL.map(|h| {
                use rsa::Pkcs1v15Sign as P;
                let p = match h {
                    HashAlg::Sha1 => P::new::<sha1::Sha1>(),
                    HashAlg::Sha224 => P::new::<sha2::Sha224>(),
                    HashAlg::Sha256 => P::new::<sha2::Sha256>(),
                    HashAlg::Sha384 => P::new::<sha2::Sha384>(),
                    HashAlg::Sha512 => P::new::<sha2::Sha512>(),
                }
                .prefix;
                // 15 bytes for SHA-1, 19 for the SHA-2 family.
                let mut a = [0u8; 19];
                a[..p.len()].copy_from_slice(&p);
                (p.len(), a)
            })
        });
        let (len, bytes) = &all[self as usize];
        &bytes[..*len]
    }
}

/// A running hash (multi-part signing).
#[derive(Clone)]
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(alg: HashAlg) -> Self {
        match alg {
            HashAlg::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlg::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            HashAlg::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// EMSA-PKCS1-v1_5 (type 1) block of `k` bytes around `t` (a DigestInfo,
/// or raw data for CKM_RSA_PKCS).
pub fn pkcs1_sign_block(k: usize, t: &[u8]) -> Result<Vec<u8>> {
    if t.len().checked_add(11).is_none_or(|n| n > k) {
        return Err(Error::DataLenRange);
    }
    let mut em = vec![0xFF; k];
    em[0] = 0x00;
    em[1] = 0x01;
    em[k - t.len() - 1] = 0x00;
    em[k - t.len()..].copy_from_slice(t);
    Ok(em)
}

/// MGF1 (RFC 8017 §B.2.1) of `len` bytes from `seed`.
pub fn mgf1(hash: HashAlg, seed: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + hash.output_len()));
    let mut counter = 0u32;
    while out.len() < len {
        let mut h = Hasher::new(hash);
        h.update(seed);
        h.update(&counter.to_be_bytes());
        out.extend_from_slice(&h.finish());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of `m_hash` for a modulus of
/// `mod_bits`, returned as a `k`-byte block ready for the raw operation.
pub fn pss_encode(
    mod_bits: usize,
    m_hash: &[u8],
    hash: HashAlg,
    mgf: HashAlg,
    salt_len: usize,
) -> Result<Vec<u8>> {
    let h_len = hash.output_len();
    if m_hash.len() != h_len {
        return Err(Error::DataLenRange);
    }
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    if em_len < h_len + salt_len + 2 {
        return Err(Error::MechanismParamInvalid);
    }
    let mut salt = vec![0u8; salt_len];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let mut h = Hasher::new(hash);
    h.update(&[0u8; 8]);
    h.update(m_hash);
    h.update(&salt);
    let h_val = h.finish();
    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - salt_len - 1] = 0x01;
    db[db_len - salt_len..].copy_from_slice(&salt);
    let mask = mgf1(mgf, &h_val, db_len);
    for (d, m) in db.iter_mut().zip(mask.iter()) {
        *d ^= m;
    }
    db[0] &= 0xFF >> (8 * em_len - em_bits);
    let mut em = db;
    em.extend_from_slice(&h_val);
    em.push(0xBC);
    let k = mod_bits.div_ceil(8);
    let mut block = vec![0u8; k - em_len];
    block.extend_from_slice(&em);
    Ok(block)
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) for C_Verify: `block` is the `k`-byte
/// result of the public operation.
pub fn pss_verify(
    mod_bits: usize,
    m_hash: &[u8],
    block: &[u8],
    hash: HashAlg,
    mgf: HashAlg,
    salt_len: usize,
) -> bool {
    let h_len = hash.output_len();
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let k = mod_bits.div_ceil(8);
    if block.len() != k || m_hash.len() != h_len || em_len < h_len + salt_len + 2 {
        return false;
    }
    if block[..k - em_len].iter().any(|b| *b != 0) {
        return false;
    }
    let em = &block[k - em_len..];
    if em[em_len - 1] != 0xBC {
        return false;
    }
    let db_len = em_len - h_len - 1;
    let (masked_db, h_val) = (&em[..db_len], &em[db_len..em_len - 1]);
    let top_mask = 0xFFu8 >> (8 * em_len - em_bits);
    if masked_db[0] & !top_mask != 0 {
        return false;
    }
    let mask = mgf1(mgf, h_val, db_len);
    let mut db: Vec<u8> = masked_db
        .iter()
        .zip(mask.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    db[0] &= top_mask;
    let ps_len = db_len - salt_len - 1;
    if db[..ps_len].iter().any(|b| *b != 0) || db[ps_len] != 0x01 {
        return false;
    }
    let salt = &db[db_len - salt_len..];
    let mut h = Hasher::new(hash);
    h.update(&[0u8; 8]);
    h.update(m_hash);
    h.update(salt);
    h.finish().ct_eq(h_val).into()
}

/// Remove EME-PKCS1-v1_5 (type 2) padding from a decrypted block, without
/// branching on secret data before the final answer.
pub fn pkcs1_decrypt_unpad(em: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let k = em.len();
    if k < 11 {
        return Err(Error::EncryptedDataInvalid);
    }
    let first_ok = em[0].ct_eq(&0x00) & em[1].ct_eq(&0x02);
    let mut found = subtle::Choice::from(0);
    let mut sep = 0u32;
    for (i, b) in em.iter().enumerate().skip(2) {
        let is_zero = b.ct_eq(&0);
        let first_zero = is_zero & !found;
        sep.conditional_assign(&(i as u32), first_zero);
        found |= is_zero;
    }
    let ps_ok = subtle::Choice::from(u8::from(sep >= 10));
    if !bool::from(first_ok & found & ps_ok) {
        return Err(Error::EncryptedDataInvalid);
    }
    Ok(Zeroizing::new(em[sep as usize + 1..].to_vec()))
}

/// EME-OAEP-DECODE (RFC 8017 §7.1.2).
pub fn oaep_decode(
    em: &[u8],
    label: &[u8],
    hash: HashAlg,
    mgf: HashAlg,
) -> Result<Zeroizing<Vec<u8>>> {
    let k = em.len();
    let h_len = hash.output_len();
    if k < 2 * h_len + 2 {
        return Err(Error::EncryptedDataInvalid);
    }
    let l_hash = hash.digest(label);
    let (y, masked_seed, masked_db) = (em[0], &em[1..1 + h_len], &em[1 + h_len..]);
    let seed_mask = mgf1(mgf, masked_db, h_len);
    let seed: Zeroizing<Vec<u8>> = Zeroizing::new(
        masked_seed
            .iter()
            .zip(seed_mask.iter())
            .map(|(a, b)| a ^ b)
            .collect(),
    );
    let db_mask = mgf1(mgf, &seed, k - h_len - 1);
    let db: Zeroizing<Vec<u8>> = Zeroizing::new(
        masked_db
            .iter()
            .zip(db_mask.iter())
            .map(|(a, b)| a ^ b)
            .collect(),
    );
    let mut good = y.ct_eq(&0) & db[..h_len].ct_eq(&l_hash);
    let mut found = subtle::Choice::from(0);
    let mut sep = 0u32;
    for (i, b) in db.iter().enumerate().skip(h_len) {
        let is_one = b.ct_eq(&1);
        let is_zero = b.ct_eq(&0);
        let first_one = is_one & !found;
        sep.conditional_assign(&(i as u32), first_one);
        // Before the 01 separator only zeros are allowed.
        good &= found | is_zero | is_one;
        found |= is_one;
    }
    if !bool::from(good & found) {
        return Err(Error::EncryptedDataInvalid);
    }
    Ok(Zeroizing::new(db[sep as usize + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::traits::PublicKeyParts;
    use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};

    fn key() -> RsaPrivateKey {
        static K: OnceLock<RsaPrivateKey> = OnceLock::new();
        K.get_or_init(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
            .clone()
    }

    #[test]
    fn digest_info_prefixes_are_the_rsa_crates() {
        use rsa::Pkcs1v15Sign as P;
        for (h, p) in [
            (HashAlg::Sha1, P::new::<sha1::Sha1>()),
            (HashAlg::Sha224, P::new::<sha2::Sha224>()),
            (HashAlg::Sha256, P::new::<sha2::Sha256>()),
            (HashAlg::Sha384, P::new::<sha2::Sha384>()),
            (HashAlg::Sha512, P::new::<sha2::Sha512>()),
        ] {
            assert_eq!(h.digest_info_prefix(), &p.prefix[..], "{h:?}");
            assert_eq!(h.digest_info(&[7; 4])[p.prefix.len()..], [7; 4], "{h:?}");
        }
    }

    /// The raw private-key operation, as the card does it.
    fn raw(k: &RsaPrivateKey, block: &[u8]) -> Vec<u8> {
        let m = rsa::hazmat::rsa_decrypt_and_check(
            k,
            Some(&mut rand::rngs::OsRng),
            &BigUint::from_bytes_be(block),
        )
        .unwrap();
        let b = m.to_bytes_be();
        let mut out = vec![0u8; k.size() - b.len()];
        out.extend(b);
        out
    }

    #[test]
    fn pkcs1_signature_verifies_with_rsa_crate() {
        let k = key();
        let digest = HashAlg::Sha256.digest(b"hello");
        let block = pkcs1_sign_block(k.size(), &HashAlg::Sha256.digest_info(&digest)).unwrap();
        let sig = raw(&k, &block);
        RsaPublicKey::from(&k)
            .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
            .unwrap();
        assert_eq!(pkcs1_sign_block(256, &[0; 246]), Err(Error::DataLenRange));
    }

    #[test]
    fn pss_signature_verifies_with_rsa_crate_and_ours() {
        let k = key();
        for (h, salt) in [
            (HashAlg::Sha256, 32usize),
            (HashAlg::Sha384, 48),
            (HashAlg::Sha1, 0),
        ] {
            let digest = h.digest(b"message");
            let block = pss_encode(2048, &digest, h, h, salt).unwrap();
            let sig = raw(&k, &block);
            let pubkey = RsaPublicKey::from(&k);
            match h {
                HashAlg::Sha256 => {
                    pubkey.verify(rsa::Pss::new_with_salt::<sha2::Sha256>(salt), &digest, &sig)
                }
                HashAlg::Sha384 => {
                    pubkey.verify(rsa::Pss::new_with_salt::<sha2::Sha384>(salt), &digest, &sig)
                }
                _ => pubkey.verify(rsa::Pss::new_with_salt::<sha1::Sha1>(salt), &digest, &sig),
            }
            .unwrap();
            let em = rsa::hazmat::rsa_encrypt(&pubkey, &BigUint::from_bytes_be(&sig))
                .unwrap()
                .to_bytes_be();
            let mut block2 = vec![0u8; 256 - em.len()];
            block2.extend(em);
            assert!(pss_verify(2048, &digest, &block2, h, h, salt));
            assert!(!pss_verify(2048, &h.digest(b"other"), &block2, h, h, salt));
        }
    }

    #[test]
    fn pkcs1_and_oaep_decryption_of_rsa_crate_ciphertexts() {
        let k = key();
        let pubkey = RsaPublicKey::from(&k);
        let msg = b"a 32-byte session key, 32 bytes";
        let ct = pubkey
            .encrypt(&mut rand::rngs::OsRng, rsa::Pkcs1v15Encrypt, msg)
            .unwrap();
        assert_eq!(&pkcs1_decrypt_unpad(&raw(&k, &ct)).unwrap()[..], msg);
        let ct = pubkey
            .encrypt(
                &mut rand::rngs::OsRng,
                rsa::Oaep::new_with_label::<sha2::Sha256, _>("lbl"),
                msg,
            )
            .unwrap();
        let em = raw(&k, &ct);
        assert_eq!(
            &oaep_decode(&em, b"lbl", HashAlg::Sha256, HashAlg::Sha256).unwrap()[..],
            msg
        );
        assert_eq!(
            oaep_decode(&em, b"other", HashAlg::Sha256, HashAlg::Sha256),
            Err(Error::EncryptedDataInvalid)
        );
        let ct = pubkey
            .encrypt(&mut rand::rngs::OsRng, rsa::Oaep::new::<sha1::Sha1>(), msg)
            .unwrap();
        assert_eq!(
            &oaep_decode(&raw(&k, &ct), b"", HashAlg::Sha1, HashAlg::Sha1).unwrap()[..],
            msg
        );
    }

    #[test]
    fn bad_padding_is_rejected() {
        assert!(pkcs1_decrypt_unpad(&[0u8; 256]).is_err());
        let mut em = vec![0u8; 256];
        em[1] = 2;
        em[2..5].fill(1);
        assert!(
            pkcs1_decrypt_unpad(&em).is_err(),
            "padding string shorter than 8"
        );
        em[2..20].fill(1);
        assert_eq!(pkcs1_decrypt_unpad(&em).unwrap().len(), 256 - 21);
    }

    #[test]
    fn mgf1_known_answer() {
        // MGF1-SHA1("foo", 3) from RFC 8017 test usage: 1ac907
        assert_eq!(
            mgf1(HashAlg::Sha1, b"foo", 3).to_vec(),
            vec![0x1a, 0xc9, 0x07]
        );
        assert_eq!(
            mgf1(HashAlg::Sha1, b"bar", 5).to_vec(),
            vec![0xbc, 0x0c, 0x65, 0x5e, 0x01]
        );
    }
}

//! Message digests (C_DigestInit .. C_DigestFinal): the digest mechanisms
//! and the running digest of a session. They run in software on the host,
//! as OpenSC and ykcs11 do: a PIV card has no hash of its own. Adding a
//! hash (SM3 for SKF tokens) is a row in [`DIGESTS`] and its arm in
//! [`HashAlg`] / [`Hasher`].

use crate::pad::{HashAlg, Hasher};
use cryptoki_sys::*;

/// Every digest mechanism, with its hash.
pub const DIGESTS: &[(CK_MECHANISM_TYPE, HashAlg)] = &[
    (CKM_SHA_1, HashAlg::Sha1),
    (CKM_SHA224, HashAlg::Sha224),
    (CKM_SHA256, HashAlg::Sha256),
    (CKM_SHA384, HashAlg::Sha384),
    (CKM_SHA512, HashAlg::Sha512),
];

/// The hash a digest mechanism names.
pub fn algorithm(mechanism: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    DIGESTS
        .iter()
        .find(|(m, _)| *m == mechanism)
        .map(|(_, h)| *h)
}

/// A digest in progress in a session.
pub struct DigestOp {
    pub alg: HashAlg,
    hasher: Hasher,
    /// C_DigestUpdate or C_DigestKey was used: C_Digest is no longer allowed.
    pub multipart: bool,
}

impl DigestOp {
    pub fn new(alg: HashAlg) -> Self {
        Self {
            alg,
            hasher: Hasher::new(alg),
            multipart: false,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// The digest of everything fed in (the operation is consumed).
    pub fn finish(self) -> Vec<u8> {
        self.hasher.finish()
    }
}

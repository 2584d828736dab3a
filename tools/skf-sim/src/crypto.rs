//! SM2 (GB/T 32918), SM3 and SM4 as the token does them, on RustCrypto's
//! `sm2` (curve arithmetic and SM2DSA over a given e), `sm3` and `sm4`.
//!
//! `sm2` 0.13 has no public-key encryption, so SM2 encryption (GB/T
//! 32918.4: C1 = kG, (x2, y2) = kP, t = KDF(x2‖y2), C2 = M ⊕ t,
//! C3 = SM3(x2‖M‖y2)) is written here on its group arithmetic; OpenSSL's
//! `pkeyutl -encrypt`/`-decrypt` checks it in the tests.

use sm2::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use sm2::elliptic_curve::{Field, PrimeField};
use sm2::{AffinePoint, EncodedPoint, NonZeroScalar, ProjectivePoint, Scalar};
use sm3::{Digest, Sm3};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Why a crypto step failed (mapped to SAR codes by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// Not a point on the curve, a zero scalar, a bad length.
    BadInput,
    /// Decryption check (C3) failed.
    Mismatch,
}

/// An SM2 private key (zeroized on drop by `NonZeroScalar`'s owner).
#[derive(Clone)]
pub struct Sm2Key {
    d: NonZeroScalar,
}

impl Sm2Key {
    pub fn generate() -> Self {
        Self {
            d: NonZeroScalar::random(&mut rand::rngs::OsRng),
        }
    }

    /// From the 32-byte big-endian scalar.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = b.try_into().map_err(|_| CryptoError::BadInput)?;
        let d = Option::from(NonZeroScalar::from_repr(arr.into())).ok_or(CryptoError::BadInput)?;
        Ok(Self { d })
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.d.to_repr());
        out
    }

    pub fn public(&self) -> PublicPoint {
        PublicPoint((ProjectivePoint::GENERATOR * *self.d).to_affine())
    }

    /// SM2DSA over the 32-byte e (GB/T 32918.2 from step A3; the caller
    /// computed e = SM3(Z‖M)). Returns r‖s.
    pub fn sign_e(&self, e: &[u8; 32]) -> Result<[u8; 64], CryptoError> {
        use signature::hazmat::RandomizedPrehashSigner;
        let sk = sm2::dsa::SigningKey::from_nonzero_scalar(default_id_str(), self.d)
            .map_err(|_| CryptoError::BadInput)?;
        let sig: sm2::dsa::Signature = sk
            .sign_prehash_with_rng(&mut rand::rngs::OsRng, e)
            .map_err(|_| CryptoError::BadInput)?;
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        Ok(out)
    }

    /// SM2 decryption (GB/T 32918.4 §7).
    pub fn decrypt(&self, c: &Sm2Cipher) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let c1 = PublicPoint::from_xy(&c.x, &c.y)?;
        let shared = (ProjectivePoint::from(c1.0) * *self.d).to_affine();
        let (x2, y2) = coords(&shared);
        let t = kdf(&x2, &y2, c.c2.len());
        if c.c2.is_empty() || t.iter().all(|&b| b == 0) {
            return Err(CryptoError::BadInput);
        }
        let mut m = Zeroizing::new(c.c2.clone());
        for (b, k) in m.iter_mut().zip(t.iter()) {
            *b ^= k;
        }
        let u = Sm3::new()
            .chain_update(x2)
            .chain_update(&m[..])
            .chain_update(y2)
            .finalize();
        if bool::from(u.ct_eq(&c.c3[..])) {
            Ok(m)
        } else {
            Err(CryptoError::Mismatch)
        }
    }
}

impl Drop for Sm2Key {
    fn drop(&mut self) {
        // NonZeroScalar's zeroize writes 1 (it may never be 0).
        self.d.zeroize();
    }
}

fn default_id_str() -> &'static str {
    // SM2_DEFAULT_ID is ASCII.
    "1234567812345678"
}

fn coords(p: &AffinePoint) -> ([u8; 32], [u8; 32]) {
    let ep = p.to_encoded_point(false);
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    if let (Some(px), Some(py)) = (ep.x(), ep.y()) {
        x.copy_from_slice(px);
        y.copy_from_slice(py);
    }
    (x, y)
}

/// A public key: a point on the curve (never the identity).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicPoint(pub AffinePoint);

impl PublicPoint {
    pub fn from_xy(x: &[u8; 32], y: &[u8; 32]) -> Result<Self, CryptoError> {
        let ep = EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
        let p: Option<AffinePoint> = AffinePoint::from_encoded_point(&ep).into();
        let p = p.ok_or(CryptoError::BadInput)?;
        Ok(Self(p))
    }

    /// From SEC1 bytes (04‖x‖y).
    pub fn from_sec1(b: &[u8]) -> Result<Self, CryptoError> {
        let ep = EncodedPoint::from_bytes(b).map_err(|_| CryptoError::BadInput)?;
        let p: Option<AffinePoint> = AffinePoint::from_encoded_point(&ep).into();
        Ok(Self(p.ok_or(CryptoError::BadInput)?))
    }

    pub fn xy(&self) -> ([u8; 32], [u8; 32]) {
        coords(&self.0)
    }

    /// 04‖x‖y.
    pub fn sec1(&self) -> Vec<u8> {
        self.0.to_encoded_point(false).as_bytes().to_vec()
    }

    /// Z = SM3(ENTL‖ID‖a‖b‖xG‖yG‖xA‖yA) (GB/T 32918.2 §5.5).
    pub fn z(&self, id: &[u8]) -> Result<[u8; 32], CryptoError> {
        let public = sm2::PublicKey::from_affine(self.0).map_err(|_| CryptoError::BadInput)?;
        ukey_skf_sys::sm2_z(&public, id).ok_or(CryptoError::BadInput)
    }

    /// Verify r‖s over e.
    pub fn verify_e(&self, e: &[u8; 32], rs: &[u8; 64]) -> bool {
        use signature::hazmat::PrehashVerifier;
        let Ok(sig) = sm2::dsa::Signature::from_slice(rs) else {
            return false;
        };
        let Ok(vk) = sm2::dsa::VerifyingKey::from_affine(default_id_str(), self.0) else {
            return false;
        };
        vk.verify_prehash(e, &sig).is_ok()
    }

    /// SM2 encryption (GB/T 32918.4 §6) of a non-empty message.
    pub fn encrypt(&self, m: &[u8]) -> Result<Sm2Cipher, CryptoError> {
        if m.is_empty() {
            return Err(CryptoError::BadInput);
        }
        loop {
            let mut k = Scalar::random(&mut rand::rngs::OsRng);
            if bool::from(k.is_zero()) {
                continue;
            }
            let c1 = (ProjectivePoint::GENERATOR * k).to_affine();
            let shared = (ProjectivePoint::from(self.0) * k).to_affine();
            k.zeroize();
            let (x2, y2) = coords(&shared);
            let t = kdf(&x2, &y2, m.len());
            if t.iter().all(|&b| b == 0) {
                continue;
            }
            let c2: Vec<u8> = m.iter().zip(t.iter()).map(|(a, b)| a ^ b).collect();
            let c3 = Sm3::new()
                .chain_update(x2)
                .chain_update(m)
                .chain_update(y2)
                .finalize();
            let (x, y) = coords(&c1);
            return Ok(Sm2Cipher {
                x,
                y,
                c3: c3.into(),
                c2,
            });
        }
    }
}

/// An SM2 cipher text: C1 = (x, y), C3, C2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sm2Cipher {
    pub x: [u8; 32],
    pub y: [u8; 32],
    pub c3: [u8; 32],
    pub c2: Vec<u8>,
}

/// KDF of GB/T 32918.4 §5.4.3 with SM3.
fn kdf(x2: &[u8; 32], y2: &[u8; 32], klen: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(klen + 32));
    let mut ct: u32 = 1;
    while out.len() < klen {
        let h = Sm3::new()
            .chain_update(x2)
            .chain_update(y2)
            .chain_update(ct.to_be_bytes())
            .finalize();
        out.extend_from_slice(&h);
        ct = ct.wrapping_add(1);
    }
    out.truncate(klen);
    out
}

/// e = SM3(Z‖M).
pub fn sm3_e(z: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    Sm3::new()
        .chain_update(z)
        .chain_update(msg)
        .finalize()
        .into()
}

/// SM4 in ECB or CBC, streaming, with optional PKCS#5 padding.
pub mod sm4mode {
    use cipher::generic_array::GenericArray;
    use cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    use zeroize::{Zeroize, Zeroizing};

    pub const BLOCK: usize = 16;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mode {
        Ecb,
        Cbc,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ModeError {
        /// Input not a multiple of the block size without padding.
        Length,
        /// Bad PKCS#5 padding on decryption.
        Padding,
    }

    /// One encryption or decryption in progress.
    pub struct Stream {
        cipher: sm4::Sm4,
        mode: Mode,
        encrypt: bool,
        pad: bool,
        chain: [u8; BLOCK],
        pending: Zeroizing<Vec<u8>>,
    }

    impl Stream {
        pub fn new(key: &[u8; 16], mode: Mode, encrypt: bool, pad: bool, iv: [u8; 16]) -> Self {
            Self {
                cipher: sm4::Sm4::new(GenericArray::from_slice(key)),
                mode,
                encrypt,
                pad,
                chain: iv,
                pending: Zeroizing::new(Vec::new()),
            }
        }

        fn block(&mut self, b: &mut [u8; BLOCK]) {
            let ga = GenericArray::from_mut_slice(b);
            if self.encrypt {
                if self.mode == Mode::Cbc {
                    for (x, c) in ga.iter_mut().zip(self.chain.iter()) {
                        *x ^= c;
                    }
                }
                self.cipher.encrypt_block(ga);
                if self.mode == Mode::Cbc {
                    self.chain.copy_from_slice(ga);
                }
            } else {
                let mut saved = [0u8; BLOCK];
                saved.copy_from_slice(ga);
                self.cipher.decrypt_block(ga);
                if self.mode == Mode::Cbc {
                    for (x, c) in ga.iter_mut().zip(self.chain.iter()) {
                        *x ^= c;
                    }
                    self.chain = saved;
                }
            }
        }

        /// Bytes `update` with `n` more input bytes would write.
        pub fn update_len(&self, n: usize) -> usize {
            let total = self.pending.len() + n;
            let mut blocks = total / BLOCK;
            // Decrypting with padding keeps the last full block for final.
            if !self.encrypt && self.pad && total.is_multiple_of(BLOCK) && blocks > 0 {
                blocks -= 1;
            }
            blocks * BLOCK
        }

        pub fn is_encrypt(&self) -> bool {
            self.encrypt
        }

        /// Bytes `finish` would write at most.
        pub fn final_len(&self) -> usize {
            self.final_len_with(self.pending.len())
        }

        /// Bytes `finish` would write at most after `update` with `n` more bytes.
        pub fn final_len_after(&self, n: usize) -> usize {
            self.final_len_with(self.pending.len() + n - self.update_len(n))
        }

        fn final_len_with(&self, pending: usize) -> usize {
            match (self.encrypt, self.pad) {
                (true, true) => BLOCK,
                (true, false) => 0,
                // At most the last block (less its padding).
                (false, true) => pending,
                (false, false) => 0,
            }
        }

        pub fn update(&mut self, data: &[u8]) -> Zeroizing<Vec<u8>> {
            let n = self.update_len(data.len());
            self.pending.extend_from_slice(data);
            let mut out = Zeroizing::new(Vec::with_capacity(n));
            let rest = self.pending.split_off(n);
            let mut todo = std::mem::replace(&mut self.pending, Zeroizing::new(rest));
            for chunk in todo.chunks_exact(BLOCK) {
                let mut b = [0u8; BLOCK];
                b.copy_from_slice(chunk);
                self.block(&mut b);
                out.extend_from_slice(&b);
                b.zeroize();
            }
            todo.zeroize();
            out
        }

        pub fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>, ModeError> {
            let mut last = std::mem::take(&mut *self.pending);
            let r = if self.encrypt {
                if self.pad {
                    let p = BLOCK - last.len();
                    last.resize(BLOCK, p as u8);
                } else if !last.is_empty() {
                    last.zeroize();
                    return Err(ModeError::Length);
                }
                let mut out = Zeroizing::new(Vec::new());
                if !last.is_empty() {
                    let mut b = [0u8; BLOCK];
                    b.copy_from_slice(&last);
                    self.block(&mut b);
                    out.extend_from_slice(&b);
                    b.zeroize();
                }
                Ok(out)
            } else if !self.pad {
                if last.is_empty() {
                    Ok(Zeroizing::new(Vec::new()))
                } else {
                    Err(ModeError::Length)
                }
            } else if last.len() != BLOCK {
                Err(ModeError::Length)
            } else {
                let mut b = [0u8; BLOCK];
                b.copy_from_slice(&last);
                self.block(&mut b);
                let p = b[BLOCK - 1] as usize;
                let ok =
                    (1..=BLOCK).contains(&p) && b[BLOCK - p..].iter().all(|&x| x as usize == p);
                let r = if ok {
                    Ok(Zeroizing::new(b[..BLOCK - p].to_vec()))
                } else {
                    Err(ModeError::Padding)
                };
                b.zeroize();
                r
            };
            last.zeroize();
            r
        }
    }

    /// One-shot ECB encryption of whole blocks (device authentication).
    pub fn ecb_encrypt(key: &[u8; 16], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, ModeError> {
        let mut s = Stream::new(key, Mode::Ecb, true, false, [0; 16]);
        let mut out = s.update(data);
        out.extend_from_slice(&s.finish()?);
        Ok(out)
    }

    pub fn ecb_decrypt(key: &[u8; 16], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, ModeError> {
        let mut s = Stream::new(key, Mode::Ecb, false, false, [0; 16]);
        let mut out = s.update(data);
        out.extend_from_slice(&s.finish()?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signature::Signer;

    #[test]
    fn z_and_signature_agree_with_the_sm2_crate() {
        // sm2's Signer hashes Z‖M itself; our e from our Z must verify it.
        let key = Sm2Key::generate();
        let pubp = key.public();
        let sk = sm2::dsa::SigningKey::new(
            "1234567812345678",
            &sm2::SecretKey::from_bytes(&(*key.to_bytes()).into()).unwrap(),
        )
        .unwrap();
        let msg = b"message digest";
        let sig: sm2::dsa::Signature = sk.sign(msg);
        let e = sm3_e(&pubp.z(b"1234567812345678").unwrap(), msg);
        let rs: [u8; 64] = sig.to_bytes();
        assert!(pubp.verify_e(&e, &rs));
        // And our signature over e verifies with the crate's own verifier.
        let ours = key.sign_e(&e).unwrap();
        use signature::Verifier;
        let vk = sk.verifying_key();
        vk.verify(msg, &sm2::dsa::Signature::from_slice(&ours).unwrap())
            .unwrap();
        let mut bad = e;
        bad[0] ^= 1;
        assert!(!pubp.verify_e(&bad, &ours));
    }

    #[test]
    fn sm2_encryption_round_trips_and_detects_tampering() {
        let key = Sm2Key::generate();
        let c = key.public().encrypt(b"0123456789abcdef").unwrap();
        assert_eq!(&key.decrypt(&c).unwrap()[..], b"0123456789abcdef");
        let mut t = c.clone();
        t.c2[3] ^= 1;
        assert_eq!(key.decrypt(&t).unwrap_err(), CryptoError::Mismatch);
        let mut t = c;
        t.x[31] ^= 1;
        assert!(key.decrypt(&t).is_err());
    }

    #[test]
    fn sm4_modes_with_and_without_padding() {
        use sm4mode::*;
        // GB/T 32907 appendix A example 1.
        let key: [u8; 16] = hex::decode("0123456789abcdeffedcba9876543210")
            .unwrap()
            .try_into()
            .unwrap();
        let ct = ecb_encrypt(&key, &key).unwrap();
        assert_eq!(hex::encode(&ct[..]), "681edf34d206965e86b3e94f536e4246");
        assert_eq!(&ecb_decrypt(&key, &ct).unwrap()[..], &key[..]);
        for len in [0usize, 1, 15, 16, 17, 40] {
            let data: Vec<u8> = (0..len as u8).collect();
            for mode in [Mode::Ecb, Mode::Cbc] {
                let mut e = Stream::new(&key, mode, true, true, [7; 16]);
                let mut ct = Zeroizing::new(Vec::new());
                for piece in data.chunks(5) {
                    ct.extend_from_slice(&e.update(piece));
                }
                ct.extend_from_slice(&e.finish().unwrap());
                assert_eq!(ct.len(), (len / 16 + 1) * 16);
                let mut d = Stream::new(&key, mode, false, true, [7; 16]);
                let mut pt = Zeroizing::new(Vec::new());
                for piece in ct.chunks(7) {
                    pt.extend_from_slice(&d.update(piece));
                }
                pt.extend_from_slice(&d.finish().unwrap());
                assert_eq!(&pt[..], &data[..], "{mode:?} {len}");
            }
        }
        let mut e = Stream::new(&key, Mode::Cbc, true, false, [0; 16]);
        e.update(&[1, 2, 3]);
        assert_eq!(e.finish().unwrap_err(), ModeError::Length);
    }
}

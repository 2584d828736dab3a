//! SM2 values in and out of SKF blobs, Z and e for signing (GB/T 32918.2),
//! and the SM4 block of device authentication.

use crate::error::{Error, Result};
use sm3::{Digest, Sm3};
use ukey_skf_sys::{EccPublicKeyBlob, EccSignatureBlob};

/// The default user ID (GM/T 0009 §10): "1234567812345678".
pub const DEFAULT_ID: &[u8] = ukey_skf_sys::SM2_DEFAULT_ID;

/// 04‖x‖y.
pub fn ec_point(pk: &sm2::PublicKey) -> [u8; 65] {
    use sm2::elliptic_curve::sec1::ToEncodedPoint;
    let mut out = [0u8; 65];
    out.copy_from_slice(pk.to_encoded_point(false).as_bytes());
    out
}

/// Z = SM3(ENTL‖ID‖a‖b‖xG‖yG‖xA‖yA) (GB/T 32918.2 §5.5).
pub fn sm2_z(pk: &sm2::PublicKey, id: &[u8]) -> Result<[u8; 32]> {
    ukey_skf_sys::sm2_z(pk, id)
        .ok_or_else(|| Error::Argument(format!("an SM2 user ID of {} bytes", id.len())))
}

/// e = SM3(Z‖M): what `SKF_ECCSignData` signs for message `msg`, user
/// `id` ([`DEFAULT_ID`] unless the application says otherwise).
pub fn sm2_e(pk: &sm2::PublicKey, id: &[u8], msg: &[u8]) -> Result<[u8; 32]> {
    let z = sm2_z(pk, id)?;
    Ok(Sm3::new()
        .chain_update(z)
        .chain_update(msg)
        .finalize()
        .into())
}

/// A 256-bit value in a 64-byte field: right-aligned as the standard
/// says; `None` if the high half is not zero.
fn right_aligned(field: &[u8; 64]) -> Option<[u8; 32]> {
    field[..32].iter().all(|&b| b == 0).then(|| {
        let mut v = [0u8; 32];
        v.copy_from_slice(&field[32..]);
        v
    })
}

/// An `ECCPUBLICKEYBLOB` as an SM2 public key: BitLen 256, coordinates
/// right-aligned in their 64-byte fields (a library that left-aligns both,
/// with zero low halves, is read the same way), and a point on the curve.
pub fn point_from_blob(function: &'static str, blob: &EccPublicKeyBlob) -> Result<sm2::PublicKey> {
    let bits = blob.BitLen;
    if bits != 256 {
        return Err(Error::malformed(
            function,
            format!("a public key of {bits} bits (an SM2 key has 256)"),
        ));
    }
    let (x, y) = (blob.XCoordinate, blob.YCoordinate);
    let coords = match (right_aligned(&x), right_aligned(&y)) {
        (Some(x), Some(y)) => Some((x, y)),
        _ if x[32..].iter().all(|&b| b == 0) && y[32..].iter().all(|&b| b == 0) => {
            let (mut lx, mut ly) = ([0u8; 32], [0u8; 32]);
            lx.copy_from_slice(&x[..32]);
            ly.copy_from_slice(&y[..32]);
            Some((lx, ly))
        }
        _ => None,
    };
    let Some((x, y)) = coords else {
        return Err(Error::malformed(
            function,
            "coordinates wider than 256 bits",
        ));
    };
    let mut sec1 = [0u8; 65];
    sec1[0] = 4;
    sec1[1..33].copy_from_slice(&x);
    sec1[33..].copy_from_slice(&y);
    sm2::PublicKey::from_sec1_bytes(&sec1).map_err(|_| {
        Error::malformed(
            function,
            "a public key that is not a point of the SM2 curve",
        )
    })
}

/// An `ECCPUBLICKEYBLOB` for a public key (right-aligned coordinates).
pub fn blob_from_point(pk: &sm2::PublicKey) -> EccPublicKeyBlob {
    let p = ec_point(pk);
    let mut x = [0u8; 64];
    let mut y = [0u8; 64];
    x[32..].copy_from_slice(&p[1..33]);
    y[32..].copy_from_slice(&p[33..]);
    EccPublicKeyBlob {
        BitLen: 256,
        XCoordinate: x,
        YCoordinate: y,
    }
}

/// An `ECCSIGNATUREBLOB` as r‖s, both in [1, n-1].
pub fn signature_from_blob(function: &'static str, blob: &EccSignatureBlob) -> Result<[u8; 64]> {
    let (Some(r), Some(s)) = (right_aligned(&{ blob.r }), right_aligned(&{ blob.s })) else {
        return Err(Error::malformed(function, "r or s wider than 256 bits"));
    };
    let mut rs = [0u8; 64];
    rs[..32].copy_from_slice(&r);
    rs[32..].copy_from_slice(&s);
    sm2::dsa::Signature::from_slice(&rs)
        .map_err(|_| Error::malformed(function, "r or s out of range"))?;
    Ok(rs)
}

/// One SM4-ECB block (device authentication).
pub fn sm4_ecb_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    use cipher::{BlockEncrypt, KeyInit};
    let c = sm4::Sm4::new(key.into());
    let mut b = cipher::generic_array::GenericArray::from(*block);
    c.encrypt_block(&mut b);
    b.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use signature::hazmat::PrehashVerifier;
    use signature::Signer;

    #[test]
    fn e_agrees_with_the_sm2_crate_for_the_default_and_another_id() {
        let sk = sm2::SecretKey::random(&mut rand::rngs::OsRng);
        let pk = sk.public_key();
        for id in ["1234567812345678", "alice@example.com"] {
            let signer = sm2::dsa::SigningKey::new(id, &sk).unwrap();
            let sig: sm2::dsa::Signature = signer.sign(b"message");
            let vk = sm2::dsa::VerifyingKey::new(id, pk).unwrap();
            let e = sm2_e(&pk, id.as_bytes(), b"message").unwrap();
            vk.verify_prehash(&e, &sig).unwrap();
            let other = sm2_e(&pk, id.as_bytes(), b"messagf").unwrap();
            assert!(vk.verify_prehash(&other, &sig).is_err());
        }
        assert!(sm2_e(&pk, &vec![0u8; 8192], b"m").is_err());
    }

    #[test]
    fn sm4_matches_the_gbt_32907_example() {
        // GB/T 32907-2016 appendix A, example 1.
        let k = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let c = sm4_ecb_block(&k.clone().try_into().unwrap(), &k.try_into().unwrap());
        assert_eq!(hex::encode(c), "681edf34d206965e86b3e94f536e4246");
    }

    #[test]
    fn points_are_checked() {
        let pk = sm2::SecretKey::random(&mut rand::rngs::OsRng).public_key();
        let blob = blob_from_point(&pk);
        assert_eq!(point_from_blob("f", &blob).unwrap(), pk);
        // Left-aligned coordinates are read too.
        let mut left = blob;
        let (x, y) = (blob.XCoordinate, blob.YCoordinate);
        let (mut lx, mut ly) = ([0u8; 64], [0u8; 64]);
        lx[..32].copy_from_slice(&x[32..]);
        ly[..32].copy_from_slice(&y[32..]);
        left.XCoordinate = lx;
        left.YCoordinate = ly;
        assert_eq!(point_from_blob("f", &left).unwrap(), pk);
        // Off the curve, wrong size, wider than 256 bits.
        let mut off = blob;
        let mut y = off.YCoordinate;
        y[63] ^= 1;
        off.YCoordinate = y;
        for (bad, why) in [
            (off, "not a point"),
            (
                EccPublicKeyBlob {
                    BitLen: 512,
                    ..blob
                },
                "512 bits",
            ),
            (
                EccPublicKeyBlob {
                    XCoordinate: [1; 64],
                    ..blob
                },
                "wider",
            ),
            (
                EccPublicKeyBlob {
                    BitLen: 256,
                    XCoordinate: [0; 64],
                    YCoordinate: [0; 64],
                },
                "not a point",
            ),
        ] {
            let e = point_from_blob("f", &bad).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn signatures_are_checked() {
        let mut r = [0u8; 64];
        r[63] = 1;
        let ok = EccSignatureBlob { r, s: r };
        assert_eq!(signature_from_blob("f", &ok).unwrap()[31], 1);
        let zero = EccSignatureBlob { r: [0; 64], s: r };
        assert!(signature_from_blob("f", &zero).is_err());
        let wide = EccSignatureBlob { r: [1; 64], s: r };
        assert!(signature_from_blob("f", &wide).is_err());
        let mut big = [0u8; 64];
        big[32..].fill(0xFF);
        let over = EccSignatureBlob { r: big, s: r };
        assert!(signature_from_blob("f", &over).is_err());
    }
}

//! The numbers ukey's PKCS#11 module uses for SM2 and SM3.
//!
//! PKCS#11 (up to 3.1) defines no SM2/SM3 numbers, so every vendor picks
//! its own in the vendor-defined range (`CKK_VENDOR_DEFINED` =
//! `CKM_VENDOR_DEFINED` = 0x80000000). ukey uses IBM's: the block IBM's
//! Enterprise PKCS#11 host header `ep11.h` defines as
//! `CKK_IBM_SM2 (CKK_VENDOR_DEFINED + 0x50002)`,
//! `CKM_IBM_SM2_KEY_PAIR_GEN (+0x5000a)`, `CKM_IBM_SM2 (+0x5000b)`,
//! `CKM_IBM_SM2_SM3 (+0x5000c)`, `CKM_IBM_SM2_ENCRYPT (+0x5000d)` and
//! `CKM_IBM_SM3 (+0x5000e)` (XCP API 5.7 release of the header, IBM
//! 2012–2017). Chosen because it is one complete, consistent set that
//! other software already speaks: Sansec's `swpkcs11.h` lists the same
//! values "for IBM", and XiPKI's ipkcs11wrapper maps its vendor-neutral
//! SM2 mechanisms to them, passing the SM2 user ID as the byte-array
//! parameter of the SM3-with-SM2 mechanism — as ukey does. The Chinese
//! vendor headers found disagree with each other (Sansec: `CKK_SM2` =
//! 0x80000004 and `CKM_SM3_SM2` = 0x80008100; others: `CKK_SM2` =
//! 0x80000001 and `CKM_SM2` = 0x80000004), so none is a common ground.
//!
//! Semantics ukey gives them: [`CKM_SM2`] signs a 32-byte e = SM3(Z‖M)
//! computed by the caller (like `CKM_ECDSA` signs a hash);
//! [`CKM_SM2_SM3`] signs a message, Z computed from the user ID given as
//! the mechanism parameter (none: [`crate::crypto::DEFAULT_ID`]);
//! signatures are r‖s, 64 bytes, like ECDSA's. Keys: `CKA_KEY_TYPE` =
//! [`CKK_SM2`], `CKA_EC_PARAMS` = [`EC_PARAMS_SM2P256V1`], `CKA_EC_POINT`
//! the DER OCTET STRING of 04‖x‖y.

use std::ffi::c_ulong;

/// `CKK_VENDOR_DEFINED` / `CKM_VENDOR_DEFINED`.
pub const VENDOR_DEFINED: c_ulong = 0x8000_0000;

/// SM2 key type (IBM `CKK_IBM_SM2`).
pub const CKK_SM2: c_ulong = VENDOR_DEFINED + 0x5_0002;
/// SM2 key pair generation (IBM `CKM_IBM_SM2_KEY_PAIR_GEN`).
pub const CKM_SM2_KEY_PAIR_GEN: c_ulong = VENDOR_DEFINED + 0x5_000A;
/// SM2 signature of a caller-computed e (IBM `CKM_IBM_SM2`).
pub const CKM_SM2: c_ulong = VENDOR_DEFINED + 0x5_000B;
/// SM2 signature with SM3 and Z from the user ID parameter (IBM `CKM_IBM_SM2_SM3`).
pub const CKM_SM2_SM3: c_ulong = VENDOR_DEFINED + 0x5_000C;
/// SM2 encryption (IBM `CKM_IBM_SM2_ENCRYPT`).
pub const CKM_SM2_ENCRYPT: c_ulong = VENDOR_DEFINED + 0x5_000D;
/// SM3 digest (IBM `CKM_IBM_SM3`).
pub const CKM_SM3: c_ulong = VENDOR_DEFINED + 0x5_000E;

/// sm2p256v1, 1.2.156.10197.1.301.
pub const SM2P256V1_OID: &str = "1.2.156.10197.1.301";
/// `CKA_EC_PARAMS` of an SM2 key: the DER of [`SM2P256V1_OID`].
pub const EC_PARAMS_SM2P256V1: [u8; 10] =
    [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];
/// SM3withSM2, 1.2.156.10197.1.501 (certificate and request signatures).
pub const SM3_WITH_SM2_OID: &str = "1.2.156.10197.1.501";
/// An SM2 signature: r‖s.
pub const SM2_SIGNATURE_LEN: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_numbers_are_ibms() {
        assert_eq!(CKK_SM2, 0x8005_0002);
        assert_eq!(CKM_SM2_KEY_PAIR_GEN, 0x8005_000A);
        assert_eq!(CKM_SM2, 0x8005_000B);
        assert_eq!(CKM_SM2_SM3, 0x8005_000C);
        assert_eq!(CKM_SM2_ENCRYPT, 0x8005_000D);
        assert_eq!(CKM_SM3, 0x8005_000E);
    }

    #[test]
    fn ec_params_is_the_der_of_the_oid() {
        // 1.2 -> 0x2A; 156 -> 81 1C; 10197 -> CF 55; 1; 301 -> 82 2D.
        assert_eq!(EC_PARAMS_SM2P256V1[..2], [0x06, 0x08]);
        let arcs = [1u32, 2, 156, 10197, 1, 301];
        let mut der = vec![(arcs[0] * 40 + arcs[1]) as u8];
        for &a in &arcs[2..] {
            let mut b = vec![(a & 0x7f) as u8];
            let mut v = a >> 7;
            while v > 0 {
                b.insert(0, 0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            der.extend(b);
        }
        assert_eq!(&EC_PARAMS_SM2P256V1[2..], &der[..]);
        assert_eq!(SM2P256V1_OID, "1.2.156.10197.1.301");
    }
}

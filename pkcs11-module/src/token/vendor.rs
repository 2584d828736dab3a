//! ukey's own data object on a PIV card, named by what lies below the token
//! (the object attributes show it): the renewal marker. Its contents are
//! read and written in `renewal.rs`.

use apdu::piv::ObjectId;

/// Where the renewal data object lives: a YubiKey-writable vendor object
/// that no PIV client reads (SP 800-73-4 leaves 5FFF00..5FFF15 to the card
/// vendor; Yubico uses 5FFF00 and 5FFF01 only).
pub const RENEWAL_OBJECT: ObjectId = ObjectId(0x5F_FF10);

/// CKA_APPLICATION (and CKA_LABEL) of the renewal data object.
pub const RENEWAL_APPLICATION: &str = "ukey renewal";

/// The renewal data object's container as PKCS#11 objects name it: no PIV
/// slot has this reference.
pub const RENEWAL_KEY: crate::object::KeyRef = crate::object::KeyRef(0x5F_FF10);

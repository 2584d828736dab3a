//! Single-block ECB for management-key authentication (SP 800-73-4 Part 2
//! Appendix A.1): 3DES (EDE3) and AES-128/192/256, from RustCrypto.

use super::types::Algorithm;
use crate::Error;
use cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};

fn run<C: KeyInit + BlockEncrypt + BlockDecrypt>(
    key: &[u8],
    block: &[u8],
    encrypt: bool,
) -> Result<Vec<u8>, Error> {
    let cipher = C::new_from_slice(key).map_err(|_| Error::InvalidArgument("key length"))?;
    if block.len() != C::block_size() {
        return Err(Error::InvalidArgument("block length"));
    }
    let mut b = GenericArray::clone_from_slice(block);
    if encrypt {
        cipher.encrypt_block(&mut b);
    } else {
        cipher.decrypt_block(&mut b);
    }
    Ok(b.to_vec())
}

/// Encrypt (or decrypt) one block with a management-key algorithm.
pub fn block(alg: Algorithm, key: &[u8], block: &[u8], encrypt: bool) -> Result<Vec<u8>, Error> {
    match alg {
        Algorithm::Tdes => run::<des::TdesEde3>(key, block, encrypt),
        Algorithm::Aes128 => run::<aes::Aes128>(key, block, encrypt),
        Algorithm::Aes192 => run::<aes::Aes192>(key, block, encrypt),
        Algorithm::Aes256 => run::<aes::Aes256>(key, block, encrypt),
        _ => Err(Error::InvalidArgument("not a management key algorithm")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn aes128_fips197_vector() {
        let key = hex!("000102030405060708090a0b0c0d0e0f");
        let pt = hex!("00112233445566778899aabbccddeeff");
        let ct = block(Algorithm::Aes128, &key, &pt, true).unwrap();
        assert_eq!(ct, hex!("69c4e0d86a7b0430d8cdb78070b4c55a"));
        assert_eq!(block(Algorithm::Aes128, &key, &ct, false).unwrap(), pt);
    }

    #[test]
    fn tdes_round_trip_and_lengths() {
        let key = super::super::types::DEFAULT_MANAGEMENT_KEY;
        let ct = block(Algorithm::Tdes, &key, &[0u8; 8], true).unwrap();
        assert_eq!(block(Algorithm::Tdes, &key, &ct, false).unwrap(), [0u8; 8]);
        assert!(block(Algorithm::Tdes, &key, &[0u8; 16], true).is_err());
        assert!(block(Algorithm::Aes192, &key[..16], &[0u8; 16], true).is_err());
    }
}

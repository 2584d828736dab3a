//! Answer-to-reset parsing (ISO 7816-3 §8.2, ISO 7816-4 §8.1.1): just what
//! a host needs — the historical bytes and the card capabilities they carry.

/// What the ATR says about the card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AtrInfo {
    /// The historical bytes (T1..TK).
    pub historical: Vec<u8>,
    /// Card capabilities (compact-TLV tag 7): command chaining supported.
    pub chaining: bool,
    /// Card capabilities: extended Lc/Le supported.
    pub extended_length: bool,
}

/// Parse an ATR. Malformed ATRs give the default (no capabilities), never an error:
/// the capabilities are only an optimisation hint.
pub fn parse(atr: &[u8]) -> AtrInfo {
    historical_bytes(atr)
        .map(|historical| {
            let mut info = AtrInfo {
                historical: historical.to_vec(),
                ..AtrInfo::default()
            };
            if let Some(caps) = card_capabilities(historical) {
                if let Some(third) = caps.get(2) {
                    info.chaining = third & 0x80 != 0;
                    info.extended_length = third & 0x40 != 0;
                }
            }
            info
        })
        .unwrap_or_default()
}

fn historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let k = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut i = 2usize;
    loop {
        // TA, TB, TC present per bits 5..7 of Y, TD per bit 8.
        i += usize::from(y & 1) + usize::from((y >> 1) & 1) + usize::from((y >> 2) & 1);
        if y & 0x08 == 0 {
            break;
        }
        let td = *atr.get(i)?;
        i += 1;
        y = td >> 4;
    }
    atr.get(i..i.checked_add(k)?)
}

/// The value of compact-TLV tag 7 (card capabilities) in the historical bytes.
fn card_capabilities(historical: &[u8]) -> Option<&[u8]> {
    let (&category, mut rest) = historical.split_first()?;
    match category {
        0x80 => {}
        // Category 00: compact-TLV followed by a 3-byte status indicator.
        0x00 => rest = rest.get(..rest.len().checked_sub(3)?)?,
        _ => return None,
    }
    while let Some((&head, tail)) = rest.split_first() {
        let (tag, len) = (head >> 4, usize::from(head & 0x0F));
        let value = tail.get(..len)?;
        if tag == 7 {
            return Some(value);
        }
        rest = &tail[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn yubikey5_nfc_announces_chaining_and_extended_length() {
        let info = parse(&hex!(
            "3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40"
        ));
        assert_eq!(
            info.historical,
            hex!("80 73 C0 21 C0 57 59 75 62 69 4B 65 79")
        );
        assert!(info.chaining && info.extended_length);
    }

    #[test]
    fn yubikey4_has_no_capability_object() {
        let info = parse(&hex!(
            "3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4"
        ));
        assert_eq!(info.historical, b"Yubikey4");
        assert!(!info.extended_length);
    }

    #[test]
    fn truncated_atrs_give_defaults() {
        assert_eq!(parse(&[]), AtrInfo::default());
        assert_eq!(parse(&hex!("3B FD 13")), AtrInfo::default());
        assert_eq!(parse(&hex!("3B 8F 80")), AtrInfo::default());
    }
}

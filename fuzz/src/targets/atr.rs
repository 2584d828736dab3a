//! Answer-to-reset parsing (`apdu::atr::parse`): never panics, and the
//! historical bytes it finds are a slice of the ATR, announced by T0.

pub fn run(data: &[u8]) {
    let info = apdu::atr::parse(data);
    if info.historical.is_empty() {
        return;
    }
    let k = usize::from(data[1] & 0x0F);
    assert_eq!(
        info.historical.len(),
        k,
        "T0 announces {k} historical bytes"
    );
    assert!(
        data.windows(k).any(|w| w == &info.historical[..]),
        "historical bytes are not from the ATR"
    );
    if info.extended_length || info.chaining {
        assert!(matches!(info.historical[0], 0x00 | 0x80));
    }
}

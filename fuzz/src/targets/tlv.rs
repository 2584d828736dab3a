//! BER-TLV decoding (`apdu::tlv`): `parse_one`, `parse_single`, `iter`,
//! `parse_all`, `find`, `require` and `unwrap` agree with each other on any
//! input, and re-encoding gives back a canonical input byte for byte.

use apdu::tlv::{self, Tag, Tlv};

pub fn run(data: &[u8]) {
    // The first TLV, as parse_one sees it.
    if let Ok((first, rest)) = tlv::parse_one(data) {
        check_reencoding(first, &data[..data.len() - rest.len()]);
        assert_eq!(tlv::unwrap(data, first.tag), Ok(first.value));
        assert_eq!(tlv::parse_single(data).is_ok(), rest.is_empty());
        // Whatever follows does not change the first TLV.
        let mut longer = data.to_vec();
        longer.extend_from_slice(&[0x5A; 3]);
        assert_eq!(tlv::parse_one(&longer).map(|(t, _)| t), Ok(first));
    } else {
        assert!(tlv::parse_single(data).is_err());
    }

    // Walk the input with parse_one, as the iterator does, and compare.
    let items: Vec<_> = tlv::iter(data).collect();
    let mut rest = data;
    for (i, item) in items.iter().enumerate() {
        match (item, tlv::parse_one(rest)) {
            (Ok(t), Ok((u, after))) => {
                assert_eq!(*t, u);
                check_reencoding(u, &rest[..rest.len() - after.len()]);
                rest = after;
            }
            (Err(e), Err(f)) => {
                assert_eq!(*e, f);
                assert_eq!(i + 1, items.len(), "the iterator goes on after an error");
            }
            (a, b) => panic!("iter gave {a:?}, parse_one {b:?}"),
        }
    }
    // The iterator stops only at the end, at padding, or after an error.
    let failed = matches!(items.last(), Some(Err(_)));
    if !failed {
        assert!(
            rest.iter().all(|b| *b == 0) || rest.iter().all(|b| *b == 0xFF),
            "iteration stopped before {} unread bytes",
            rest.len()
        );
    }
    let all = tlv::parse_all(data);
    assert_eq!(all.is_err(), failed);

    // find/require give the first TLV with a tag, or the error before it.
    let mut tags: Vec<Tag> = items.iter().filter_map(|i| i.ok()).map(|t| t.tag).collect();
    tags.extend([Tag(0x53), Tag(0x70), Tag(0x7C)]);
    for tag in tags {
        let expected = first_with(&items, tag);
        assert_eq!(tlv::find(data, tag), expected);
        match expected {
            Ok(Some(v)) => assert_eq!(tlv::require(data, tag), Ok(v)),
            Ok(None) => assert_eq!(tlv::require(data, tag), Err(tlv::TlvError::Missing(tag))),
            Err(e) => assert_eq!(tlv::require(data, tag), Err(e)),
        }
    }

    // Whatever parsed re-encodes into something that parses the same (tag
    // 00, invalid in BER, reads as padding at the end: leave it out).
    if let Ok(all) = all {
        if all.iter().any(|t| t.tag == Tag(0)) {
            return;
        }
        let mut b = tlv::Builder::new();
        for t in &all {
            b = b.add(t.tag, t.value);
        }
        let bytes = b.build();
        assert_eq!(tlv::parse_all(&bytes).as_deref(), Ok(&all[..]));
    }
}

fn first_with<'a>(
    items: &[Result<Tlv<'a>, tlv::TlvError>],
    tag: Tag,
) -> Result<Option<&'a [u8]>, tlv::TlvError> {
    for item in items {
        let t = (*item)?;
        if t.tag == tag {
            return Ok(Some(t.value));
        }
    }
    Ok(None)
}

/// `raw` is how `t` was encoded in the input. Encoding `t` again must give
/// a TLV that parses back to `t`; and when it is as long as `raw` (the
/// input used the shortest length form), the very same bytes.
fn check_reencoding(t: Tlv<'_>, raw: &[u8]) {
    let enc = tlv::encode(t.tag, t.value);
    assert_eq!(tlv::parse_single(&enc), Ok(t), "re-encoded {enc:02X?}");
    if enc.len() == raw.len() {
        assert_eq!(enc, raw, "canonical TLV re-encodes differently");
    }
    assert!(
        enc.len() <= raw.len(),
        "re-encoding is longer than the input"
    );
}

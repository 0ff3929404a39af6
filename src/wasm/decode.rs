//! Envoy's encodings of the facts the core reads, decoded before they reach it: `:status` is
//! decimal text, integer properties are 8 little-endian bytes. Built on every target so the
//! decoding is tested natively.

/// A 3-digit status code (100-999); anything else is `None`, so the `status` label stays
/// bounded.
pub fn status(raw: &[u8]) -> Option<u16> {
    match raw {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// An integer property (`request.duration`, `response.size`); anything but 8 bytes is `None`.
pub fn u64_property(raw: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(raw).ok().map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::{status, u64_property};

    #[test]
    fn statuses_and_integers() {
        assert_eq!(status(b"201"), Some(201));
        assert_eq!(status(b"100"), Some(100));
        assert_eq!(status(b"999"), Some(999));
        for bad in [&b"099"[..], b"99", b"1000", b" 200", b"2x0", &200u64.to_le_bytes(), b""] {
            assert_eq!(status(bad), None, "{bad:?}");
        }
        assert_eq!(u64_property(&42u64.to_le_bytes()), Some(42));
        assert_eq!(u64_property(b"42"), None);
    }
}

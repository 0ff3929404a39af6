//! The proxy-wasm header-map encoding: a u32 count, then a (key length, value length) u32
//! pair per header, then each key and each value followed by a NUL; all little-endian.
//!
//! routemeter reads a request's headers with one `proxy_get_header_map_pairs` call instead of
//! one call per header: each call that returns data costs a host-to-VM entry into the
//! module's allocator, about 10k instructions in Envoy 1.40, while the whole map costs one
//! such entry. The host hands the map over as bytes it wrote, so [`find`] trusts nothing in
//! it: a malformed map yields `None`, never a panic.

/// Encodes `pairs` (used for the headers of our own HTTP calls).
pub fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Calls `each` with every (key, value) pair in order until it returns false; `None` when the
/// map is malformed (up to where it was read).
fn walk<'a>(map: &'a [u8], mut each: impl FnMut(&'a [u8], &'a [u8]) -> bool) -> Option<()> {
    let u32_at = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = map.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_le_bytes(bytes) as usize)
    };
    let count = u32_at(0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    if data > map.len() {
        return None;
    }
    for i in 0..count {
        let (key_len, value_len) = (u32_at(4 + 8 * i)?, u32_at(8 + 8 * i)?);
        let key_end = data.checked_add(key_len)?;
        let value_start = key_end.checked_add(1)?;
        let value_end = value_start.checked_add(value_len)?;
        if !each(map.get(data..key_end)?, map.get(value_start..value_end)?) {
            return Some(());
        }
        data = value_end.checked_add(1)?;
    }
    Some(())
}

/// The value of the first header called `name` (names compare exactly: Envoy keeps them
/// lower-case), or `None` when it is absent or the map is malformed.
pub fn find<'a>(map: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut found = None;
    walk(map, |key, value| {
        if key == name.as_bytes() {
            found = Some(value);
        }
        found.is_none()
    })?;
    found
}

/// Envoy's byte size of a header map: the lengths of every key and value.
pub fn byte_size(map: &[u8]) -> Option<u64> {
    let mut size = 0u64;
    walk(map, |key, value| {
        size += (key.len() + value.len()) as u64;
        true
    })?;
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::{byte_size, encode, find};

    #[test]
    fn finds_values_in_an_encoded_map() {
        let map = encode(&[(":authority", "a"), (":path", "/api/v1/status/7"), (":method", "GET"), ("x-empty", "")]);
        assert_eq!(find(&map, ":method"), Some(&b"GET"[..]));
        assert_eq!(find(&map, ":path"), Some(&b"/api/v1/status/7"[..]));
        assert_eq!(find(&map, ":authority"), Some(&b"a"[..]));
        assert_eq!(find(&map, "x-empty"), Some(&b""[..]));
        assert_eq!(find(&map, ":scheme"), None);
        assert_eq!(find(&encode(&[]), ":path"), None);
    }

    #[test]
    fn byte_size_is_every_key_and_value() {
        assert_eq!(byte_size(&encode(&[(":path", "/a"), ("x-e", ""), ("content-length", "10")])), Some(5 + 2 + 3 + 16));
        assert_eq!(byte_size(&encode(&[])), Some(0));
        assert_eq!(byte_size(&[1, 0, 0]), None);
    }

    #[test]
    fn the_first_of_repeated_headers_wins() {
        let map = encode(&[("x-a", "1"), ("x-a", "2")]);
        assert_eq!(find(&map, "x-a"), Some(&b"1"[..]));
    }

    #[test]
    fn the_layout_is_the_abi_one() {
        let map = encode(&[("ab", "c")]);
        assert_eq!(map, [1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, b'a', b'b', 0, b'c', 0]);
    }

    #[test]
    fn malformed_maps_are_not_found() {
        let good = encode(&[(":method", "GET"), (":path", "/x")]);
        // Every truncation of a valid map, and absurd counts and lengths.
        for cut in 0..good.len() {
            let _ = find(&good[..cut], ":path");
        }
        assert_eq!(find(&good[..good.len() - 3], ":path"), None);
        assert_eq!(find(&[0xff, 0xff, 0xff, 0xff], ":path"), None);
        let mut huge_len = good.clone();
        huge_len[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(find(&huge_len, ":path"), None);
        assert_eq!(find(&[], ":path"), None);
    }
}

//! Bytes in shared data, read and written one way. Other VMs wrote what is read (possibly
//! another routemeter version, possibly torn by a bug): every read checks its length and
//! answers `None` at the end of the input rather than trusting anything.

/// Appends `v` as a LEB128 varint (7 bits a byte, low bits first).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads bytes front to back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A varint-length-prefixed UTF-8 string of at most `max` bytes.
    pub fn text(&mut self, max: usize) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok().filter(|&l| l <= max)?;
        std::str::from_utf8(self.take(len)?).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Appends `text` the way [`Reader::text`] reads it.
pub fn put_text(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_short_or_endless_input() {
        let mut out = Vec::new();
        for v in [0, 127, 128, 300_000, u64::MAX] {
            put_varint(&mut out, v);
        }
        put_text(&mut out, "/a/{id}");
        out.extend_from_slice(&7u16.to_le_bytes());
        let mut r = Reader::new(&out);
        let got: Vec<u64> = (0..5).filter_map(|_| r.varint()).collect();
        assert_eq!(got, [0, 127, 128, 300_000, u64::MAX]);
        assert_eq!((r.text(16), r.u16(), r.is_empty()), (Some("/a/{id}"), Some(7), true));
        assert_eq!((r.u8(), r.u32(), r.u64()), (None, None, None));
        assert_eq!(Reader::new(&[0xff; 11]).varint(), None);
        assert_eq!(Reader::new(&[3, b'a']).text(16), None);
        assert_eq!(Reader::new(&[2, b'a', b'b']).text(1), None);
    }
}

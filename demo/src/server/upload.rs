//! What an upload is called and whether it is accepted: the multipart filename sniffer
//! that watches the start of a streamed body, and the spreadsheet extension check.

/// Only the first part's headers are needed, and browsers put them at the very start.
pub const SNIFF_BYTES: usize = 16 * 1024;

pub const ALLOWED_EXTENSIONS: [&str; 6] = ["xlsx", "xls", "xlsm", "xlsb", "ods", "csv"];

/// Accepts a name whose extension is a spreadsheet format, or says why not.
pub fn check_filename(name: Option<&str>) -> Result<(), String> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err("missing filename: send ?filename= or a multipart/form-data file part".into());
    };
    // Some browsers send the client's full path, in either separator style.
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let ext = match base.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() => ext.to_ascii_lowercase(),
        _ => return Err(format!("file '{base}' has no extension")),
    };
    if ALLOWED_EXTENSIONS.contains(&ext.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "unsupported extension '.{ext}'; expected one of {}",
            ALLOWED_EXTENSIONS.join(", ")
        ))
    }
}

/// The boundary of a `multipart/form-data` Content-Type, if that is what it is.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty() && value.len() <= 70).then(|| value.to_string())
    })
}

/// Collects the first [`SNIFF_BYTES`] of a multipart body, piece by piece as they are
/// read, until the first part's headers are complete.
pub struct FilenameSniffer {
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    /// Where to resume looking for a blank line, so small reads don't rescan everything.
    scanned: usize,
    result: Option<Option<String>>,
}

impl FilenameSniffer {
    pub fn new(boundary: &str) -> Self {
        FilenameSniffer {
            delimiter: [b"--", boundary.as_bytes()].concat(),
            buf: Vec::new(),
            scanned: 0,
            result: None,
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.result.is_some() {
            return;
        }
        let take = data.len().min(SNIFF_BYTES - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        // The first part's headers end at a blank line; parse only when a new one shows up.
        while let Some(i) = find(&self.buf[self.scanned..], b"\r\n\r\n") {
            self.scanned += i + 1;
            if let Some(found) = first_part_filename(&self.buf, &self.delimiter) {
                self.result = Some(found);
                return;
            }
        }
        self.scanned = self.buf.len().saturating_sub(3).max(self.scanned);
        if self.buf.len() >= SNIFF_BYTES {
            self.result = Some(None);
        }
    }

    pub fn filename(&self) -> Option<&str> {
        self.result.as_ref()?.as_deref()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `None` while the first part's headers are incomplete; `Some(None)` when they are
/// complete but name no file.
fn first_part_filename(buf: &[u8], delimiter: &[u8]) -> Option<Option<String>> {
    // The first delimiter starts the body or follows a CRLF that ends a preamble.
    let mut from = 0;
    let start = loop {
        let at = from + find(&buf[from..], delimiter)?;
        if at == 0 || buf[..at].ends_with(b"\r\n") {
            break at + delimiter.len();
        }
        from = at + 1;
    };
    if buf[start..].starts_with(b"--") {
        return Some(None);
    }
    let headers_start = start + find(&buf[start..], b"\r\n")? + 2;
    let headers_end = headers_start - 2 + find(&buf[headers_start - 2..], b"\r\n\r\n")?;
    let headers = String::from_utf8_lossy(&buf[headers_start.min(headers_end)..headers_end]);
    Some(headers.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition_filename(value)
        } else {
            None
        }
    }))
}

/// The `filename` parameter of a Content-Disposition value such as
/// `form-data; name="file"; filename="a;b.xlsx"`.
fn disposition_filename(value: &str) -> Option<String> {
    let mut rest = value.split_once(';')?.1;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return None;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let name = rest[..name_end].trim();
        rest = &rest[name_end..];
        let Some(after_eq) = rest.strip_prefix('=') else {
            continue;
        };
        let after_eq = after_eq.trim_start();
        let param;
        (param, rest) = if let Some(quoted) = after_eq.strip_prefix('"') {
            read_quoted(quoted)
        } else {
            let end = after_eq.find(';').unwrap_or(after_eq.len());
            (after_eq[..end].trim().to_string(), &after_eq[end..])
        };
        if name.eq_ignore_ascii_case("filename") {
            return Some(param);
        }
    }
}

/// Reads up to the closing quote. Only `\"` and `\\` are treated as escapes: browsers
/// send Windows paths with bare backslashes, which must survive.
fn read_quoted(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' if matches!(chars.peek(), Some((_, '"' | '\\'))) => {
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                }
            }
            _ => out.push(c),
        }
    }
    (out, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_table() {
        for ok in [
            "a.xlsx",
            "b.XLS",
            "c.xlsm",
            "d.Xlsb",
            "e.ods",
            "f.csv",
            "dir/g.CSV",
            "C:\\Users\\me\\h.xlsx",
            "a.b.ods",
        ] {
            assert_eq!(check_filename(Some(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "a.pdf",
            "a.xlsx.exe",
            "xlsx",
            "a.",
            "dir.xlsx/file",
            "a.csv ",
            "",
        ] {
            assert!(check_filename(Some(bad)).is_err(), "{bad}");
        }
        assert!(check_filename(None).is_err());
        assert_eq!(
            check_filename(Some("a.pdf")),
            Err(
                "unsupported extension '.pdf'; expected one of xlsx, xls, xlsm, xlsb, ods, csv"
                    .into()
            )
        );
    }

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=abc"),
            Some("abc".into())
        );
        assert_eq!(
            multipart_boundary("Multipart/Form-Data;charset=x; Boundary=\"a b\""),
            Some("a b".into())
        );
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(multipart_boundary("multipart/form-data; boundary="), None);
        assert_eq!(
            multipart_boundary("application/octet-stream; boundary=abc"),
            None
        );
    }

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.XLSX\"\r\nContent-Type: application/vnd.ms-excel\r\n\r\nPK\x03\x04data\r\n--XyZ--\r\n";

    fn sniff(pieces: &[&[u8]]) -> Option<String> {
        let mut s = FilenameSniffer::new("XyZ");
        for p in pieces {
            s.feed(p);
        }
        s.filename().map(str::to_string)
    }

    #[test]
    fn quoted_filename_in_one_read() {
        assert_eq!(sniff(&[BODY]), Some("report.XLSX".into()));
    }

    #[test]
    fn filename_split_across_two_reads() {
        let split = BODY.windows(6).position(|w| w == b"report").unwrap() + 3;
        assert_eq!(
            sniff(&[&BODY[..split], &BODY[split..]]),
            Some("report.XLSX".into())
        );
        // And every other split point, including inside the delimiter and blank line.
        for at in 0..BODY.len() {
            assert_eq!(
                sniff(&[&BODY[..at], &BODY[at..]]),
                Some("report.XLSX".into()),
                "split at {at}"
            );
        }
    }

    #[test]
    fn byte_by_byte_reads() {
        let pieces: Vec<&[u8]> = BODY.chunks(1).collect();
        assert_eq!(sniff(&pieces), Some("report.XLSX".into()));
    }

    #[test]
    fn missing_filename() {
        let no_file = b"--XyZ\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhello\r\n--XyZ--\r\n";
        assert_eq!(sniff(&[no_file]), None);
        assert_eq!(sniff(&[b"--XyZ--\r\n\r\n"]), None);
        assert_eq!(sniff(&[b"no multipart at all\r\n\r\n"]), None);
        assert_eq!(sniff(&[&vec![b'x'; SNIFF_BYTES + 10]]), None);
    }

    #[test]
    fn preamble_and_tricky_parameters() {
        let body = b"preamble\r\n\r\n--XyZ\r\ncontent-disposition: form-data; name=\"f;x\"; FILENAME=\"C:\\dir\\a \\\"q\\\".csv\"\r\n\r\n";
        assert_eq!(sniff(&[body]), Some("C:\\dir\\a \"q\".csv".into()));
        let unquoted = b"--XyZ\r\nContent-Disposition: form-data; filename=plain.ods\r\n\r\n";
        assert_eq!(sniff(&[unquoted]), Some("plain.ods".into()));
    }
}

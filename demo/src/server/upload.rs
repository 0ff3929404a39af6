//! What an upload is called and whether it is accepted: the first multipart part's filename
//! (from the start of a streamed body) and the spreadsheet extension check.

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
        Err(format!("unsupported extension '.{ext}'; expected one of {}", ALLOWED_EXTENSIONS.join(", ")))
    }
}

/// The filename of a `multipart/form-data` body's first part, from the first bytes of the
/// body (browsers put that part's headers at the very start; [`SNIFF_BYTES`] is plenty).
pub async fn multipart_filename(content_type: &str, head: bytes::Bytes) -> Option<String> {
    let boundary = multer::parse_boundary(content_type).ok()?;
    let body = futures_util::stream::once(async { Ok::<_, std::convert::Infallible>(head) });
    let field = multer::Multipart::new(body, boundary).next_field().await.ok()??;
    field.file_name().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_table() {
        for ok in
            ["a.xlsx", "b.XLS", "c.xlsm", "d.Xlsb", "e.ods", "f.csv", "dir/g.CSV", "C:\\Users\\me\\h.xlsx", "a.b.ods"]
        {
            assert_eq!(check_filename(Some(ok)), Ok(()), "{ok}");
        }
        for bad in ["a.pdf", "a.xlsx.exe", "xlsx", "a.", "dir.xlsx/file", "a.csv ", ""] {
            assert!(check_filename(Some(bad)).is_err(), "{bad}");
        }
        assert!(check_filename(None).is_err());
        assert_eq!(
            check_filename(Some("a.pdf")),
            Err("unsupported extension '.pdf'; expected one of xlsx, xls, xlsm, xlsb, ods, csv".into())
        );
    }

    fn sniff(content_type: &str, body: &'static [u8]) -> Option<String> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(multipart_filename(content_type, bytes::Bytes::from_static(body)))
    }

    #[test]
    fn multipart_filenames() {
        let ct = "multipart/form-data; boundary=XyZ";
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.XLSX\"\r\n\r\nPK\x03\x04data\r\n--XyZ--\r\n";
        assert_eq!(sniff(ct, body), Some("report.XLSX".into()));
        // Only the start of a large body is looked at: the part need not end in it.
        assert_eq!(sniff(ct, &body[..80]), Some("report.XLSX".into()));
        assert_eq!(sniff("multipart/form-data; boundary=\"XyZ\"", body), Some("report.XLSX".into()));
        assert_eq!(
            sniff(ct, b"--XyZ\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhi\r\n--XyZ--\r\n"),
            None
        );
        assert_eq!(sniff("application/octet-stream", body), None);
        assert_eq!(sniff(ct, b"no multipart at all\r\n\r\n"), None);
    }
}

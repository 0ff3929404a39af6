//! The default outcome tables of the metric contract, written out again independently of
//! `src/outcome.rs`, so end-to-end expectations do not come from the code under test.

/// `uploads_total` status for an HTTP status (0: no response).
pub fn upload_outcome(status: u16) -> &'static str {
    match status {
        0 => "aborted",
        200..=299 => "success",
        413 => "failed_size",
        400..=499 => "failed_validation",
        _ => "failed_error",
    }
}

/// `downloads_total` status for an HTTP status (0: no response).
pub fn download_outcome(status: u16) -> &'static str {
    match status {
        0 => "aborted",
        200..=299 => "success",
        404 => "failed_not_found",
        409 | 425 => "failed_not_ready",
        _ => "failed_error",
    }
}

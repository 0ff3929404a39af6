//! One HTTP stream as the filter sees it: which host facts are read in which callback, and
//! the guarantee that a request is recorded exactly once (at its first `on_log`), whatever
//! order or number of callbacks the host delivers.

use crate::host::{Host, Property};
use crate::plugin::{InFlight, Plugin};

#[derive(Debug, Default)]
pub struct StreamRecorder {
    inflight: Option<InFlight>,
    started: bool,
}

impl StreamRecorder {
    /// Request headers are only readable now, so method and path are read here.
    pub fn on_request_headers(&mut self, plugin: &mut Plugin, host: &impl Host) {
        if self.started {
            return;
        }
        self.started = true;
        let method = host.request_header(":method").unwrap_or_default();
        let path = host.request_header(":path").unwrap_or_default();
        self.inflight = plugin.start(&method, &path, host.now_nanos(), host);
    }

    /// A request body chunk passed through (`len` bytes, never buffered).
    pub fn on_request_body(&mut self, len: usize) {
        if let Some(req) = &mut self.inflight {
            req.request_bytes = req.request_bytes.saturating_add(len as u64);
        }
    }

    pub fn on_response_body(&mut self, len: usize) {
        if let Some(req) = &mut self.inflight {
            req.response_bytes = req.response_bytes.saturating_add(len as u64);
        }
    }

    /// The stream is complete (normally, by local reply, or by reset).
    pub fn on_log(&mut self, plugin: &mut Plugin, host: &impl Host) {
        if let Some(req) = self.inflight.take() {
            let status = host.property(Property::ResponseCode).map_or(0, |raw| parse_status(&raw));
            plugin.finish(req, status, host.now_nanos(), host);
        }
    }

    /// True while a request has started and not finished.
    pub fn is_active(&self) -> bool {
        self.inflight.is_some()
    }
}

/// `response.code` is a u64 in 8 little-endian bytes. Anything that is not a 3-digit code
/// becomes 0 so the `status` label stays bounded.
pub fn parse_status(raw: &[u8]) -> u16 {
    let Ok(bytes) = <[u8; 8]>::try_from(raw) else { return 0 };
    match u64::from_le_bytes(bytes) {
        code @ 100..=999 => code as u16,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn status_parsing() {
        assert_eq!(parse_status(&201u64.to_le_bytes()), 201);
        assert_eq!(parse_status(&999u64.to_le_bytes()), 999);
        assert_eq!(parse_status(&0u64.to_le_bytes()), 0);
        assert_eq!(parse_status(&99u64.to_le_bytes()), 0);
        assert_eq!(parse_status(&1000u64.to_le_bytes()), 0);
        assert_eq!(parse_status(b"200"), 0);
        assert_eq!(parse_status(b""), 0);
    }
}

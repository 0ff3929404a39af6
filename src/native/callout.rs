//! The OpenAPI document over Envoy's configuration-level HTTP callouts, as the Wasm build
//! fetches it with `proxy_http_call`: the core says when and what ([`FetchRequest`]), the
//! glue sends it from the main thread and hands the answer back, read chunk by chunk from
//! Envoy's buffers (the document is never copied whole).

use std::sync::{Mutex, PoisonError};

use super::abi::{self, Buffer, ConfigEnvoy, Header, CALLOUT_SUCCESS};
use crate::openapi::source::FetchRequest;

/// Envoy numbers callouts per configuration, from 1; the core's tokens must be unique in
/// the process. The last token given, and each waiting callout's (configuration, Envoy's
/// id) -> token.
type Tokens = (u32, Vec<((u32, u64), u32)>);

static TOKENS: Mutex<Tokens> = Mutex::new((0, Vec::new()));

fn tokens<R>(f: impl FnOnce(&mut Tokens) -> R) -> R {
    f(&mut TOKENS.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The token of `root`'s callout `id`, forgotten (its answer came).
pub fn answered(root: u32, id: u64) -> Option<u32> {
    tokens(|(_, list)| {
        let i = list.iter().position(|(k, _)| *k == (root, id))?;
        Some(list.swap_remove(i).1)
    })
}

/// The tokens of `root`'s callouts still waiting: Envoy cancels them without an answer
/// when the configuration goes.
pub fn abandoned(root: u32) -> Vec<u32> {
    tokens(|(_, list)| {
        let (gone, kept): (Vec<_>, Vec<_>) = list.drain(..).partition(|((r, _), _)| *r == root);
        *list = kept;
        gone.into_iter().map(|(_, t)| t).collect()
    })
}

/// Sends `root`'s fetch; the core's token, or `Err` if Envoy refused it.
pub fn send(envoy: ConfigEnvoy, root: u32, fetch: &FetchRequest) -> Result<u32, ()> {
    let pairs = [(":method", "GET"), (":path", fetch.path.as_str()), (":authority", fetch.authority.as_str())];
    let headers: Vec<Header> =
        pairs.iter().map(|(k, v)| Header { key: Buffer::of(k.as_bytes()), value: Buffer::of(v.as_bytes()) }).collect();
    let mut id = 0u64;
    // SAFETY: a live configuration, on the main thread (its scheduled hook); the buffers
    // outlive the call.
    let result = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
            envoy,
            &mut id,
            Buffer::of(fetch.cluster.as_bytes()),
            headers.as_ptr(),
            headers.len(),
            Buffer::EMPTY,
            fetch.timeout_ms,
        )
    };
    match result {
        CALLOUT_SUCCESS => Ok(tokens(|(next, list)| {
            *next = next.wrapping_add(1).max(1);
            list.push(((root, id), *next));
            *next
        })),
        other => {
            log::warn!("openapi: cannot call cluster {:?} (Envoy result {other})", fetch.cluster);
            Err(())
        }
    }
}

/// The answer's `:status`, if it has one (a reset or timeout has no headers).
///
/// # Safety
/// `headers` points to `len` headers Envoy passed to the hook being run.
pub unsafe fn status(result: u32, headers: *const Header, len: usize) -> Option<u16> {
    if result != CALLOUT_SUCCESS || headers.is_null() {
        return None;
    }
    let headers = std::slice::from_raw_parts(headers, len);
    let status = headers.iter().find(|h| h.key.to_vec() == b":status")?.value.to_vec();
    std::str::from_utf8(&status).ok()?.parse().ok()
}

/// The body, as Envoy's chunks.
pub struct Chunks<'a> {
    chunks: &'a [Buffer],
    /// The chunk being read, and how far.
    at: (usize, usize),
}

impl Chunks<'_> {
    /// # Safety
    /// `chunks` points to `len` buffers Envoy passed to the hook being run, which outlives
    /// the reader.
    pub unsafe fn new<'a>(chunks: *const Buffer, len: usize) -> Chunks<'a> {
        let chunks = if chunks.is_null() { &[][..] } else { std::slice::from_raw_parts(chunks, len) };
        Chunks { chunks, at: (0, 0) }
    }

    pub fn total(&self) -> usize {
        self.chunks.iter().map(|c| c.len).sum()
    }
}

impl std::io::Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(chunk) = self.chunks.get(self.at.0) {
            if chunk.ptr.is_null() || self.at.1 >= chunk.len {
                self.at = (self.at.0 + 1, 0);
                continue;
            }
            // SAFETY: Envoy's chunk, valid for the hook (`new`'s contract).
            let bytes = unsafe { std::slice::from_raw_parts(chunk.ptr, chunk.len) };
            let rest = bytes.get(self.at.1..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
                to.copy_from_slice(from);
            }
            self.at.1 += n;
            return Ok(n);
        }
        Ok(0)
    }
}

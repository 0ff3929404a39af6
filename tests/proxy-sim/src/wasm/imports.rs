//! The proxy-wasm ABI 0.2.1 host functions, as Envoy implements them, for the calls a filter
//! makes: logs, clock, plugin configuration, request headers, properties, shared data and
//! metrics. Every other import the module declares is linked to a stub that traps with its
//! name, so a filter that starts using an unimplemented call fails loudly.

use std::collections::HashMap;

use routemeter::abi::{BufferType, MapType, MetricType, Status};
use routemeter::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, SharedStore};
use wasmtime::{Caller, Error, Extern, Linker, Module, Result};

use crate::envoy::{Answer, SimEnvoy};

const OK: i32 = Status::Ok as i32;
const NOT_FOUND: i32 = Status::NotFound as i32;
const BAD_ARGUMENT: i32 = Status::BadArgument as i32;

/// What the host knows about the stream whose callback is running.
#[derive(Debug, Default, Clone)]
pub struct StreamFacts {
    pub request_headers: Vec<(String, Vec<u8>)>,
    /// `:status` once a response was sent.
    pub response_headers: Vec<(String, Vec<u8>)>,
    /// Envoy serves headers only during their own callbacks and again in `on_log`.
    pub headers_readable: bool,
    /// Property path (parts joined by NUL, as the ABI serialises it) -> value.
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
}

/// The host state of one VM.
pub struct VmState {
    pub envoy: SimEnvoy,
    pub plugin_config: Vec<u8>,
    /// The plugin's `name`, which Envoy serves as the `plugin_name` property.
    pub plugin_name: String,
    pub stream: StreamFacts,
    /// `(level, message)` of every `proxy_log` call.
    pub logs: Vec<(i32, String)>,
    pub tick_period_ms: u32,
    pub next_token: u32,
    /// HTTP calls made and not yet answered: token and answer.
    pub pending_calls: Vec<(u32, Answer)>,
    /// The answer being delivered (`on_http_call_response`): status header and body.
    pub call_response: Option<(u16, Vec<u8>)>,
    /// Stream callbacks the module was entered for.
    pub entries: u64,
}

impl VmState {
    pub fn new(envoy: SimEnvoy, plugin_config: Vec<u8>) -> VmState {
        VmState {
            envoy,
            plugin_config,
            plugin_name: String::new(),
            stream: StreamFacts::default(),
            logs: Vec::new(),
            tick_period_ms: 0,
            next_token: 1,
            pending_calls: Vec::new(),
            call_response: None,
            entries: 0,
        }
    }
}

/// Envoy's encoding of a header map for `proxy_get_header_map_pairs` (see [`parse_header_map`]).
/// Written here again on purpose, not taken from `routemeter::header_map`: the simulator is the
/// filter's oracle for Envoy's side, and a shared encoder would hide a bug common to both.
fn encode_header_map(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    // Sizes and data in one pass: the size table goes after the count, the data after it.
    let (mut sizes, mut data) = (Vec::new(), Vec::new());
    for (k, v) in pairs {
        sizes.extend([k.len() as u32, v.len() as u32].iter().flat_map(|n| n.to_le_bytes()));
        data.extend(k.as_bytes().iter().chain(&[0]).chain(v).chain(&[0]));
    }
    [(pairs.len() as u32).to_le_bytes().to_vec(), sizes, data].concat()
}

/// A proxy-wasm serialised header map: count, then (key length, value length) pairs, then
/// each key and value followed by a NUL.
fn parse_header_map(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let u32_at = |i: usize| -> Result<usize> {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| Error::msg("short header map"))
    };
    let n = u32_at(0)?;
    let mut at = 4 + 8 * n;
    let mut out = Vec::new();
    for i in 0..n {
        let (klen, vlen) = (u32_at(4 + 8 * i)?, u32_at(8 + 8 * i)?);
        let key = bytes.get(at..at + klen).ok_or_else(|| Error::msg("short header map"))?;
        at += klen + 1;
        let value = bytes.get(at..at + vlen).ok_or_else(|| Error::msg("short header map"))?;
        at += vlen + 1;
        out.push((String::from_utf8_lossy(key).into_owned(), String::from_utf8_lossy(value).into_owned()));
    }
    Ok(out)
}

/// A host call's answer as the status the ABI returns.
fn status<T>(r: std::result::Result<T, HostError>) -> i32 {
    match r {
        Ok(_) => OK,
        Err(HostError(s)) => s as i32,
    }
}

fn memory(caller: &mut Caller<'_, VmState>) -> Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(Error::msg("module exports no memory")),
    }
}

fn read(caller: &mut Caller<'_, VmState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let mem = memory(caller)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    mem.data(&caller)
        .get(ptr..ptr + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::msg(format!("filter passed an out-of-bounds buffer {ptr}+{len}")))
}

fn read_str(caller: &mut Caller<'_, VmState>, ptr: i32, len: i32) -> Result<String> {
    String::from_utf8(read(caller, ptr, len)?).map_err(|e| Error::msg(format!("filter passed non-UTF-8 text: {e}")))
}

fn write(caller: &mut Caller<'_, VmState>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let mem = memory(caller)?;
    mem.write(caller, ptr as u32 as usize, bytes).map_err(|e| Error::msg(format!("write at {ptr}: {e}")))
}

/// Hands `bytes` to the module the way Envoy does: memory from the module's own allocator
/// (`malloc`), pointer and size written to the out-parameters.
fn return_bytes(caller: &mut Caller<'_, VmState>, bytes: &[u8], ptr_out: i32, size_out: i32) -> Result<()> {
    let malloc = match caller.get_export("malloc") {
        Some(Extern::Func(f)) => f.typed::<i32, i32>(&caller)?,
        _ => return Err(Error::msg("module exports no malloc")),
    };
    let ptr = malloc.call(&mut *caller, bytes.len() as i32)?;
    if ptr == 0 && !bytes.is_empty() {
        return Err(Error::msg("module malloc returned null"));
    }
    write(caller, ptr, bytes)?;
    write(caller, ptr_out, &ptr.to_le_bytes())?;
    write(caller, size_out, &(bytes.len() as u32).to_le_bytes())
}

/// `Some`: the bytes, handed over like [`return_bytes`]; `None`: NotFound.
fn return_found(caller: &mut Caller<'_, VmState>, value: Option<Vec<u8>>, ptr_out: i32, size_out: i32) -> Result<i32> {
    match value {
        Some(v) => return_bytes(caller, &v, ptr_out, size_out).map(|()| OK),
        None => Ok(NOT_FOUND),
    }
}

/// A header map as the stream facts hold it.
type HeaderList = [(String, Vec<u8>)];

/// The stream's request or response headers, or the status Envoy answers when they cannot be
/// read now (injected fault, outside their callbacks and the log phase).
fn readable_headers<'a>(
    c: &'a Caller<'_, VmState>,
    map: i32,
    call: &str,
) -> Result<std::result::Result<&'a HeaderList, i32>> {
    let facts = &c.data().stream;
    let headers = match map {
        m if m == MapType::HttpRequestHeaders as i32 => &facts.request_headers,
        m if m == MapType::HttpResponseHeaders as i32 => &facts.response_headers,
        _ => return Err(Error::msg(format!("{call}: map type {map} is not simulated"))),
    };
    if envoy(c).faults().headers {
        return Ok(Err(Status::InternalFailure as i32));
    }
    if !facts.headers_readable {
        return Ok(Err(BAD_ARGUMENT));
    }
    Ok(Ok(headers))
}

fn envoy(caller: &Caller<'_, VmState>) -> SimEnvoy {
    caller.data().envoy.clone()
}

/// The imports [`link`] implements; everything else the module imports becomes a trap.
pub const IMPLEMENTED: &[&str] = &[
    "proxy_log",
    "proxy_get_current_time_nanoseconds",
    "proxy_get_buffer_bytes",
    "proxy_get_header_map_value",
    "proxy_get_header_map_pairs",
    "proxy_get_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_set_tick_period_milliseconds",
    "proxy_http_call",
    "proxy_set_effective_context",
];

/// Links the implemented host functions, then a trapping stub for every other import.
pub fn link(linker: &mut Linker<VmState>, module: &Module) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Caller<'_, VmState>, level: i32, ptr: i32, len: i32| -> Result<i32> {
            let msg = read_str(&mut c, ptr, len)?;
            if std::env::var_os("PROXY_SIM_LOG").is_some() {
                eprintln!("[wasm log {level}] {msg}");
            }
            c.data_mut().logs.push((level, msg));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Caller<'_, VmState>, out: i32| -> Result<i32> {
            match envoy(&c).host().now_ns() {
                Ok(ns) => write(&mut c, out, &ns.to_le_bytes()).map(|()| OK),
                Err(e) => Ok(status::<()>(Err(e))),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, VmState>, kind: i32, start: i32, max: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
            let config = match kind {
                k if k == BufferType::PluginConfiguration as i32 => c.data().plugin_config.clone(),
                k if k == BufferType::HttpCallResponseBody as i32 => match &c.data().call_response {
                    Some((_, body)) => body.clone(),
                    None => return Ok(NOT_FOUND),
                },
                _ => return Err(Error::msg(format!("proxy_get_buffer_bytes: buffer type {kind} is not simulated"))),
            };
            let start = (start as u32 as usize).min(config.len());
            let end = start.saturating_add(max as u32 as usize).min(config.len());
            return_bytes(&mut c, &config[start..end], ptr_out, size_out).map(|()| OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, VmState>,
         map: i32,
         key_ptr: i32,
         key_len: i32,
         ptr_out: i32,
         size_out: i32|
         -> Result<i32> {
            let key = read_str(&mut c, key_ptr, key_len)?;
            if map == MapType::HttpCallResponseHeaders as i32 {
                let status = c.data().call_response.as_ref().map(|(status, _)| status.to_string().into_bytes());
                return return_found(&mut c, status.filter(|_| key == ":status"), ptr_out, size_out);
            }
            let headers = match readable_headers(&c, map, "proxy_get_header_map_value")? {
                Ok(headers) => headers,
                Err(status) => return Ok(status),
            };
            let value = headers.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
            return_found(&mut c, value, ptr_out, size_out)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, VmState>, map: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
            let headers = match readable_headers(&c, map, "proxy_get_header_map_pairs")? {
                Ok(headers) => headers,
                Err(status) => return Ok(status),
            };
            let map = encode_header_map(headers);
            return_bytes(&mut c, &map, ptr_out, size_out).map(|()| OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Caller<'_, VmState>, path_ptr: i32, path_len: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
            let path = read(&mut c, path_ptr, path_len)?;
            let value = match c.data().stream.properties.get(&path) {
                Some(value) => Some(value.clone()),
                // Envoy serves the plugin's name in every context.
                None if path == b"plugin_name" => Some(c.data().plugin_name.clone().into_bytes()),
                None => None,
            };
            return_found(&mut c, value, ptr_out, size_out)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Caller<'_, VmState>,
         key_ptr: i32,
         key_len: i32,
         ptr_out: i32,
         size_out: i32,
         cas_out: i32|
         -> Result<i32> {
            let key = read_str(&mut c, key_ptr, key_len)?;
            match envoy(&c).host().get_shared(&key) {
                // Never written.
                Ok((None, 0)) => Ok(NOT_FOUND),
                Ok((None, cas)) => {
                    // Envoy hands an empty value over as a null pointer (no allocation).
                    write(&mut c, ptr_out, &0u32.to_le_bytes())?;
                    write(&mut c, size_out, &0u32.to_le_bytes())?;
                    write(&mut c, cas_out, &cas.to_le_bytes()).map(|()| OK)
                }
                Ok((Some(value), cas)) => {
                    return_bytes(&mut c, &value, ptr_out, size_out)?;
                    write(&mut c, cas_out, &cas.to_le_bytes()).map(|()| OK)
                }
                Err(e) => Ok(status::<()>(Err(e))),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Caller<'_, VmState>, key_ptr: i32, key_len: i32, val_ptr: i32, val_len: i32, cas: i32| -> Result<i32> {
            let key = read_str(&mut c, key_ptr, key_len)?;
            let value = read(&mut c, val_ptr, val_len)?;
            Ok(match envoy(&c).host().set_shared(&key, &value, cas as u32) {
                Ok(CasWrite::Conflict) => Status::CasMismatch as i32,
                stored => status(stored),
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Caller<'_, VmState>, kind: i32, name_ptr: i32, name_len: i32, id_out: i32| -> Result<i32> {
            let kind = match MetricType::from_u32(kind as u32) {
                Some(MetricType::Counter) => MetricKind::Counter,
                Some(MetricType::Gauge) => MetricKind::Gauge,
                Some(MetricType::Histogram) => MetricKind::Histogram,
                None => return Ok(BAD_ARGUMENT),
            };
            let name = read_str(&mut c, name_ptr, name_len)?;
            match envoy(&c).host().define_metric(kind, &name) {
                Ok(MetricId(id)) => write(&mut c, id_out, &id.to_le_bytes()).map(|()| OK),
                Err(e) => Ok(status::<()>(Err(e))),
            }
        },
    )?;
    // The SDK switches to the root context before delivering an HTTP call's answer.
    linker.func_wrap("env", "proxy_set_effective_context", |_: Caller<'_, VmState>, _context: i32| -> i32 { OK })?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", |mut c: Caller<'_, VmState>, ms: i32| -> i32 {
        c.data_mut().tick_period_ms = ms as u32;
        OK
    })?;
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Caller<'_, VmState>,
         up_ptr: i32,
         up_len: i32,
         hdr_ptr: i32,
         hdr_len: i32,
         _body_ptr: i32,
         _body_len: i32,
         _trl_ptr: i32,
         _trl_len: i32,
         _timeout_ms: i32,
         token_out: i32|
         -> Result<i32> {
            let cluster = read_str(&mut c, up_ptr, up_len)?;
            let headers = parse_header_map(&read(&mut c, hdr_ptr, hdr_len)?)?;
            let get = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
            let (Some(path), Some(authority), Some(_)) = (get(":path"), get(":authority"), get(":method")) else {
                return Ok(BAD_ARGUMENT);
            };
            match envoy(&c).http_call(&cluster, &path, &authority) {
                Ok(answer) => {
                    let token = c.data().next_token;
                    c.data_mut().next_token += 1;
                    c.data_mut().pending_calls.push((token, answer));
                    write(&mut c, token_out, &token.to_le_bytes()).map(|()| OK)
                }
                Err(s) => Ok(s as i32),
            }
        },
    )?;
    linker.func_wrap("env", "proxy_increment_metric", |c: Caller<'_, VmState>, id: i32, delta: i64| -> i32 {
        status(envoy(&c).host().increment_metric(MetricId(id as u32), delta))
    })?;
    linker.func_wrap("env", "proxy_record_metric", |c: Caller<'_, VmState>, id: i32, value: i64| -> i32 {
        status(envoy(&c).host().record_metric(MetricId(id as u32), value as u64))
    })?;

    for import in module.imports() {
        let (module_name, name) = (import.module().to_string(), import.name().to_string());
        if module_name == "env" && IMPLEMENTED.contains(&name.as_str()) {
            continue;
        }
        let wasmtime::ExternType::Func(ty) = import.ty() else {
            return Err(Error::msg(format!("import {module_name}.{name} is not a function; not simulated")));
        };
        let message =
            format!("the filter called proxy-wasm import {module_name}.{name}, which the simulator does not implement");
        linker.func_new(&module_name, &name, ty, move |_, _, _| Err(Error::msg(message.clone())))?;
    }
    Ok(())
}

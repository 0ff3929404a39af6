//! The filter as a proxy drives it, by context id: root contexts (one per plugin
//! configuration) are configured, tick and go away; streams run their callbacks. Any host
//! glue (the proxy-wasm exports, a test's simulated proxy) forwards its callbacks here, so
//! the rules below hold the same everywhere.
//!
//! A configuration applies to the streams that start while it is the newest: a new
//! configuration (ECDS, Istio's `WasmPlugin`, a root configured again) takes the new streams,
//! and the one it replaces keeps its own until they end. A replaced configuration flushes
//! what it counted when it is replaced and after each of its streams that ends later, and
//! goes with its last stream. Requests therefore keep the route labels and rules they
//! started with, and the in-flight gauge they raised is lowered on the same series.
//!
//! Without `proxy_on_context_create` (it would cost a VM entry per request) a stream is not
//! told which root context it belongs to. One VM may run several plugins (the same module
//! and `vm_id`, other configurations: Istio gives every plugin the same empty `vm_id`); only
//! then does a new stream ask the host for its plugin's name (`plugin_name`, a host call).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::config::ConfigError;
use crate::host::Host;
use crate::openapi::source::FetchRequest;
use crate::plugin::{self, Plugin};
use crate::stream::StreamRecorder;

/// One configuration of a root context.
#[derive(Debug)]
struct Configuration {
    /// Unique in this VM: a root configured again gets a new configuration.
    id: u64,
    root: u32,
    /// The plugin's name (Envoy's `name` of the Wasm plugin), which keys its shared data.
    name: String,
    /// `None` when it was rejected: its streams pass through unrecorded.
    plugin: Option<Plugin>,
    /// Replaced or its root context gone: it lives on only for streams that started with it.
    retired: bool,
    /// Streams that started with it and are not deleted yet.
    streams: usize,
    /// Its HTTP call out (the OpenAPI document): the host's token.
    call: Option<u32>,
}

/// What the glue needs of an accepted configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    /// One line for the log.
    pub description: String,
    /// How often the root context should tick.
    pub tick_period_ms: u64,
}

/// A stream: the configuration it started with, and what it has seen.
#[derive(Debug)]
struct Stream {
    configuration: u64,
    recorder: StreamRecorder,
}

#[derive(Debug, Default)]
pub struct Filter {
    /// Oldest first.
    configurations: Vec<Configuration>,
    /// Streams by context id, from their first callback to their deletion.
    streams: HashMap<u32, Stream, BuildHasherDefault<ContextIds>>,
    next_id: u64,
}

/// The configuration a new stream belongs to: the newest of its plugin.
fn configuration_for_new_stream(configurations: &[Configuration], host: &impl Host) -> Option<u64> {
    let mut live = configurations.iter().rev().filter(|c| !c.retired);
    let newest = live.next()?;
    if live.all(|c| c.name == newest.name) {
        return Some(newest.id);
    }
    // Several plugins share this VM: the host says whose filter this stream is in. If it
    // cannot, the stream passes unrecorded rather than counted by another plugin.
    let name = host.plugin_name()?;
    configurations.iter().rev().find(|c| !c.retired && c.name.as_bytes() == name).map(|c| c.id)
}

/// Context ids are small sequential integers: hashing them is wasted work.
#[derive(Default)]
struct ContextIds(u64);

impl Hasher for ContextIds {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

impl Filter {
    pub fn new() -> Filter {
        Filter::default()
    }

    /// The root context `root` of the plugin `name` gets a configuration. The result is the
    /// glue's to log; a rejected configuration records nothing (and must not stop the proxy).
    pub fn configure(
        &mut self,
        root: u32,
        name: &str,
        bytes: &[u8],
        host: &impl Host,
    ) -> Result<Configured, ConfigError> {
        // The series this VM took over for this plugin carry over to its new configuration.
        let previous = self.configurations.iter().rev().filter(|c| c.name == name).find_map(|c| c.plugin.as_ref());
        let configured = plugin::configure(bytes, name, previous.map(Plugin::registry), host);
        self.retire(root, host);
        let id = self.next_id;
        self.next_id += 1;
        let result = match &configured {
            Ok(p) => Ok(Configured { description: p.describe().to_string(), tick_period_ms: p.tick_period_ms() }),
            Err(e) => Err(e.clone()),
        };
        let plugin = configured.ok();
        let name = name.to_string();
        self.configurations.push(Configuration { id, root, name, plugin, retired: false, streams: 0, call: None });
        result
    }

    /// The plugin of the live configuration of `root`.
    fn plugin(&mut self, root: u32) -> Option<&mut Plugin> {
        self.configurations.iter_mut().find(|c| c.root == root && !c.retired)?.plugin.as_mut()
    }

    /// Every plugin in this VM, replaced ones included (for the crash tests' report).
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.configurations.iter().filter_map(|c| c.plugin.as_ref())
    }

    /// The root context's periodic tick; a fetch to make, if the OpenAPI document is due.
    pub fn tick(&mut self, root: u32, host: &impl Host) -> Option<FetchRequest> {
        let now = host.now_nanos();
        self.plugin(root)?.tick(now, host)
    }

    /// The host made the OpenAPI call `root`'s tick asked for (`Ok`, with its token) or could
    /// not (`Err`). The answer goes to the configuration that asked, even if it was replaced
    /// in between.
    pub fn openapi_dispatched(&mut self, root: u32, token: Result<u32, ()>, host: &impl Host) {
        let Some(c) = self.configurations.iter_mut().find(|c| c.root == root && !c.retired) else { return };
        match (token, &mut c.plugin) {
            (Ok(token), _) => c.call = Some(token),
            (Err(()), Some(plugin)) => plugin.openapi_dispatch_failed(host.now_nanos().unwrap_or(0), host),
            (Err(()), None) => {}
        }
    }

    /// The answer to the call with this token ([`Plugin::openapi_response`]).
    pub fn openapi_response(
        &mut self,
        token: u32,
        (status, body_size): (Option<u16>, usize),
        body: impl std::io::Read,
        host: &impl Host,
    ) {
        let now = host.now_nanos().unwrap_or(0);
        let Some(c) = self.configurations.iter_mut().find(|c| c.call == Some(token)) else { return };
        c.call = None;
        let id = c.id;
        if let Some(plugin) = &mut c.plugin {
            plugin.openapi_response(now, status, body_size, body, host);
        }
        self.drop_if_done(id);
    }

    /// The stream `context` and its configuration's plugin; a stream seen for the first time
    /// joins the newest configuration of its plugin.
    fn stream(&mut self, context: u32, host: &impl Host) -> Option<(&mut StreamRecorder, &mut Configuration)> {
        let (stream, new) = match self.streams.entry(context) {
            Entry::Occupied(known) => (known.into_mut(), false),
            Entry::Vacant(new) => {
                let configuration = configuration_for_new_stream(&self.configurations, host)?;
                (new.insert(Stream { configuration, recorder: StreamRecorder::default() }), true)
            }
        };
        let configuration = self.configurations.iter_mut().find(|c| c.id == stream.configuration)?;
        configuration.streams += usize::from(new);
        Some((&mut stream.recorder, configuration))
    }

    pub fn request_headers(&mut self, context: u32, host: &impl Host) {
        if let Some((recorder, Configuration { plugin: Some(plugin), .. })) = self.stream(context, host) {
            recorder.on_request_headers(plugin, host);
        }
    }

    /// A request body chunk of `len` bytes passed through (never buffered).
    pub fn request_body(&mut self, context: u32, len: usize) {
        if let Some(stream) = self.streams.get_mut(&context) {
            stream.recorder.on_request_body(len);
        }
    }

    pub fn response_body(&mut self, context: u32, len: usize) {
        if let Some(stream) = self.streams.get_mut(&context) {
            stream.recorder.on_response_body(len);
        }
    }

    /// The stream is complete. A stream first seen here (a local reply of an earlier filter,
    /// a request the codec refused) is counted too; its state stays until it is deleted, so
    /// a second `on_log` cannot count it again.
    pub fn log(&mut self, context: u32, host: &impl Host) {
        let Some((recorder, Configuration { plugin: Some(plugin), retired, .. })) = self.stream(context, host) else {
            return;
        };
        recorder.on_log(plugin, host);
        // A replaced configuration has no tick: flush now.
        if *retired {
            plugin.flush(host);
        }
    }

    /// A context goes away: a stream, or a root context (its configuration was replaced, or
    /// the VM is stopping: a module update, shutdown). What a root's configuration counted is
    /// flushed, so a reload loses nothing; it stays for streams that started with it.
    pub fn delete(&mut self, context: u32, host: &impl Host) {
        if let Some(stream) = self.streams.remove(&context) {
            let Some(c) = self.configurations.iter_mut().find(|c| c.id == stream.configuration) else { return };
            c.streams = c.streams.saturating_sub(1);
            if c.retired && c.streams == 0 {
                self.drop_if_done(stream.configuration);
            }
        } else {
            self.retire(context, host);
        }
    }

    /// Retires the live configuration of `root`, if any: it flushes and stops.
    fn retire(&mut self, root: u32, host: &impl Host) {
        let Some(c) = self.configurations.iter_mut().find(|c| c.root == root && !c.retired) else { return };
        if let Some(plugin) = &mut c.plugin {
            plugin.stop(host);
        }
        c.retired = true;
        let id = c.id;
        self.drop_if_done(id);
    }

    /// Drops a retired configuration once no stream started with it is left and no answer
    /// is awaited.
    fn drop_if_done(&mut self, id: u64) {
        self.configurations.retain(|c| !(c.id == id && c.retired && c.streams == 0 && c.call.is_none()));
    }

    /// Streams whose raised in-flight gauge is not lowered yet.
    pub fn streams_holding_gauge(&self) -> usize {
        self.streams.values().filter(|s| s.recorder.holds_gauge()).count()
    }

    /// Whether the filter holds the stream `context` (a glue that numbers streams itself
    /// must not reuse an id still held).
    pub fn has_stream(&self, context: u32) -> bool {
        self.streams.contains_key(&context)
    }

    /// Whether the stream `context` has started a request and not ended it.
    pub fn is_recording(&self, context: u32) -> bool {
        self.streams.get(&context).is_some_and(|s| s.recorder.is_recording())
    }
}

#[cfg(test)]
mod tests;

//! The proxy-wasm glue: Envoy's callbacks in, the core's traits out. Nothing here decides
//! what to record; it forwards callbacks to [`StreamRecorder`] and implements the host
//! traits with [`abi`] calls. Built only for `wasm32`.

mod abi;
mod logger;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, Property, SharedStore, StreamHost};
use crate::plugin::{self, Plugin};
use crate::stream::StreamRecorder;



proxy_wasm::main! {{
    logger::install();
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RootFilter { plugin: None }) });
}}

/// The host, reached through the proxy-wasm ABI.
struct HostCalls;

impl MetricsHost for HostCalls {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        abi::define_metric(kind, name)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        abi::increment_metric(id, delta)
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        abi::record_metric(id, value)
    }
}

impl StreamHost for HostCalls {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        abi::request_header(name)
    }
    fn property(&self, property: Property) -> Option<Vec<u8>> {
        // Serialised property paths: parts joined by NUL. Envoy >= 1.33 spells them this way.
        abi::property(match property {
            Property::ResponseCode => b"response\0code",
            Property::RouteName => b"xds\0route_name",
            Property::RequestDuration => b"request\0duration",
            Property::ResponseSize => b"response\0size",
        })
    }
    fn now_nanos(&self) -> Option<u64> {
        abi::now_nanos()
    }
}

impl SharedStore for HostCalls {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        abi::get_shared_data(key)
    }
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        abi::set_shared_data(key, value, cas)
    }
}

struct RootFilter {
    /// `None` until a configuration is accepted; streams then pass through unrecorded.
    plugin: Option<Rc<RefCell<Plugin>>>,
}

impl Context for RootFilter {
    /// The VM is going away (reconfiguration, module update, shutdown): flush, so a reload
    /// loses nothing.
    fn on_done(&mut self) -> bool {
        if let Some(plugin) = &self.plugin {
            if let Ok(mut plugin) = plugin.try_borrow_mut() {
                plugin.flush(&HostCalls);
            }
        }
        true
    }

    fn on_http_call_response(&mut self, _token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let Some(plugin) = &self.plugin else { return };
        let Ok(mut plugin) = plugin.try_borrow_mut() else { return };
        let now = abi::now_nanos().unwrap_or(0);
        // Absent on a timeout or reset (Envoy then passes no headers).
        let status = abi::http_call_response_header(":status")
            .and_then(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse::<u16>().ok()));
        plugin.openapi_response(now, status, body_size, || abi::http_call_response_body(body_size), &HostCalls);
    }
}

impl RootContext for RootFilter {
    fn on_tick(&mut self) {
        let Some(plugin) = self.plugin.clone() else { return };
        let Ok(mut plugin) = plugin.try_borrow_mut() else { return };
        let now = abi::now_nanos();
        let Some(fetch) = plugin.tick(now, &HostCalls) else { return };
        let headers = vec![(":method", "GET"), (":path", fetch.path.as_str()), (":authority", fetch.authority.as_str())];
        // The SDK's call registers the token so the answer reaches on_http_call_response. It
        // panics only on statuses Envoy's httpCall never returns (it answers Ok, BadArgument
        // for an unknown cluster or missing header, InternalFailure).
        let dispatched =
            self.dispatch_http_call(&fetch.cluster, headers, None, vec![], Duration::from_millis(fetch.timeout_ms));
        if let Err(status) = dispatched {
            log::warn!("openapi: cannot call cluster {:?} ({status:?})", fetch.cluster);
            plugin.openapi_dispatch_failed(now.unwrap_or(0), &HostCalls);
        }
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = match abi::plugin_configuration(plugin_configuration_size) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(HostError(status)) => {
                log::error!("cannot read the plugin configuration (host status {status}); routemeter records nothing");
                return true;
            }
        };
        match plugin::configure(&bytes, &HostCalls) {
            Ok(plugin) => {
                // The learned routes' shared value is created by the first learning write,
                // CAS-checked like every other (route/shared.rs); nothing to prepare here.
                log::info!("configured: {}", plugin.describe());
                // The tick flushes what the VM counted, refreshes learned routes, runs the
                // OpenAPI schedule.
                let period = plugin.tick_period_ms() as u32;
                self.plugin = Some(Rc::new(RefCell::new(plugin)));
                if let Err(HostError(status)) = abi::set_tick_period_ms(period) {
                    log::error!("no tick (host status {status}): counts cannot reach Envoy's stats");
                }
            }
            Err(e) => {
                // Not `return false`: Envoy would refuse its whole bootstrap (measured on 1.40,
                // with FAIL_OPEN too). Stay loaded, record nothing, say why.
                log::error!("invalid plugin configuration: {e}; routemeter records nothing until it is fixed");
                self.plugin = None;
            }
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: the SDK panics on None. Without a plugin the stream is just not recorded.
        Some(Box::new(HttpStream { plugin: self.plugin.clone(), recorder: StreamRecorder::default() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct HttpStream {
    plugin: Option<Rc<RefCell<Plugin>>>,
    recorder: StreamRecorder,
}

impl HttpStream {
    fn with_plugin(&mut self, f: impl FnOnce(&mut StreamRecorder, &mut Plugin)) {
        if let Some(plugin) = &self.plugin {
            if let Ok(mut plugin) = plugin.try_borrow_mut() {
                f(&mut self.recorder, &mut plugin);
            }
        }
    }
}

impl Context for HttpStream {}

impl HttpContext for HttpStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.with_plugin(|rec, plugin| rec.on_request_headers(plugin, &HostCalls));
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        self.recorder.on_request_body(body_size);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        self.recorder.on_response_body(body_size);
        Action::Continue
    }

    fn on_log(&mut self) {
        self.with_plugin(|rec, plugin| rec.on_log(plugin, &HostCalls));
    }
}

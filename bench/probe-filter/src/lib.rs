//! A filter that makes exactly the host calls its configuration lists and nothing else, so
//! the price of one kind of call is the difference between two listeners that differ only
//! by it. `make bench` uses it for the floor (what reading method, path and status costs any
//! filter) and for its table of host-call prices. Never shipped.
//!
//! Configuration: `phase:op,op,...;phase:...` with phases `req` (request headers), `resp`
//! (response headers) and `log`, and the ops named in [`Op::named`]. An unknown or repeated
//! phase or an unknown op fails `on_configure`, so a typo cannot price the wrong thing.

/// The CEL expression priced by `expr`: the three facts a request counter needs, in one
/// call (Envoy's `expr_evaluate` foreign function).
pub const EXPRESSION: &str =
    r#"request.method + " " + request.path + " " + (has(response.code) ? string(response.code) : "0")"#;

/// One host call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    RequestHeader(&'static str),
    /// All request headers in one call (`proxy_get_header_map_pairs`).
    RequestHeaders,
    ResponseHeader(&'static str),
    Property(&'static [&'static str]),
    Clock,
    Counter,
    Histogram,
    Expression,
}

impl Op {
    fn named(name: &str) -> Option<Op> {
        Some(match name {
            "method" => Op::RequestHeader(":method"),
            "path" => Op::RequestHeader(":path"),
            "pairs" => Op::RequestHeaders,
            "status" => Op::ResponseHeader(":status"),
            "code" => Op::Property(&["response", "code"]),
            "duration" => Op::Property(&["request", "duration"]),
            "clock" => Op::Clock,
            "counter" => Op::Counter,
            "histogram" => Op::Histogram,
            "expr" => Op::Expression,
            _ => return None,
        })
    }
}

/// The calls to make in each callback.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub request: Vec<Op>,
    pub response: Vec<Op>,
    pub log: Vec<Op>,
}

impl Plan {
    pub fn parse(config: &str) -> Result<Plan, String> {
        let mut plan = Plan::default();
        for part in config.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (phase, ops) = part.split_once(':').ok_or_else(|| format!("{part:?}: expected phase:ops"))?;
            let ops = ops
                .split(',')
                .map(|o| Op::named(o.trim()).ok_or_else(|| format!("unknown op {o:?}")))
                .collect::<Result<Vec<Op>, String>>()?;
            let slot = match phase.trim() {
                "req" => &mut plan.request,
                "resp" => &mut plan.response,
                "log" => &mut plan.log,
                other => return Err(format!("unknown phase {other:?}")),
            };
            if !slot.is_empty() {
                return Err(format!("phase {:?} given twice", phase.trim()));
            }
            *slot = ops;
        }
        Ok(plan)
    }

    pub fn uses(&self, op: Op) -> bool {
        self.request.iter().chain(&self.response).chain(&self.log).any(|o| *o == op)
    }
}

#[cfg(test)]
mod tests {
    use super::{Op, Plan};

    #[test]
    fn parses_phases_and_ops() {
        let plan = Plan::parse("req:method,path; log:code,clock").unwrap();
        assert_eq!(plan.request, [Op::RequestHeader(":method"), Op::RequestHeader(":path")]);
        assert_eq!(plan.response, []);
        assert_eq!(plan.log, [Op::Property(&["response", "code"]), Op::Clock]);
        assert_eq!(Plan::parse("").unwrap(), Plan::default());
        assert!(!plan.uses(Op::Expression));
        assert!(Plan::parse("log:expr").unwrap().uses(Op::Expression));
    }

    #[test]
    fn rejects_what_it_cannot_price() {
        assert_eq!(Plan::parse("req:paht").unwrap_err(), "unknown op \"paht\"");
        assert_eq!(Plan::parse("body:clock").unwrap_err(), "unknown phase \"body\"");
        assert_eq!(Plan::parse("clock").unwrap_err(), "\"clock\": expected phase:ops");
        assert_eq!(Plan::parse("req:method;req:path").unwrap_err(), "phase \"req\" given twice");
    }
}

#[cfg(target_arch = "wasm32")]
mod filter {
    use std::rc::Rc;

    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

    use crate::{Op, Plan, EXPRESSION};

    /// A plan and the host handles its ops use.
    #[derive(Default)]
    struct Calls {
        plan: Plan,
        counter: u32,
        histogram: u32,
        expression: u32,
    }

    impl Calls {
        fn run(&self, ops: &[Op]) {
            for op in ops {
                // Results are dropped on purpose: only the call's cost matters here.
                let _ = match *op {
                    Op::RequestHeader(name) => hostcalls::get_map_value(MapType::HttpRequestHeaders, name).map(drop),
                    Op::RequestHeaders => hostcalls::get_map(MapType::HttpRequestHeaders).map(drop),
                    Op::ResponseHeader(name) => hostcalls::get_map_value(MapType::HttpResponseHeaders, name).map(drop),
                    Op::Property(path) => hostcalls::get_property(path.to_vec()).map(drop),
                    Op::Clock => hostcalls::get_current_time().map(drop),
                    Op::Counter => hostcalls::increment_metric(self.counter, 1),
                    Op::Histogram => hostcalls::record_metric(self.histogram, 7),
                    Op::Expression => {
                        hostcalls::call_foreign_function("expr_evaluate", Some(&self.expression.to_le_bytes()))
                            .map(drop)
                    }
                };
            }
        }
    }

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { calls: Rc::default() }) });
    }}

    struct Root {
        calls: Rc<Calls>,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, _size: usize) -> bool {
            let config = self.get_plugin_configuration().unwrap_or_default();
            let plan = match Plan::parse(&String::from_utf8_lossy(&config)) {
                Ok(plan) => plan,
                Err(e) => {
                    let _ = hostcalls::log(LogLevel::Error, &format!("probe: {e}"));
                    return false;
                }
            };
            let mut calls = Calls {
                counter: hostcalls::define_metric(MetricType::Counter, "probe_counter").unwrap_or(0),
                histogram: hostcalls::define_metric(MetricType::Histogram, "probe_histogram").unwrap_or(0),
                ..Calls::default()
            };
            if plan.uses(Op::Expression) {
                let token = hostcalls::call_foreign_function("expr_create", Some(EXPRESSION.as_bytes()));
                match token.ok().flatten().and_then(|t| <[u8; 4]>::try_from(t.as_slice()).ok()) {
                    Some(token) => calls.expression = u32::from_le_bytes(token),
                    None => {
                        let _ = hostcalls::log(LogLevel::Error, "probe: expr_create failed");
                        return false;
                    }
                }
            }
            calls.plan = plan;
            self.calls = Rc::new(calls);
            true
        }

        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Stream { calls: self.calls.clone() }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Stream {
        calls: Rc<Calls>,
    }

    impl Context for Stream {}

    impl HttpContext for Stream {
        fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
            self.calls.run(&self.calls.plan.request);
            Action::Continue
        }

        fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
            self.calls.run(&self.calls.plan.response);
            Action::Continue
        }

        fn on_log(&mut self) {
            self.calls.run(&self.calls.plan.log);
        }
    }
}

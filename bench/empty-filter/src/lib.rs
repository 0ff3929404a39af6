//! The cost any proxy-wasm filter pays: a root context and an HTTP context per stream that
//! do nothing. Built with the same release profile as routemeter, so `make bench` compares
//! routemeter's added cost with the cost of merely being a Wasm filter.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::ContextType;

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
    }}

    struct Root;

    impl Context for Root {}

    impl RootContext for Root {
        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Stream))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Stream;

    impl Context for Stream {}

    impl HttpContext for Stream {}
}

//! `dual_host!(scenario, ...)`: each behavioural scenario, an ordinary function
//! `fn scenario<H: Host>(host: &H)`, becomes three tests in a module of its name: `native`
//! (the Rust core linked into the test), `wasm` (the compiled module under wasmtime) and
//! `same_series` (both, every series and the number of `define_metric` calls compared: a
//! difference is a bug in one of them).

#[macro_export]
macro_rules! dual_host {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::native::NativeHost;
            use $crate::proxy_sim::{Host, WasmHost};

            #[test]
            fn native() {
                super::$name(&NativeHost::new());
            }

            #[test]
            fn wasm() {
                super::$name(&WasmHost::new());
            }

            #[test]
            fn same_series() {
                let (native, wasm) = (NativeHost::new(), WasmHost::new());
                super::$name(&native);
                super::$name(&wasm);
                assert_eq!(native.envoy().series(), wasm.envoy().series());
                assert_eq!(native.envoy().define_calls(), wasm.envoy().define_calls(), "define_metric calls");
            }
        }
    )*};
}

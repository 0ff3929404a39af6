//! `both_builds!(scenario, ...)`: an end-to-end scenario `fn scenario(build: Build)` runs
//! through a real Envoy once with the Wasm filter and once with the native module, as two
//! tests (`scenario::wasm_build`, `scenario::native_build`). One scenario, one parameter.

#[macro_export]
macro_rules! both_builds {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn wasm_build() {
                super::$name($crate::Build::Wasm);
            }

            #[test]
            fn native_build() {
                super::$name($crate::Build::Native);
            }
        }
    )*};
}

//! Keeps the module loaded for the life of the process. Envoy closes a module (`dlclose`)
//! when its last configuration goes unless `do_not_close` is set, and this module has a
//! thread of its own ([`super::ticker`]) that must never find its code unmapped. The module
//! opens itself once more with `RTLD_NODELETE` (glibc), which makes any later close a no-op.

use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
struct DlInfo {
    fname: *const c_char,
    base: *mut c_void,
    sname: *const c_char,
    saddr: *mut c_void,
}

extern "C" {
    fn dladdr(address: *const c_void, info: *mut DlInfo) -> c_int;
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
}

const RTLD_NOW: c_int = 0x2;
const RTLD_NOLOAD: c_int = 0x4;
const RTLD_NODELETE: c_int = 0x1000;

pub fn in_memory() {
    let mut info = DlInfo {
        fname: std::ptr::null(),
        base: std::ptr::null_mut(),
        sname: std::ptr::null(),
        saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr fills `info` for an address of this module (this function); the name it
    // returns lives as long as the module, and dlopen only reads it.
    let pinned = unsafe {
        dladdr(in_memory as *const c_void, &mut info) != 0
            && !info.fname.is_null()
            && !dlopen(info.fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE).is_null()
    };
    if !pinned {
        log::warn!("cannot pin the module in memory: set do_not_close on its dynamic_module_config");
    }
}

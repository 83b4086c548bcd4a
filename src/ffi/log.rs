//! The log sink over a `xentoollog_logger *`.

use std::ffi::{c_char, c_int, CString};

use super::types::xentoollog_logger;
use super::SendPtr;
use crate::log::{Level, Logger, Sink};

extern "C" {
    fn libxl__rs_log(lg: *mut xentoollog_logger, level: c_int, errnoval: c_int, msg: *const c_char);
}

/// A logger writing to `lg` (none if `lg` is NULL). The minimum level comes
/// from `LIBXL_LOG_MIN_LEVEL` (a number, xentoollog's levels; default 1,
/// everything, as libxl does): below it nothing is even formatted.
pub fn logger_for(lg: *mut xentoollog_logger) -> Logger {
    let min = std::env::var("LIBXL_LOG_MIN_LEVEL")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Level::Debug, level_from_i32);
    if lg.is_null() {
        return Logger::new(None, Level::Critical);
    }
    let lg = SendPtr(lg);
    let sink: Sink = Box::new(move |level, errnoval, msg| {
        let c = CString::new(msg.replace('\0', "\\0")).expect("NULs were replaced");
        // SAFETY: `lg` is the logger the application passed to
        // libxl_ctx_alloc, which must outlive the ctx; `c` is a valid
        // NUL-terminated string for the duration of the call.
        unsafe { libxl__rs_log(lg.get(), level as c_int, errnoval, c.as_ptr()) }
    });
    Logger::new(Some(sink), min)
}

fn level_from_i32(v: i32) -> Level {
    match v {
        i32::MIN..=1 => Level::Debug,
        2 => Level::Verbose,
        3 => Level::Detail,
        4 => Level::Progress,
        5 => Level::Info,
        6 => Level::Notice,
        7 => Level::Warn,
        8 => Level::Error,
        _ => Level::Critical,
    }
}

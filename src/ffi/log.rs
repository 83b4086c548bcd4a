//! The log sink over a `xentoollog_logger *`.
//!
//! Messages are formatted into a per-thread buffer (no allocation once it
//! has grown) and handed to the logger's `vmessage` by a small C shim. When
//! the logger is this project's own stdio logger, libxentoollog can tell
//! us its current minimum level (`xtl__rs_wants_level`, looked up at run
//! time), and messages it would drop are not formatted at all; with any
//! other logger (an application's own, or Debian's libxentoollog) every
//! message is delivered, as libxl does.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::io::Write;

use super::types::xentoollog_logger;
use super::SendPtr;
use crate::log::{Level, Logger, Probe, Sink};

extern "C" {
    fn libxl__rs_log(lg: *mut xentoollog_logger, level: c_int, errnoval: c_int, msg: *const c_char);
}

type WantsLevel = unsafe extern "C" fn(lg: *mut xentoollog_logger, level: c_int) -> c_int;

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `xtl__rs_wants_level` from our libxentoollog, if it is loaded.
fn wants_level_fn() -> Option<WantsLevel> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no
    // preconditions.
    let p: *mut c_void = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"xtl__rs_wants_level".as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-NULL result is the address of libxentoollog's function
    // of that name, whose C signature is `WantsLevel`.
    Some(unsafe { std::mem::transmute::<*mut c_void, WantsLevel>(p) })
}

/// A logger writing to `lg` (none if `lg` is NULL). `LIBXL_LOG_MIN_LEVEL`
/// (a xentoollog level number) additionally skips everything below it.
pub fn logger_for(lg: *mut xentoollog_logger) -> Logger {
    let min = std::env::var("LIBXL_LOG_MIN_LEVEL")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Level::Debug, level_from_i32);
    if lg.is_null() {
        return Logger::new(None, Level::Critical);
    }
    let lg = SendPtr(lg);
    let sink: Sink = Box::new(move |level, errnoval, args| {
        let emit = |b: &mut Vec<u8>| {
            b.clear();
            let _ = b.write_fmt(args);
            for c in b.iter_mut() {
                if *c == 0 {
                    *c = b'?';
                }
            }
            b.push(0);
            // SAFETY: `lg` is the logger the application passed to
            // libxl_ctx_alloc, which must outlive the ctx; the buffer is
            // NUL-terminated and lives for the duration of the call.
            unsafe { libxl__rs_log(lg.get(), level as c_int, errnoval, b.as_ptr().cast()) }
        };
        // This thread's buffer, or (while its thread-locals are being
        // destroyed: a ctx freed from an exit handler) a fresh one.
        if BUF.try_with(|b| emit(&mut b.borrow_mut())).is_err() {
            emit(&mut Vec::new());
        }
    });
    let probe: Option<Probe> = wants_level_fn().map(|f| -> Probe {
        // SAFETY: `f` is libxentoollog's query, given the application's
        // live logger and a level number.
        Box::new(move |level| unsafe { f(lg.get(), level as c_int) != 0 })
    });
    Logger::new(Some(sink), min).with_probe(probe)
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

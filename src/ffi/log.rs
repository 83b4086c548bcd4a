//! The log sink over a `xentoollog_logger *`.
//!
//! Messages are formatted into a per-thread buffer (no allocation once it
//! has grown) and handed to the logger's `vmessage` by a small C shim. When
//! the logger is this project's own stdio logger, libxentoollog can tell
//! us its current minimum level (`xtl__rs_wants_level`, looked up at run
//! time), and messages it would drop are not formatted at all. Xen's own
//! libxentoollog (the one Xen's libxl, and the full library of
//! `make xen`, runs with) has no such query, but its stdio logger keeps its
//! minimum level where ours does (after the vtable and the `FILE *`):
//! once per process a throwaway stdio logger of the loaded libxentoollog is
//! made and its level moved, and only if that field follows does a stdio
//! logger of that library get the same treatment ([`StdioShape`]). With any
//! other logger (an application's own) every message is delivered, as
//! libxl does.

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

/// How the loaded libxentoollog's stdio loggers look: their `vmessage`,
/// and the offset of their minimum level (checked at run time).
#[derive(Clone, Copy)]
struct StdioShape {
    vmessage: usize,
    min_level_at: usize,
}

/// Where `struct xentoollog_logger_stdiostream` keeps `min_level`, in Xen's
/// libxentoollog and in ours: after the three-pointer vtable and `FILE *f`.
const STDIO_MIN_LEVEL_AT: usize = 4 * std::mem::size_of::<*mut c_void>();

type CreateStdio = unsafe extern "C" fn(f: *mut libc::FILE, min_level: c_int, flags: std::ffi::c_uint) -> *mut xentoollog_logger;
type SetMinLevel = unsafe extern "C" fn(lg: *mut xentoollog_logger, min_level: c_int);
type Destroy = unsafe extern "C" fn(lg: *mut xentoollog_logger);

/// Looks a function of the loaded libxentoollog up by name.
fn xtl_fn(name: &std::ffi::CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no
    // preconditions.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// The loaded libxentoollog's stdio logger shape, if its minimum level is
/// where we expect: a throwaway logger made at one level, moved to
/// another, must show both in that field.
fn stdio_shape() -> Option<StdioShape> {
    static SHAPE: std::sync::OnceLock<Option<StdioShape>> = std::sync::OnceLock::new();
    *SHAPE.get_or_init(|| {
        let (create, set, destroy) = (
            xtl_fn(c"xtl_createlogger_stdiostream")?,
            xtl_fn(c"xtl_stdiostream_set_minlevel")?,
            xtl_fn(c"xtl_logger_destroy")?,
        );
        // SAFETY: non-NULL addresses of libxentoollog's functions of these
        // names, whose C signatures (xentoollog.h) are the types given.
        let (create, set, destroy) = unsafe {
            (
                std::mem::transmute::<*mut c_void, CreateStdio>(create),
                std::mem::transmute::<*mut c_void, SetMinLevel>(set),
                std::mem::transmute::<*mut c_void, Destroy>(destroy),
            )
        };
        // SAFETY: a stdio logger on a stream opened here; it never writes
        // (nothing is logged to it) and is destroyed below.
        let null = unsafe { libc::fopen(c"/dev/null".as_ptr(), c"w".as_ptr()) };
        if null.is_null() {
            return None;
        }
        // SAFETY: as above.
        let t = unsafe { create(null, Level::Notice as c_int, 0) };
        let read = |t: *mut xentoollog_logger| {
            // SAFETY: `t` is a live stdio logger of this library, at least
            // as large as its vtable, FILE * and level; read only.
            unsafe { t.cast::<u8>().add(STDIO_MIN_LEVEL_AT).cast::<c_int>().read_unaligned() }
        };
        let shape = if t.is_null() {
            None
        } else {
            let first = read(t);
            // SAFETY: the logger made above.
            unsafe { set(t, Level::Verbose as c_int) };
            let second = read(t);
            // SAFETY: a live logger: its vtable's first entry.
            let vmessage = unsafe { (*t).vmessage } as usize;
            // SAFETY: the logger made above, destroyed once.
            unsafe { destroy(t) };
            (first == Level::Notice as c_int && second == Level::Verbose as c_int)
                .then_some(StdioShape { vmessage, min_level_at: STDIO_MIN_LEVEL_AT })
        };
        // SAFETY: the stream opened above, closed once.
        unsafe { libc::fclose(null) };
        shape
    })
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
    let probe: Option<Probe> = match wants_level_fn() {
        Some(f) => Some(Box::new(move |level| {
            // SAFETY: `f` is libxentoollog's query, given the application's
            // live logger and a level number.
            unsafe { f(lg.get(), level as c_int) != 0 }
        })),
        // SAFETY: `lg` is the application's live logger (its vtable first).
        None => stdio_shape().filter(|s| unsafe { (*lg.get()).vmessage } as usize == s.vmessage).map(|s| -> Probe {
            Box::new(move |level| {
                // SAFETY: `lg` is a stdio logger of the loaded
                // libxentoollog (same vmessage), whose level field was
                // found at this offset; it lives as long as the ctx.
                let min = unsafe { lg.get().cast::<u8>().add(s.min_level_at).cast::<c_int>().read_volatile() };
                level as c_int >= min
            })
        }),
    };
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

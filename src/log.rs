//! Logging through the application's xentoollog logger.
//!
//! The core formats nothing itself: call sites pass `fmt::Arguments`, and the
//! sink (set by `src/ffi` from the `xentoollog_logger *` given to
//! `libxl_ctx_alloc`) decides. Levels are xentoollog's, numerically equal.
//! A ctx without a logger drops everything except CRITICAL, which goes to
//! stderr so a fatal misuse is never silent.
#![forbid(unsafe_code)]

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    Debug = 1,
    Verbose = 2,
    Detail = 3,
    Progress = 4,
    Info = 5,
    Notice = 6,
    Warn = 7,
    Error = 8,
    Critical = 9,
}

/// Where messages go: `(level, errno or -1, message)`. The sink formats.
pub type Sink = Box<dyn Fn(Level, i32, fmt::Arguments<'_>) + Send + Sync>;

/// Asks the sink whether it wants a level right now (its minimum may
/// change at any time).
pub type Probe = Box<dyn Fn(Level) -> bool + Send + Sync>;

pub struct Logger {
    sink: Option<Sink>,
    /// Messages below this level are not even formatted.
    min: Level,
    probe: Option<Probe>,
}

impl Logger {
    pub fn new(sink: Option<Sink>, min: Level) -> Logger {
        Logger { sink, min, probe: None }
    }

    pub fn with_probe(mut self, probe: Option<Probe>) -> Logger {
        self.probe = probe;
        self
    }

    pub fn enabled(&self, level: Level) -> bool {
        if level < self.min {
            return false;
        }
        match (&self.sink, &self.probe) {
            (None, _) => level == Level::Critical,
            (Some(_), Some(p)) => p(level),
            (Some(_), None) => true,
        }
    }

    pub fn log(&self, level: Level, errnoval: i32, args: fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        match &self.sink {
            Some(sink) => sink(level, errnoval, args),
            None => eprintln!("libxl: critical: {args}"),
        }
    }
}

/// Runs a log site's formatting out of line, so the hot code around a
/// (usually disabled) log site stays dense in the instruction cache.
#[cold]
#[inline(never)]
pub fn out_of_line(f: impl FnOnce()) {
    f()
}

/// `xl_log!(ctx, Debug, "ao {}: create", ao)`: log through a ctx's logger.
#[macro_export]
macro_rules! xl_log {
    ($ctx:expr, $lvl:ident, $($arg:tt)+) => {{
        let ctx = $ctx;
        if ctx.logger.enabled($crate::log::Level::$lvl) {
            $crate::log::out_of_line(|| ctx.logger.log($crate::log::Level::$lvl, -1, format_args!($($arg)+)));
        }
    }};
}

/// Like `xl_log!` with an errno value.
#[macro_export]
macro_rules! xl_log_errno {
    ($ctx:expr, $lvl:ident, $errno:expr, $($arg:tt)+) => {{
        let ctx = $ctx;
        if ctx.logger.enabled($crate::log::Level::$lvl) {
            $crate::log::out_of_line(|| ctx.logger.log($crate::log::Level::$lvl, $errno, format_args!($($arg)+)));
        }
    }};
}

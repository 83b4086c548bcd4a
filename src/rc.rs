//! libxl's return codes (`libxl_error` in `libxl.h`): 0 is success, every
//! failure is a negative `ERROR_*`. We call such a value `rc`, as libxl
//! does; raw system-call results are `r`.
#![forbid(unsafe_code)]

pub type Rc = i32;

pub const ERROR_NONSPECIFIC: Rc = -1;
pub const ERROR_VERSION: Rc = -2;
pub const ERROR_FAIL: Rc = -3;
pub const ERROR_NI: Rc = -4;
pub const ERROR_NOMEM: Rc = -5;
pub const ERROR_INVAL: Rc = -6;
pub const ERROR_BADFAIL: Rc = -7;
pub const ERROR_GUEST_TIMEDOUT: Rc = -8;
pub const ERROR_TIMEDOUT: Rc = -9;
pub const ERROR_NOPARAVIRT: Rc = -10;
pub const ERROR_NOT_READY: Rc = -11;
pub const ERROR_OSEVENT_REG_FAIL: Rc = -12;
pub const ERROR_BUFFERFULL: Rc = -13;
pub const ERROR_UNKNOWN_CHILD: Rc = -14;
pub const ERROR_LOCK_FAIL: Rc = -15;
pub const ERROR_ABORTED: Rc = -22;
pub const ERROR_NOTFOUND: Rc = -23;
pub const ERROR_DOMAIN_DESTROYED: Rc = -24;

/// A short name for log lines.
pub fn name(rc: Rc) -> &'static str {
    match rc {
        0 => "ok",
        ERROR_NONSPECIFIC => "ERROR_NONSPECIFIC",
        ERROR_VERSION => "ERROR_VERSION",
        ERROR_FAIL => "ERROR_FAIL",
        ERROR_NI => "ERROR_NI",
        ERROR_NOMEM => "ERROR_NOMEM",
        ERROR_INVAL => "ERROR_INVAL",
        ERROR_TIMEDOUT => "ERROR_TIMEDOUT",
        ERROR_NOT_READY => "ERROR_NOT_READY",
        ERROR_OSEVENT_REG_FAIL => "ERROR_OSEVENT_REG_FAIL",
        ERROR_BUFFERFULL => "ERROR_BUFFERFULL",
        ERROR_UNKNOWN_CHILD => "ERROR_UNKNOWN_CHILD",
        ERROR_ABORTED => "ERROR_ABORTED",
        ERROR_NOTFOUND => "ERROR_NOTFOUND",
        ERROR_DOMAIN_DESTROYED => "ERROR_DOMAIN_DESTROYED",
        _ => "ERROR_(other)",
    }
}

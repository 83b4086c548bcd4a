/*
 * Calls a xentoollog logger's vmessage from Rust, which cannot build a
 * va_list itself. Internal to libxenlight (not exported).
 */
#include <errno.h>
#include <stdarg.h>
#include <xentoollog.h>

static void call_vmessage(xentoollog_logger *lg, xentoollog_level level,
                          int errnoval, const char *context,
                          const char *fmt, ...)
{
    va_list al;
    va_start(al, fmt);
    lg->vmessage(lg, level, errnoval, context, fmt, al);
    va_end(al);
}

void libxl__rs_log(xentoollog_logger *lg, int level, int errnoval,
                   const char *msg)
{
    int saved = errno;
    if (lg && lg->vmessage)
        call_vmessage(lg, (xentoollog_level)level, errnoval, "libxl", "%s", msg);
    errno = saved;
}

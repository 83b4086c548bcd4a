/*
 * xentoollog.c - libxentoollog: logger dispatch plus the stdio logger.
 *
 * Built as libxentoollog.so.1; only the xtl_* functions are exported
 * (see xentoollog.map).
 */
#define _GNU_SOURCE  /* GNU strerror_r returning char* */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xentoollog.h"

/*---------- generic dispatch ----------*/

static const char *const level_names[XTL_NUM_LEVELS] = {
    [XTL_NONE]     = "[BUG:XTL_NONE]",
    [XTL_DEBUG]    = "debug",
    [XTL_VERBOSE]  = "verbose",
    [XTL_DETAIL]   = "detail",
    [XTL_PROGRESS] = "progress",
    [XTL_INFO]     = "info",
    [XTL_NOTICE]   = "notice",
    [XTL_WARN]     = "warning",
    [XTL_ERROR]    = "error",
    [XTL_CRITICAL] = "critical",
};

const char *xtl_level_to_string(xentoollog_level level)
{
    if ((int)level < 0 || level >= XTL_NUM_LEVELS)
        return "[BUG:invalid level]";
    return level_names[level];
}

void xtl_logv(struct xentoollog_logger *logger,
              xentoollog_level level,
              int errnoval,
              const char *context,
              const char *format,
              va_list al)
{
    int saved_errno = errno;

    /* Out-of-range levels are a caller bug; drop them rather than
     * hand a logger something it cannot render. */
    if (logger && logger->vmessage &&
        level > XTL_NONE && level < XTL_NUM_LEVELS)
        logger->vmessage(logger, level, errnoval, context, format, al);

    errno = saved_errno;
}

void xtl_log(struct xentoollog_logger *logger,
             xentoollog_level level,
             int errnoval,
             const char *context,
             const char *format, ...)
{
    va_list al;

    va_start(al, format);
    xtl_logv(logger, level, errnoval, context, format, al);
    va_end(al);
}

void xtl_progress(struct xentoollog_logger *logger,
                  const char *context,
                  const char *doing_what,
                  unsigned long done, unsigned long total)
{
    int saved_errno = errno;
    int percent;

    if (!logger || !logger->progress)
        return;

    if (total == 0)
        percent = done ? 100 : 0;
    else if (done >= total)
        percent = 100;
    else
        percent = (int)((double)done * 100.0 / (double)total);

    logger->progress(logger, context, doing_what, percent, done, total);
    errno = saved_errno;
}

void xtl_logger_destroy(struct xentoollog_logger *logger)
{
    int saved_errno = errno;

    if (logger && logger->destroy)
        logger->destroy(logger);
    errno = saved_errno;
}

/*---------- stdio logger ----------*/

struct xentoollog_logger_stdiostream {
    xentoollog_logger vtable;      /* must be first */
    FILE *f;                       /* borrowed, never closed */
    xentoollog_level min_level;
    unsigned flags;
    int last_percent;              /* -1: nothing shown for activity */
    int inplace_len;               /* width of a CR-drawn progress line
                                    * still on the terminal, else 0 */
};

/* Blank out an unfinished in-place progress line.  f must be locked. */
static void stdiostream_clear_inplace(xentoollog_logger_stdiostream *s)
{
    if (s->inplace_len > 0) {
        fprintf(s->f, "\r%*s\r", s->inplace_len, "");
        s->inplace_len = 0;
    }
}

/* Date/pid prefix common to every line.  f must be locked. */
static int stdiostream_prefix(xentoollog_logger_stdiostream *s)
{
    int n = 0;

    if (s->flags & XTL_STDIOSTREAM_SHOW_DATE) {
        char buf[64];
        time_t now = time(NULL);
        struct tm tm;

        if (localtime_r(&now, &tm) &&
            strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %Z ", &tm))
            n += fprintf(s->f, "%s", buf);
    }
    if (s->flags & XTL_STDIOSTREAM_SHOW_PID)
        n += fprintf(s->f, "[%lu] ", (unsigned long)getpid());
    return n;
}

static void stdiostream_vmessage(xentoollog_logger *logger,
                                 xentoollog_level level,
                                 int errnoval,
                                 const char *context,
                                 const char *format,
                                 va_list al)
{
    xentoollog_logger_stdiostream *s = (void *)logger;

    if (level < s->min_level)
        return;

    flockfile(s->f);
    stdiostream_clear_inplace(s);
    stdiostream_prefix(s);
    if (context)
        fprintf(s->f, "%s: ", context);
    fprintf(s->f, "%s: ", xtl_level_to_string(level));
    vfprintf(s->f, format, al);
    if (errnoval >= 0) {
        char ebuf[128];
        fprintf(s->f, ": %s", strerror_r(errnoval, ebuf, sizeof(ebuf)));
    }
    fputc('\n', s->f);
    fflush(s->f);
    funlockfile(s->f);
}

static int stdiostream_use_cr(xentoollog_logger_stdiostream *s)
{
    if (s->flags & XTL_STDIOSTREAM_PROGRESS_USE_CR)
        return 1;
    if (s->flags & XTL_STDIOSTREAM_PROGRESS_NO_CR)
        return 0;
    return isatty(fileno(s->f)) == 1;
}

static void stdiostream_progress(xentoollog_logger *logger,
                                 const char *context,
                                 const char *doing_what,
                                 int percent,
                                 unsigned long done, unsigned long total)
{
    xentoollog_logger_stdiostream *s = (void *)logger;
    int len;

    if ((s->flags & XTL_STDIOSTREAM_HIDE_PROGRESS) ||
        s->min_level > XTL_PROGRESS)
        return;

    /* A report with done == 0 starts a new activity; otherwise only
     * changes of the percentage are worth a line. */
    if (done == 0)
        s->last_percent = -1;
    if (percent == s->last_percent)
        return;
    s->last_percent = percent;

    flockfile(s->f);
    if (stdiostream_use_cr(s)) {
        /* Redraw one terminal line in place; finish it at 100%. */
        fputc('\r', s->f);
        len = stdiostream_prefix(s);
        if (context)
            len += fprintf(s->f, "%s: ", context);
        len += fprintf(s->f, "%s: %lu/%lu  %3d%%",
                       doing_what, done, total, percent);
        if (len < s->inplace_len)
            fprintf(s->f, "%*s", s->inplace_len - len, "");
        if (percent >= 100) {
            fputc('\n', s->f);
            s->inplace_len = 0;
        } else {
            s->inplace_len = len > s->inplace_len ? len : s->inplace_len;
        }
    } else {
        stdiostream_prefix(s);
        if (context)
            fprintf(s->f, "%s: ", context);
        fprintf(s->f, "%s: %s: %lu/%lu  %3d%%\n",
                xtl_level_to_string(XTL_PROGRESS), doing_what,
                done, total, percent);
    }
    fflush(s->f);
    funlockfile(s->f);
}

static void stdiostream_destroy(xentoollog_logger *logger)
{
    xentoollog_logger_stdiostream *s = (void *)logger;

    flockfile(s->f);
    stdiostream_clear_inplace(s);
    fflush(s->f);
    funlockfile(s->f);
    free(s);
}

xentoollog_logger_stdiostream *xtl_createlogger_stdiostream
        (FILE *f, xentoollog_level min_level, unsigned flags)
{
    xentoollog_logger_stdiostream proto;

    memset(&proto, 0, sizeof(proto));
    proto.f = f;
    proto.min_level = min_level;
    proto.flags = flags;
    proto.last_percent = -1;
    proto.inplace_len = 0;

    return XTL_NEW_LOGGER(stdiostream, proto);
}

void xtl_stdiostream_set_minlevel(xentoollog_logger_stdiostream *s,
                                  xentoollog_level min_level)
{
    s->min_level = min_level;
}

void xtl_stdiostream_adjust_flags(xentoollog_logger_stdiostream *s,
                                  unsigned set_flags, unsigned clear_flags)
{
    s->flags = (s->flags & ~clear_flags) | set_flags;
}

/*
 * Not part of Xen's API: lets libxenlight skip formatting a message that
 * this library's stdio logger would drop anyway. Returns 0 only when
 * `logger` is one of our stdio loggers and `level` is below its current
 * minimum; any other logger (an application's own) gets every message.
 */
int xtl__rs_wants_level(struct xentoollog_logger *logger, xentoollog_level level)
{
    if (logger && logger->vmessage == stdiostream_vmessage)
        return level >= ((xentoollog_logger_stdiostream *)logger)->min_level;
    return 1;
}

/*
 * xentoollog.h - message/progress logging interface shared by the Xen
 * toolstack libraries (API/ABI compatible with Xen's libxentoollog).
 *
 * A logger is a small vtable (xentoollog_logger) optionally followed by
 * logger-private state.  Producers call xtl_log/xtl_logv/xtl_progress;
 * consumers implement the three hooks.  One ready-made consumer is
 * provided: a logger writing to a stdio FILE.
 */
#ifndef XENTOOLLOG_H
#define XENTOOLLOG_H

#include <stdio.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/*---------- levels and the logger vtable ----------*/

typedef enum xentoollog_level {
    XTL_NONE,        /* 0: not a real level; never passed to a logger */
    XTL_DEBUG,
    XTL_VERBOSE,
    XTL_DETAIL,
    XTL_PROGRESS,    /* also the level of xtl_progress reports */
    XTL_INFO,
    XTL_NOTICE,
    XTL_WARN,
    XTL_ERROR,
    XTL_CRITICAL,
    XTL_NUM_LEVELS   /* count; not a level */
} xentoollog_level;

typedef struct xentoollog_logger xentoollog_logger;
struct xentoollog_logger {
    void (*vmessage)(struct xentoollog_logger *logger,
                     xentoollog_level level,
                     int errnoval,
                     const char *context,
                     const char *format,
                     va_list al)
         __attribute__((format(printf,5,0)));
    /* errnoval: an errno value to append, or -1 for none.
     * context: short producer tag ("xl", "libxl", ...) or NULL.
     * format: printf format of the message body; no level, no context,
     * no trailing newline. */

    void (*progress)(struct xentoollog_logger *logger,
                     const char *context,
                     const char *doing_what,
                     int percent, unsigned long done, unsigned long total);
    /* May be NULL (progress reports are then dropped).  doing_what
     * contains no CR/LF.  A new activity always begins with done==0. */

    void (*destroy)(struct xentoollog_logger *logger);
    /* Frees the logger.  Called via xtl_logger_destroy only. */

    /* A concrete logger places its private state after these fields. */
};

/*---------- the stdio logger (a message consumer) ----------*/

#define XTL_STDIOSTREAM_SHOW_PID            001u
#define XTL_STDIOSTREAM_SHOW_DATE           002u
#define XTL_STDIOSTREAM_HIDE_PROGRESS       004u
#define XTL_STDIOSTREAM_PROGRESS_USE_CR     010u
#define XTL_STDIOSTREAM_PROGRESS_NO_CR      020u
/* Progress lines are redrawn in place with CR when the stream is a tty,
 * unless PROGRESS_NO_CR; PROGRESS_USE_CR forces CR redrawing. */

typedef struct xentoollog_logger_stdiostream xentoollog_logger_stdiostream;

xentoollog_logger_stdiostream *xtl_createlogger_stdiostream
        (FILE *f, xentoollog_level min_level, unsigned flags);
/* Returns a new logger writing to f, dropping messages below min_level,
 * or NULL if memory is exhausted (that failure is reported on f).
 * The result can be cast to xentoollog_logger*.  Ownership: the caller
 * owns the logger and frees it with xtl_logger_destroy; f stays owned by
 * the caller and is never closed by the logger.
 * Reentrancy: a logger instance is not internally locked; callers
 * sharing one between threads must serialise. */

void xtl_stdiostream_set_minlevel(xentoollog_logger_stdiostream*,
                                  xentoollog_level min_level);
void xtl_stdiostream_adjust_flags(xentoollog_logger_stdiostream*,
                                  unsigned set_flags, unsigned clear_flags);
/* Bits in both set_flags and clear_flags end up set. */

void xtl_logger_destroy(struct xentoollog_logger *logger);
/* Destroys any logger via its destroy hook.  NULL is accepted. */

/*---------- producing messages ----------*/

void xtl_logv(struct xentoollog_logger *logger,
              xentoollog_level level,
              int errnoval,
              const char *context,
              const char *format,
              va_list) __attribute__((format(printf,5,0)));
void xtl_log(struct xentoollog_logger *logger,
             xentoollog_level level,
             int errnoval,
             const char *context,
             const char *format,
             ...) __attribute__((format(printf,5,6)));
/* Hand one message to logger->vmessage.  level must be a real level
 * (XTL_DEBUG..XTL_CRITICAL).  errnoval is an errno value or -1.
 * errno is preserved across the call. */

void xtl_progress(struct xentoollog_logger *logger,
                  const char *context,
                  const char *doing_what,
                  unsigned long done, unsigned long total);
/* Report done out of total units; the percentage is computed here and
 * passed to logger->progress (if that hook is non-NULL).
 * errno is preserved across the call. */

/*---------- helpers for writing message consumers ----------*/

const char *xtl_level_to_string(xentoollog_level);
/* Lower-case level name ("debug" .. "critical"); never returns NULL. */

/* XTL_NEW_LOGGER(NAME, buffer): GNU statement expression used by logger
 * implementations.  buffer is a local xentoollog_logger_NAME whose first
 * member `vtable` is an xentoollog_logger; the macro fills the vtable
 * with NAME_vmessage/NAME_progress/NAME_destroy, mallocs a copy of
 * buffer and yields it (or logs a critical message through buffer and
 * yields NULL on allocation failure).  Needs <stdlib.h> and <errno.h>. */
#define XTL_NEW_LOGGER(LOGGER,buffer) ({                                \
    xentoollog_logger_##LOGGER *xtl_new_;                               \
    (buffer).vtable.vmessage = LOGGER##_vmessage;                       \
    (buffer).vtable.progress = LOGGER##_progress;                       \
    (buffer).vtable.destroy  = LOGGER##_destroy;                        \
    xtl_new_ = malloc(sizeof(*xtl_new_));                               \
    if (xtl_new_)                                                       \
        *xtl_new_ = (buffer);                                           \
    else                                                                \
        xtl_log((xentoollog_logger *)&(buffer), XTL_CRITICAL, errno,    \
                "xtl", "cannot allocate memory for a new logger");      \
    xtl_new_;                                                           \
})

#ifdef __cplusplus
}
#endif

#endif /* XENTOOLLOG_H */

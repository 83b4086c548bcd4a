/*
 * layout_probe.c - print the ABI facts (sizes, field offsets, constant
 * values) of the libxl event-core headers, one "kind name value" per
 * line, so two header sets can be compared with diff.
 *
 * Build against this project:  gcc -I. -Iinclude c-tests/layout_probe.c
 * Build against Debian's Xen:  gcc c-tests/layout_probe.c
 * It also redeclares every prototype we implement: a mismatch with
 * either header set is a compile error.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <libxl_event.h>
#include <xentoollog.h>

#define SZ(t)     printf("sizeof %s %zu\n", #t, sizeof(t))
#define AL(t)     printf("alignof %s %zu\n", #t, _Alignof(t))
#define OFF(t, f) printf("offsetof %s.%s %zu\n", #t, #f, offsetof(t, f))
#define FSZ(t, f) printf("fieldsize %s.%s %zu\n", #t, #f, sizeof(((t *)0)->f))
#define F(t, f)   do { OFF(t, f); FSZ(t, f); } while (0)
#define VAL(x)    printf("value %s %lld\n", #x, (long long)(x))
#define UVAL(x)   printf("value %s %llu\n", #x, (unsigned long long)(x))

/* Expected prototypes (identical redeclarations are legal C). */
int libxl_ctx_alloc(libxl_ctx **pctx, int version, unsigned flags,
                    xentoollog_logger *lg);
int libxl_ctx_free(libxl_ctx *ctx);
int libxl_ao_abort(libxl_ctx *ctx, const libxl_asyncop_how *how);
void libxl_event_init(libxl_event *p);
void libxl_event_init_type(libxl_event *p, libxl_event_type type);
void libxl_event_dispose(libxl_event *p);
const char *libxl_event_type_to_string(libxl_event_type p);
int libxl_event_type_from_string(const char *s, libxl_event_type *e);
int libxl_event_check(libxl_ctx *ctx, libxl_event **event_r,
                      uint64_t typemask,
                      libxl_event_predicate *predicate, void *predicate_user);
int libxl_event_wait(libxl_ctx *ctx, libxl_event **event_r,
                     uint64_t typemask,
                     libxl_event_predicate *predicate, void *predicate_user);
void libxl_event_free(libxl_ctx *ctx, libxl_event *event);
void libxl_event_register_callbacks(libxl_ctx *ctx,
                                    const libxl_event_hooks *hooks,
                                    void *user);
int libxl_osevent_beforepoll(libxl_ctx *ctx, int *nfds_io,
                             struct pollfd *fds, int *timeout_upd,
                             struct timeval now);
void libxl_osevent_afterpoll(libxl_ctx *ctx, int nfds,
                             const struct pollfd *fds, struct timeval now);
void libxl_osevent_register_hooks(libxl_ctx *ctx,
                                  const libxl_osevent_hooks *hooks,
                                  void *user);
void libxl_osevent_occurred_fd(libxl_ctx *ctx, void *for_libxl,
                               int fd, short events, short revents);
void libxl_osevent_occurred_timeout(libxl_ctx *ctx, void *for_libxl);
void libxl_childproc_setmode(libxl_ctx *ctx,
                             const libxl_childproc_hooks *hooks, void *user);
int libxl_childproc_reaped(libxl_ctx *ctx, pid_t pid, int status);
void libxl_childproc_sigchld_occurred(libxl_ctx *ctx);
void libxl_postfork_child_noexec(libxl_ctx *ctx);
xentoollog_logger_stdiostream *xtl_createlogger_stdiostream
        (FILE *f, xentoollog_level min_level, unsigned flags);
void xtl_stdiostream_set_minlevel(xentoollog_logger_stdiostream *s,
                                  xentoollog_level min_level);
void xtl_stdiostream_adjust_flags(xentoollog_logger_stdiostream *s,
                                  unsigned set_flags, unsigned clear_flags);
void xtl_logger_destroy(struct xentoollog_logger *logger);
void xtl_logv(struct xentoollog_logger *logger, xentoollog_level level,
              int errnoval, const char *context, const char *format,
              va_list al);
void xtl_log(struct xentoollog_logger *logger, xentoollog_level level,
             int errnoval, const char *context, const char *format, ...);
void xtl_progress(struct xentoollog_logger *logger, const char *context,
                  const char *doing_what,
                  unsigned long done, unsigned long total);
const char *xtl_level_to_string(xentoollog_level level);

/* Callback member types must match exactly, too. */
#define SAME(a, b) _Static_assert(__builtin_types_compatible_p(a, b), #a)
SAME(__typeof__(((libxl_event_hooks *)0)->event_occurs),
     void (*)(void *, libxl_event *));
SAME(__typeof__(((libxl_event_hooks *)0)->disaster),
     void (*)(void *, libxl_event_type, const char *, int));
SAME(__typeof__(((libxl_asyncop_how *)0)->callback),
     void (*)(libxl_ctx *, int, void *));
SAME(__typeof__(((libxl_asyncprogress_how *)0)->callback),
     void (*)(libxl_ctx *, libxl_event *, void *));
SAME(__typeof__(((libxl_osevent_hooks *)0)->fd_register),
     int (*)(void *, int, void **, short, void *));
SAME(__typeof__(((libxl_osevent_hooks *)0)->fd_modify),
     int (*)(void *, int, void **, short));
SAME(__typeof__(((libxl_osevent_hooks *)0)->fd_deregister),
     void (*)(void *, int, void *));
SAME(__typeof__(((libxl_osevent_hooks *)0)->timeout_register),
     int (*)(void *, void **, struct timeval, void *));
SAME(__typeof__(((libxl_osevent_hooks *)0)->timeout_modify),
     int (*)(void *, void **, struct timeval));
SAME(__typeof__(((libxl_osevent_hooks *)0)->timeout_deregister),
     void (*)(void *, void *));
SAME(__typeof__(((libxl_childproc_hooks *)0)->fork_replacement),
     pid_t (*)(void *));
SAME(__typeof__(((libxl_childproc_hooks *)0)->reaped_callback),
     int (*)(pid_t, int, void *));
SAME(libxl_event_predicate, int (const libxl_event *, void *));
SAME(libxl_ev_user, uint64_t);
SAME(libxl_domid, uint32_t);

int main(void)
{
    /* scalar typedefs and small structs */
    SZ(libxl_ev_user); SZ(libxl_domid);
    SZ(libxl_uuid); AL(libxl_uuid); F(libxl_uuid, uuid);
    SZ(libxl_defbool); F(libxl_defbool, val);
    SZ(libxl_ev_link); F(libxl_ev_link, tqe_next); F(libxl_ev_link, tqe_prev);

    /* enum storage sizes */
    SZ(libxl_error); SZ(libxl_event_type); SZ(libxl_shutdown_reason);
    SZ(libxl_disk_backend); SZ(libxl_disk_format);
    SZ(libxl_disk_specification); SZ(libxl_disk_transport);
    SZ(libxl_sigchld_owner); SZ(xentoollog_level);

    /* libxl_device_disk */
    SZ(libxl_device_disk); AL(libxl_device_disk);
    F(libxl_device_disk, backend_domid);
    F(libxl_device_disk, backend_domname);
    F(libxl_device_disk, pdev_path);
    F(libxl_device_disk, vdev);
    F(libxl_device_disk, backend);
    F(libxl_device_disk, format);
    F(libxl_device_disk, script);
    F(libxl_device_disk, removable);
    F(libxl_device_disk, readwrite);
    F(libxl_device_disk, is_cdrom);
    F(libxl_device_disk, direct_io_safe);
    F(libxl_device_disk, discard_enable);
    F(libxl_device_disk, specification);
    F(libxl_device_disk, transport);
    F(libxl_device_disk, irq);
    F(libxl_device_disk, base);
    F(libxl_device_disk, colo_enable);
    F(libxl_device_disk, colo_restore_enable);
    F(libxl_device_disk, colo_host);
    F(libxl_device_disk, colo_port);
    F(libxl_device_disk, colo_export);
    F(libxl_device_disk, active_disk);
    F(libxl_device_disk, hidden_disk);
    F(libxl_device_disk, trusted);

    /* libxl_event */
    SZ(libxl_event); AL(libxl_event);
    F(libxl_event, link);
    F(libxl_event, link.tqe_next);
    F(libxl_event, link.tqe_prev);
    F(libxl_event, domid);
    F(libxl_event, domuuid);
    F(libxl_event, for_user);
    F(libxl_event, type);
    F(libxl_event, u);
    F(libxl_event, u.domain_shutdown);
    F(libxl_event, u.domain_shutdown.shutdown_reason);
    F(libxl_event, u.disk_eject);
    F(libxl_event, u.disk_eject.vdev);
    F(libxl_event, u.disk_eject.disk);
    F(libxl_event, u.disk_eject.disk.trusted);
    F(libxl_event, u.operation_complete);
    F(libxl_event, u.operation_complete.rc);

    /* async how structs */
    SZ(libxl_asyncop_how); AL(libxl_asyncop_how);
    F(libxl_asyncop_how, callback);
    F(libxl_asyncop_how, u);
    F(libxl_asyncop_how, u.for_event);
    F(libxl_asyncop_how, u.for_callback);
    SZ(libxl_asyncprogress_how);
    F(libxl_asyncprogress_how, callback);
    F(libxl_asyncprogress_how, for_event);
    F(libxl_asyncprogress_how, for_callback);

    /* hook tables */
    SZ(libxl_event_hooks);
    F(libxl_event_hooks, event_occurs_mask);
    F(libxl_event_hooks, event_occurs);
    F(libxl_event_hooks, disaster);
    SZ(libxl_osevent_hooks);
    F(libxl_osevent_hooks, fd_register);
    F(libxl_osevent_hooks, fd_modify);
    F(libxl_osevent_hooks, fd_deregister);
    F(libxl_osevent_hooks, timeout_register);
    F(libxl_osevent_hooks, timeout_modify);
    F(libxl_osevent_hooks, timeout_deregister);
    SZ(libxl_childproc_hooks);
    F(libxl_childproc_hooks, chldowner);
    F(libxl_childproc_hooks, fork_replacement);
    F(libxl_childproc_hooks, reaped_callback);
    SZ(xentoollog_logger);
    F(xentoollog_logger, vmessage);
    F(xentoollog_logger, progress);
    F(xentoollog_logger, destroy);

    /* error codes */
    VAL(ERROR_NONSPECIFIC); VAL(ERROR_VERSION); VAL(ERROR_FAIL);
    VAL(ERROR_NI); VAL(ERROR_NOMEM); VAL(ERROR_INVAL); VAL(ERROR_BADFAIL);
    VAL(ERROR_GUEST_TIMEDOUT); VAL(ERROR_TIMEDOUT); VAL(ERROR_NOPARAVIRT);
    VAL(ERROR_NOT_READY); VAL(ERROR_OSEVENT_REG_FAIL);
    VAL(ERROR_BUFFERFULL); VAL(ERROR_UNKNOWN_CHILD); VAL(ERROR_LOCK_FAIL);
    VAL(ERROR_JSON_CONFIG_EMPTY); VAL(ERROR_DEVICE_EXISTS);
    VAL(ERROR_CHECKPOINT_DEVOPS_DOES_NOT_MATCH);
    VAL(ERROR_CHECKPOINT_DEVICE_NOT_SUPPORTED);
    VAL(ERROR_VNUMA_CONFIG_INVALID); VAL(ERROR_DOMAIN_NOTFOUND);
    VAL(ERROR_ABORTED); VAL(ERROR_NOTFOUND); VAL(ERROR_DOMAIN_DESTROYED);
    VAL(ERROR_FEATURE_REMOVED); VAL(ERROR_PROTOCOL_ERROR_QMP);
    VAL(ERROR_UNKNOWN_QMP_ERROR); VAL(ERROR_QMP_GENERIC_ERROR);
    VAL(ERROR_QMP_COMMAND_NOT_FOUND); VAL(ERROR_QMP_DEVICE_NOT_ACTIVE);
    VAL(ERROR_QMP_DEVICE_NOT_FOUND); VAL(ERROR_QEMU_API);

    /* event types and embedded enums */
    VAL(LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN);
    VAL(LIBXL_EVENT_TYPE_DOMAIN_DEATH);
    VAL(LIBXL_EVENT_TYPE_DISK_EJECT);
    VAL(LIBXL_EVENT_TYPE_OPERATION_COMPLETE);
    VAL(LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE);
    VAL(LIBXL_SHUTDOWN_REASON_UNKNOWN); VAL(LIBXL_SHUTDOWN_REASON_POWEROFF);
    VAL(LIBXL_SHUTDOWN_REASON_REBOOT); VAL(LIBXL_SHUTDOWN_REASON_SUSPEND);
    VAL(LIBXL_SHUTDOWN_REASON_CRASH); VAL(LIBXL_SHUTDOWN_REASON_WATCHDOG);
    VAL(LIBXL_SHUTDOWN_REASON_SOFT_RESET);
    VAL(LIBXL_DISK_FORMAT_UNKNOWN); VAL(LIBXL_DISK_FORMAT_QCOW);
    VAL(LIBXL_DISK_FORMAT_QCOW2); VAL(LIBXL_DISK_FORMAT_VHD);
    VAL(LIBXL_DISK_FORMAT_RAW); VAL(LIBXL_DISK_FORMAT_EMPTY);
    VAL(LIBXL_DISK_FORMAT_QED);
    VAL(LIBXL_DISK_BACKEND_UNKNOWN); VAL(LIBXL_DISK_BACKEND_PHY);
    VAL(LIBXL_DISK_BACKEND_TAP); VAL(LIBXL_DISK_BACKEND_QDISK);
    VAL(LIBXL_DISK_BACKEND_STANDALONE);
    VAL(LIBXL_DISK_SPECIFICATION_UNKNOWN); VAL(LIBXL_DISK_SPECIFICATION_XEN);
    VAL(LIBXL_DISK_SPECIFICATION_VIRTIO);
    VAL(LIBXL_DISK_TRANSPORT_UNKNOWN); VAL(LIBXL_DISK_TRANSPORT_MMIO);
    VAL(libxl_sigchld_owner_libxl); VAL(libxl_sigchld_owner_mainloop);
    VAL(libxl_sigchld_owner_libxl_always);
    VAL(libxl_sigchld_owner_libxl_always_selective_reap);

    /* macros */
    VAL(LIBXL_VERSION);
    UVAL(LIBXL_EVENTMASK_ALL);
    SZ(LIBXL_EVENTMASK_ALL);
    VAL(LIBXL_HAVE_AO_ABORT);
    VAL(LIBXL_HAVE_NONCONST_EVENT_OCCURS_EVENT_ARG);
    VAL(LIBXL_HAVE_SIGCHLD_OWNER_SELECTIVE_REAP);
    VAL(LIBXL_HAVE_SIGCHLD_SHARING);
    VAL(LIBXL_HAVE_DEVICE_DISK_SPECIFICATION);

    /* xentoollog */
    VAL(XTL_NONE); VAL(XTL_DEBUG); VAL(XTL_VERBOSE); VAL(XTL_DETAIL);
    VAL(XTL_PROGRESS); VAL(XTL_INFO); VAL(XTL_NOTICE); VAL(XTL_WARN);
    VAL(XTL_ERROR); VAL(XTL_CRITICAL); VAL(XTL_NUM_LEVELS);
    UVAL(XTL_STDIOSTREAM_SHOW_PID); UVAL(XTL_STDIOSTREAM_SHOW_DATE);
    UVAL(XTL_STDIOSTREAM_HIDE_PROGRESS);
    UVAL(XTL_STDIOSTREAM_PROGRESS_USE_CR);
    UVAL(XTL_STDIOSTREAM_PROGRESS_NO_CR);
    SZ(XTL_STDIOSTREAM_SHOW_PID);
    return 0;
}

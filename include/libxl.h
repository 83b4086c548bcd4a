/*
 * libxl.h - public interface of libxenlight (event-core subset).
 *
 * This is the subset of the Xen 4.17 libxl API implemented by this
 * library.  Every type, constant and prototype here is ABI-identical to
 * the Xen 4.17 libxl.h / _libxl_types.h on the same platform, so
 * programs built against Xen's headers can load this library instead.
 *
 * General rules (apply to every function unless stated otherwise):
 *  - Functions return 0 or a negative libxl_error value.
 *  - A libxl_ctx may be used concurrently from several threads.
 *  - Functions marked LIBXL_EXTERNAL_CALLERS_ONLY must not be called
 *    from inside libxl callbacks that say reentry is forbidden.
 *  - Memory returned to the caller is malloc-family memory owned by the
 *    caller unless a specific free function is documented.
 */
#ifndef LIBXL_H
#define LIBXL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <xentoollog.h>

#ifdef __cplusplus
extern "C" {
#endif

/*---------- feature macros (only those that hold for this library) ----------*/

#define LIBXL_HAVE_AO_ABORT 1
/* libxl_ao_abort exists. */

#if !defined(LIBXL_API_VERSION) || LIBXL_API_VERSION != 0x040200
#define LIBXL_HAVE_NONCONST_EVENT_OCCURS_EVENT_ARG 1
#endif
/* libxl_event_hooks.event_occurs takes a non-const libxl_event*
 * (the callee owns and frees it).  Only the 4.2 API had it const. */

#define LIBXL_HAVE_SIGCHLD_OWNER_SELECTIVE_REAP 1
/* libxl_sigchld_owner_libxl_always_selective_reap and
 * libxl_childproc_sigchld_occurred exist. */

#define LIBXL_HAVE_SIGCHLD_SHARING 1
/* Several ctxs may own SIGCHLD simultaneously. */

#define LIBXL_HAVE_DEVICE_DISK_SPECIFICATION 1
/* libxl_device_disk has the specification and transport fields. */

#ifndef LIBXL_EXTERNAL_CALLERS_ONLY
#define LIBXL_EXTERNAL_CALLERS_ONLY /* empty for code outside libxl */
#endif
/* Marks entry points that libxl itself never calls internally. */

/*---------- basic types ----------*/

typedef struct libxl__ctx libxl_ctx;
/* Opaque library context; see libxl_ctx_alloc. */

typedef struct {
    unsigned char uuid[16];   /* big-endian octets */
} libxl_uuid;

typedef uint64_t libxl_ev_user;
/* Application cookie copied into libxl_event.for_user. */

typedef uint32_t libxl_domid;

typedef struct {
    int val;                  /* 0 = default, <0 = false, >0 = true */
} libxl_defbool;

struct libxl_event;
typedef struct {
    struct libxl_event *tqe_next;
    struct libxl_event **tqe_prev;
} libxl_ev_link;
/* Intrusive queue linkage (a BSD TAILQ entry).  Owned by whoever holds
 * the event: libxl while queued, then the application, which may use
 * it to keep events on its own lists. */

/*---------- error codes ----------*/

typedef enum libxl_error {
    ERROR_NONSPECIFIC = -1,
    ERROR_VERSION = -2,
    ERROR_FAIL = -3,
    ERROR_NI = -4,
    ERROR_NOMEM = -5,
    ERROR_INVAL = -6,
    ERROR_BADFAIL = -7,
    ERROR_GUEST_TIMEDOUT = -8,
    ERROR_TIMEDOUT = -9,
    ERROR_NOPARAVIRT = -10,
    ERROR_NOT_READY = -11,
    ERROR_OSEVENT_REG_FAIL = -12,
    ERROR_BUFFERFULL = -13,
    ERROR_UNKNOWN_CHILD = -14,
    ERROR_LOCK_FAIL = -15,
    ERROR_JSON_CONFIG_EMPTY = -16,
    ERROR_DEVICE_EXISTS = -17,
    ERROR_CHECKPOINT_DEVOPS_DOES_NOT_MATCH = -18,
    ERROR_CHECKPOINT_DEVICE_NOT_SUPPORTED = -19,
    ERROR_VNUMA_CONFIG_INVALID = -20,
    ERROR_DOMAIN_NOTFOUND = -21,
    ERROR_ABORTED = -22,
    ERROR_NOTFOUND = -23,
    ERROR_DOMAIN_DESTROYED = -24,
    ERROR_FEATURE_REMOVED = -25,
    ERROR_PROTOCOL_ERROR_QMP = -26,
    ERROR_UNKNOWN_QMP_ERROR = -27,
    ERROR_QMP_GENERIC_ERROR = -28,
    ERROR_QMP_COMMAND_NOT_FOUND = -29,
    ERROR_QMP_DEVICE_NOT_ACTIVE = -30,
    ERROR_QMP_DEVICE_NOT_FOUND = -31,
    ERROR_QEMU_API = -32,
} libxl_error;

/*---------- enums and structs embedded in libxl_event ----------*/

typedef enum libxl_shutdown_reason {
    LIBXL_SHUTDOWN_REASON_UNKNOWN = -1,
    LIBXL_SHUTDOWN_REASON_POWEROFF = 0,
    LIBXL_SHUTDOWN_REASON_REBOOT = 1,
    LIBXL_SHUTDOWN_REASON_SUSPEND = 2,
    LIBXL_SHUTDOWN_REASON_CRASH = 3,
    LIBXL_SHUTDOWN_REASON_WATCHDOG = 4,
    LIBXL_SHUTDOWN_REASON_SOFT_RESET = 5,
} libxl_shutdown_reason;

typedef enum libxl_disk_format {
    LIBXL_DISK_FORMAT_UNKNOWN = 0,
    LIBXL_DISK_FORMAT_QCOW = 1,
    LIBXL_DISK_FORMAT_QCOW2 = 2,
    LIBXL_DISK_FORMAT_VHD = 3,
    LIBXL_DISK_FORMAT_RAW = 4,
    LIBXL_DISK_FORMAT_EMPTY = 5,
    LIBXL_DISK_FORMAT_QED = 6,
} libxl_disk_format;

typedef enum libxl_disk_backend {
    LIBXL_DISK_BACKEND_UNKNOWN = 0,
    LIBXL_DISK_BACKEND_PHY = 1,
    LIBXL_DISK_BACKEND_TAP = 2,
    LIBXL_DISK_BACKEND_QDISK = 3,
    LIBXL_DISK_BACKEND_STANDALONE = 4,
} libxl_disk_backend;

typedef enum libxl_disk_specification {
    LIBXL_DISK_SPECIFICATION_UNKNOWN = 0,
    LIBXL_DISK_SPECIFICATION_XEN = 1,
    LIBXL_DISK_SPECIFICATION_VIRTIO = 2,
} libxl_disk_specification;

typedef enum libxl_disk_transport {
    LIBXL_DISK_TRANSPORT_UNKNOWN = 0,
    LIBXL_DISK_TRANSPORT_MMIO = 1,
} libxl_disk_transport;

typedef struct libxl_device_disk {
    libxl_domid backend_domid;
    char * backend_domname;
    char * pdev_path;
    char * vdev;
    libxl_disk_backend backend;
    libxl_disk_format format;
    char * script;
    int removable;
    int readwrite;
    int is_cdrom;
    bool direct_io_safe;
    libxl_defbool discard_enable;
    libxl_disk_specification specification;
    libxl_disk_transport transport;
    uint32_t irq;
    uint64_t base;
    libxl_defbool colo_enable;
    libxl_defbool colo_restore_enable;
    char * colo_host;
    int colo_port;
    char * colo_export;
    char * active_disk;
    char * hidden_disk;
    libxl_defbool trusted;
} libxl_device_disk;
/* Layout only: this library never fills in a disk, but the struct is
 * part of libxl_event's union and so fixes its size.  All char* fields
 * are malloc'd and freed by libxl_event_dispose. */

/*---------- events ----------*/

typedef enum libxl_event_type {
    LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN = 1,
    LIBXL_EVENT_TYPE_DOMAIN_DEATH = 2,
    LIBXL_EVENT_TYPE_DISK_EJECT = 3,
    LIBXL_EVENT_TYPE_OPERATION_COMPLETE = 4,
    LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE = 5,
} libxl_event_type;

typedef struct libxl_event {
    libxl_ev_link link;       /* free for the application's use */
    libxl_domid domid;
    libxl_uuid domuuid;
    uint64_t for_user;        /* the libxl_ev_user the caller supplied */
    libxl_event_type type;    /* selects the member of u */
    union {
        struct {
            uint8_t shutdown_reason;
        } domain_shutdown;
        struct {
            char * vdev;
            libxl_device_disk disk;
        } disk_eject;
        struct {
            int rc;           /* 0 or ERROR_* of the finished operation */
        } operation_complete;
    } u;
} libxl_event;
/* Events handed to the application are heap objects owned by it; free
 * with libxl_event_free (libxl_event.h).  Event types used as bit
 * numbers in a typemask: bit (1ULL << type). */

void libxl_event_init(libxl_event *p);
/* Zero-fills *p (no type selected).  Never fails. */
void libxl_event_init_type(libxl_event *p, libxl_event_type type);
/* Like libxl_event_init, then sets p->type. */
void libxl_event_dispose(libxl_event *p);
/* Frees the heap members owned by *p (not p itself) and poisons it.
 * Reentrancy: pure data function, callable from anywhere. */
const char *libxl_event_type_to_string(libxl_event_type p);
/* Lower-case name without prefix (e.g. "operation_complete"), or NULL
 * for an unknown value.  Static storage; do not free. */
int libxl_event_type_from_string(const char *s, libxl_event_type *e);
/* Case-insensitive inverse of _to_string.  Returns 0, or ERROR_FAIL if
 * s is not a known name (ERROR_INVAL if s or e is NULL). */

/*---------- asynchronous operations ----------*/

typedef struct {
    void (*callback)(libxl_ctx *ctx, int rc, void *for_callback);
    union {
        libxl_ev_user for_event;  /* used when callback == NULL */
        void *for_callback;       /* passed to callback */
    } u;
} libxl_asyncop_how;
/* Passed as ao_how to long-running functions:
 *  - ao_how == NULL: the call blocks and returns the operation's result.
 *  - callback != NULL: the call returns 0 at once; callback(ctx, rc,
 *    for_callback) runs exactly once on completion, on some thread that
 *    is inside libxl.  Reentrancy: the callback may call libxl.
 *  - callback == NULL: the call returns 0 at once; completion is an
 *    OPERATION_COMPLETE event with for_user = u.for_event.
 * *ao_how need not outlive the initiating call. */

typedef struct {
    void (*callback)(libxl_ctx *ctx, libxl_event*, void *for_callback);
    libxl_ev_user for_event;  /* always copied to event->for_user */
    void *for_callback;       /* passed to callback */
} libxl_asyncprogress_how;
/* Intermediate-progress reporting for an operation.  NULL discards
 * reports; callback == NULL queues events for libxl_event_check/wait;
 * otherwise callback receives each event and owns (must free) it.
 * Progress callbacks all happen before the operation completes. */

int libxl_ao_abort(libxl_ctx *ctx, const libxl_asyncop_how *how)
                   LIBXL_EXTERNAL_CALLERS_ONLY;
/* Requests abort of the running operation whose ao_how equals *how
 * (NULL: the first synchronous operation in progress, which is
 * necessarily running on another thread).
 * Return value: 0 if an abort was requested (the operation still
 * completes normally, usually with ERROR_ABORTED);
 * ERROR_NOTFOUND if no such operation; ERROR_ABORTED if it was already
 * being aborted.
 * Reentrancy: may be called from any thread and from callbacks. */

/*---------- context ----------*/

#define LIBXL_VERSION 0

int libxl_ctx_alloc(libxl_ctx **pctx, int version,
                    unsigned flags,
                    xentoollog_logger *lg);
/* Creates a context in *pctx.  version must be LIBXL_VERSION (else
 * ERROR_VERSION); flags must be 0; lg is borrowed and must outlive the
 * ctx.  Returns 0, or ERROR_NOMEM / ERROR_FAIL (*pctx then undefined).
 * Reentrancy: any thread; no libxl locks held. */

int libxl_ctx_free(libxl_ctx *ctx);
/* Destroys ctx (NULL accepted).  No operation may be outstanding and
 * no other thread may be using ctx.  Queued events are discarded.
 * Returns 0. */

#ifdef __cplusplus
}
#endif

#endif /* LIBXL_H */

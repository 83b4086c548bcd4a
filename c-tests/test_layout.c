/*
 * test_layout.c - asserts the x86-64 ABI of our public headers with
 * literal numbers taken from Xen 4.17 (Debian libxen-dev) headers.
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -I. -Iinclude \
 *            c-tests/test_layout.c -o test_layout
 * Prints a FAIL line per failed check and exits non-zero, or prints
 * "PASS test_layout" and exits 0.
 */
#include <stddef.h>
#include <stdio.h>
#include <libxl_event.h>
#include <xentoollog.h>

static int failures, checks;

static void check(const char *what, long long got, long long want)
{
    checks++;
    if (got != want) {
        printf("FAIL test_layout: %s = %lld, expected %lld\n", what, got, want);
        failures++;
    }
}

#define EQ(expr, want)     check(#expr, (long long)(expr), (want))
#define SIZE(t, want)      check("sizeof(" #t ")", (long long)sizeof(t), (want))
#define OFF(t, f, want)    check("offsetof(" #t ", " #f ")", \
                                 (long long)offsetof(t, f), (want))

int main(void)
{
#if !defined(__x86_64__)
    printf("FAIL test_layout: expected numbers are for x86-64 only\n");
    return 1;
#endif
    /* libxl_event */
    SIZE(libxl_event, 208);
    OFF(libxl_event, link, 0);
    OFF(libxl_event, link.tqe_next, 0);
    OFF(libxl_event, link.tqe_prev, 8);
    OFF(libxl_event, domid, 16);
    OFF(libxl_event, domuuid, 20);
    OFF(libxl_event, for_user, 40);
    OFF(libxl_event, type, 48);
    OFF(libxl_event, u, 56);
    OFF(libxl_event, u.domain_shutdown.shutdown_reason, 56);
    OFF(libxl_event, u.disk_eject.vdev, 56);
    OFF(libxl_event, u.disk_eject.disk, 64);
    OFF(libxl_event, u.operation_complete.rc, 56);
    SIZE(libxl_ev_link, 16);
    SIZE(libxl_uuid, 16);
    SIZE(libxl_defbool, 4);
    SIZE(libxl_event_type, 4);

    /* libxl_device_disk */
    SIZE(libxl_device_disk, 144);
    OFF(libxl_device_disk, backend_domid, 0);
    OFF(libxl_device_disk, backend_domname, 8);
    OFF(libxl_device_disk, pdev_path, 16);
    OFF(libxl_device_disk, vdev, 24);
    OFF(libxl_device_disk, backend, 32);
    OFF(libxl_device_disk, format, 36);
    OFF(libxl_device_disk, script, 40);
    OFF(libxl_device_disk, removable, 48);
    OFF(libxl_device_disk, readwrite, 52);
    OFF(libxl_device_disk, is_cdrom, 56);
    OFF(libxl_device_disk, direct_io_safe, 60);
    OFF(libxl_device_disk, discard_enable, 64);
    OFF(libxl_device_disk, specification, 68);
    OFF(libxl_device_disk, transport, 72);
    OFF(libxl_device_disk, irq, 76);
    OFF(libxl_device_disk, base, 80);
    OFF(libxl_device_disk, colo_enable, 88);
    OFF(libxl_device_disk, colo_restore_enable, 92);
    OFF(libxl_device_disk, colo_host, 96);
    OFF(libxl_device_disk, colo_port, 104);
    OFF(libxl_device_disk, colo_export, 112);
    OFF(libxl_device_disk, active_disk, 120);
    OFF(libxl_device_disk, hidden_disk, 128);
    OFF(libxl_device_disk, trusted, 136);

    /* async and hook structs */
    SIZE(libxl_asyncop_how, 16);
    OFF(libxl_asyncop_how, callback, 0);
    OFF(libxl_asyncop_how, u, 8);
    OFF(libxl_asyncop_how, u.for_event, 8);
    OFF(libxl_asyncop_how, u.for_callback, 8);
    SIZE(libxl_asyncprogress_how, 24);
    OFF(libxl_asyncprogress_how, for_event, 8);
    OFF(libxl_asyncprogress_how, for_callback, 16);
    SIZE(libxl_event_hooks, 24);
    OFF(libxl_event_hooks, event_occurs, 8);
    OFF(libxl_event_hooks, disaster, 16);
    SIZE(libxl_osevent_hooks, 48);
    OFF(libxl_osevent_hooks, timeout_register, 24);
    OFF(libxl_osevent_hooks, timeout_deregister, 40);
    SIZE(libxl_childproc_hooks, 24);
    OFF(libxl_childproc_hooks, fork_replacement, 8);
    OFF(libxl_childproc_hooks, reaped_callback, 16);
    SIZE(xentoollog_logger, 24);
    OFF(xentoollog_logger, progress, 8);
    OFF(xentoollog_logger, destroy, 16);

    /* error codes */
    EQ(ERROR_NONSPECIFIC, -1);
    EQ(ERROR_VERSION, -2);
    EQ(ERROR_FAIL, -3);
    EQ(ERROR_NI, -4);
    EQ(ERROR_NOMEM, -5);
    EQ(ERROR_INVAL, -6);
    EQ(ERROR_BADFAIL, -7);
    EQ(ERROR_GUEST_TIMEDOUT, -8);
    EQ(ERROR_TIMEDOUT, -9);
    EQ(ERROR_NOPARAVIRT, -10);
    EQ(ERROR_NOT_READY, -11);
    EQ(ERROR_OSEVENT_REG_FAIL, -12);
    EQ(ERROR_BUFFERFULL, -13);
    EQ(ERROR_UNKNOWN_CHILD, -14);
    EQ(ERROR_LOCK_FAIL, -15);
    EQ(ERROR_JSON_CONFIG_EMPTY, -16);
    EQ(ERROR_DEVICE_EXISTS, -17);
    EQ(ERROR_CHECKPOINT_DEVOPS_DOES_NOT_MATCH, -18);
    EQ(ERROR_CHECKPOINT_DEVICE_NOT_SUPPORTED, -19);
    EQ(ERROR_VNUMA_CONFIG_INVALID, -20);
    EQ(ERROR_DOMAIN_NOTFOUND, -21);
    EQ(ERROR_ABORTED, -22);
    EQ(ERROR_NOTFOUND, -23);
    EQ(ERROR_DOMAIN_DESTROYED, -24);
    EQ(ERROR_FEATURE_REMOVED, -25);
    EQ(ERROR_PROTOCOL_ERROR_QMP, -26);
    EQ(ERROR_UNKNOWN_QMP_ERROR, -27);
    EQ(ERROR_QMP_GENERIC_ERROR, -28);
    EQ(ERROR_QMP_COMMAND_NOT_FOUND, -29);
    EQ(ERROR_QMP_DEVICE_NOT_ACTIVE, -30);
    EQ(ERROR_QMP_DEVICE_NOT_FOUND, -31);
    EQ(ERROR_QEMU_API, -32);

    /* event types, child-process modes, misc constants */
    EQ(LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN, 1);
    EQ(LIBXL_EVENT_TYPE_DOMAIN_DEATH, 2);
    EQ(LIBXL_EVENT_TYPE_DISK_EJECT, 3);
    EQ(LIBXL_EVENT_TYPE_OPERATION_COMPLETE, 4);
    EQ(LIBXL_EVENT_TYPE_DOMAIN_CREATE_CONSOLE_AVAILABLE, 5);
    EQ(libxl_sigchld_owner_libxl, 0);
    EQ(libxl_sigchld_owner_mainloop, 1);
    EQ(libxl_sigchld_owner_libxl_always, 2);
    EQ(libxl_sigchld_owner_libxl_always_selective_reap, 3);
    EQ(LIBXL_VERSION, 0);
    EQ(LIBXL_EVENTMASK_ALL == ~0UL, 1);
    EQ(XTL_NONE, 0);
    EQ(XTL_DEBUG, 1);
    EQ(XTL_PROGRESS, 4);
    EQ(XTL_WARN, 7);
    EQ(XTL_CRITICAL, 9);
    EQ(XTL_NUM_LEVELS, 10);
    EQ(XTL_STDIOSTREAM_SHOW_PID, 1);
    EQ(XTL_STDIOSTREAM_SHOW_DATE, 2);
    EQ(XTL_STDIOSTREAM_HIDE_PROGRESS, 4);
    EQ(XTL_STDIOSTREAM_PROGRESS_USE_CR, 8);
    EQ(XTL_STDIOSTREAM_PROGRESS_NO_CR, 16);

    if (failures) {
        printf("FAIL test_layout: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("PASS test_layout (%d checks)\n", checks);
    return 0;
}

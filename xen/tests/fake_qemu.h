/*
 * fake_qemu.h - a fake QEMU QMP server for test_xen_qmp.c: a thread
 * listening on a unix socket, serving one connection in one of several
 * modes (well-behaved or not).
 *
 * The protocol, as QEMU speaks it (QMP spec): on connect the server sends
 *   {"QMP": {"version": {"qemu": {"major": 7, ...}}, "capabilities": []}}
 * then answers each {"execute": CMD, "id": N} with
 *   {"return": VALUE, "id": N}   or   {"error": {"class": C, "desc": D}, "id": N}
 * Every message ends with "\r\n" (libxl splits on it).  libxl sends
 * "qmp_capabilities" first, then the user's command.
 */
#ifndef XEN_FAKE_QEMU_H
#define XEN_FAKE_QEMU_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef enum {
    FQ_NORMAL,          /* greeting, caps, command -> "return" */
    FQ_FRAGMENTED,      /* same, but an async event first and the reply
                         * in three pieces 10 ms apart */
    FQ_SILENT,          /* accepts, never says anything */
    FQ_MUTE,            /* greeting, caps, then never answers the command */
    FQ_CLOSE_AT_ONCE,   /* accepts and closes at once */
    FQ_CLOSE_AFTER_CMD, /* greeting, caps, reads the command, closes */
    FQ_GARBAGE,         /* answers the command with a line that is not JSON */
    FQ_WRONG_ID,        /* answers with another id */
    FQ_ERROR_REPLY,     /* answers with error class CommandNotFound */
    FQ_FLOOD,           /* answers with 1.5 MB without any "\r\n" */
    FQ_BAD_CAPS,        /* refuses qmp_capabilities (error reply) */
    FQ_NOT_OBJECT,      /* answers with valid JSON that is no QMP message */
} fq_mode;

typedef struct {
    fq_mode mode;
    char path[108];
    int lfd, cfd;
    int stop[2];             /* self-pipe: stop the thread */
    pthread_t th;
    int running;
    /* results, read after fq_stop (or atomically) */
    int accepted, got_caps, finished;
    char cmd[64];
    double t_action;         /* now_ms() when it sent its last answer /
                              * garbage / closed: fq_t_action() (read while
                              * the thread may still run) */
    double t_client_eof;     /* when it saw the client close (0: never) */
} fake_qemu;

static double fq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* t_action is read by the test before fq_stop (as the cause of libxl's
 * completion, which libxl saw through the socket: no ordering a race
 * detector knows of), so it is written and read atomically. */
static void fq_mark_action(fake_qemu *q)
{
    double t = fq_now_ms();
    __atomic_store(&q->t_action, &t, __ATOMIC_SEQ_CST);
}
static __attribute__((unused)) double fq_t_action(fake_qemu *q)
{
    double t;
    __atomic_load(&q->t_action, &t, __ATOMIC_SEQ_CST);
    return t;
}

static void fq_send(fake_qemu *q, const char *s, size_t len)
{
    while (len) {
        ssize_t r = send(q->cfd, s, len, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return; /* the client went away: fine */
        s += r;
        len -= r;
    }
    fq_mark_action(q);
}

static void fq_say(fake_qemu *q, const char *s) { fq_send(q, s, strlen(s)); }

/* Waits for fd readable or stop; 1 readable, 0 stop. */
static int fq_wait(fake_qemu *q, int fd)
{
    struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
                           { .fd = q->stop[0], .events = POLLIN } };
    for (;;) {
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || p[1].revents) return 0;
        if (p[0].revents) return 1;
    }
}

/* Reads one "\r\n"-terminated message into buf (NUL-terminated, without
 * the CRLF).  1: got one; 0: EOF (t_client_eof set) or stop. */
static int fq_read_msg(fake_qemu *q, char *buf, size_t len, char *rx, size_t *rxn)
{
    for (;;) {
        char *e = memmem(rx, *rxn, "\r\n", 2);
        if (e) {
            size_t n = e - rx;
            size_t c = n < len - 1 ? n : len - 1;
            memcpy(buf, rx, c);
            buf[c] = 0;
            memmove(rx, e + 2, *rxn - n - 2);
            *rxn -= n + 2;
            return 1;
        }
        if (!fq_wait(q, q->cfd)) return 0;
        ssize_t r = read(q->cfd, rx + *rxn, 8192 - *rxn);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            q->t_client_eof = fq_now_ms();
            return 0;
        }
        *rxn += r;
        if (*rxn >= 8192) *rxn = 0; /* nonsense from the client: drop */
    }
}

static int fq_id(const char *msg)
{
    const char *p = strstr(msg, "\"id\"");
    if (!p) return -1;
    p = strchr(p, ':');
    return p ? atoi(p + 1) : -1;
}

/* Waits until the client closes (or stop). */
static void fq_drain(fake_qemu *q)
{
    char buf[4096];
    for (;;) {
        if (!fq_wait(q, q->cfd)) return;
        ssize_t r = read(q->cfd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            q->t_client_eof = fq_now_ms();
            return;
        }
    }
}

static void fq_serve(fake_qemu *q)
{
    char rx[8192], msg[1024], out[1024];
    size_t rxn = 0;

    if (q->mode == FQ_CLOSE_AT_ONCE) {
        close(q->cfd);
        q->cfd = -1;
        fq_mark_action(q);
        return;
    }
    if (q->mode != FQ_SILENT)
        fq_say(q, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 1, \"minor\": 2,"
                  " \"major\": 7}, \"package\": \"fake\"}, \"capabilities\": []}}\r\n");

    /* qmp_capabilities */
    if (!fq_read_msg(q, msg, sizeof(msg), rx, &rxn)) return;
    if (strstr(msg, "\"qmp_capabilities\"")) q->got_caps = 1;
    if (q->mode == FQ_BAD_CAPS) {
        snprintf(out, sizeof(out), "{\"error\": {\"class\": \"GenericError\", "
                 "\"desc\": \"no capabilities for you\"}, \"id\": %d}\r\n", fq_id(msg));
        fq_say(q, out);
        fq_drain(q);
        return;
    }
    snprintf(out, sizeof(out), "{\"return\": {}, \"id\": %d}\r\n", fq_id(msg));
    fq_say(q, out);

    /* the command */
    if (!fq_read_msg(q, msg, sizeof(msg), rx, &rxn)) return;
    const char *x = strstr(msg, "\"execute\"");
    if (x && (x = strchr(x + 9, '"'))) {
        size_t n = strcspn(x + 1, "\"");
        if (n >= sizeof(q->cmd)) n = sizeof(q->cmd) - 1;
        memcpy(q->cmd, x + 1, n);
        q->cmd[n] = 0;
    }
    int id = fq_id(msg);
    switch (q->mode) {
    case FQ_NORMAL:
    case FQ_FRAGMENTED:
        snprintf(out, sizeof(out), "{\"return\": {\"running\": true, \"singlestep\":"
                 " false, \"status\": \"running\"}, \"id\": %d}\r\n", id);
        if (q->mode == FQ_NORMAL) {
            fq_say(q, out);
        } else {
            fq_say(q, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                      "\"event\": \"RESUME\"}\r\n");
            size_t n = strlen(out), a = n / 3, b = 2 * n / 3;
            fq_send(q, out, a);
            usleep(10000);
            fq_send(q, out + a, b - a);
            usleep(10000);
            fq_send(q, out + b, n - b);
        }
        break;
    case FQ_MUTE:
    case FQ_SILENT:
        break;
    case FQ_CLOSE_AFTER_CMD:
        close(q->cfd);
        q->cfd = -1;
        fq_mark_action(q);
        return;
    case FQ_GARBAGE:
        fq_say(q, "this is { not : json at all\r\n");
        break;
    case FQ_WRONG_ID:
        snprintf(out, sizeof(out), "{\"return\": {}, \"id\": %d}\r\n", id + 1);
        fq_say(q, out);
        break;
    case FQ_ERROR_REPLY:
        snprintf(out, sizeof(out), "{\"error\": {\"class\": \"CommandNotFound\", "
                 "\"desc\": \"The command %s has not been found\"}, \"id\": %d}\r\n",
                 q->cmd, id);
        fq_say(q, out);
        break;
    case FQ_NOT_OBJECT:
        fq_say(q, "[1, 2, 3]\r\n");
        break;
    case FQ_FLOOD: {
        static char junk[64 * 1024];
        memset(junk, 'x', sizeof(junk));
        for (int i = 0; i < 24 && q->cfd >= 0; i++) {
            ssize_t r = send(q->cfd, junk, sizeof(junk), MSG_NOSIGNAL);
            if (r <= 0) break;
        }
        fq_mark_action(q);
        break;
    }
    default:
        break;
    }
    fq_drain(q);
}

static void *fq_main(void *arg)
{
    fake_qemu *q = arg;
    if (fq_wait(q, q->lfd)) {
        q->cfd = accept4(q->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (q->cfd >= 0) {
            q->accepted = 1;
            fq_serve(q);
        }
    }
    __atomic_store_n(&q->finished, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Listens on path (removing what was there) and serves one client in a
 * thread.  0, or -1 with errno. */
static int fq_start(fake_qemu *q, const char *path, fq_mode mode)
{
    memset(q, 0, sizeof(*q));
    q->mode = mode;
    q->cfd = -1;
    snprintf(q->path, sizeof(q->path), "%s", path);
    unlink(path);
    q->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (q->lfd < 0) return -1;
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    if (bind(q->lfd, (struct sockaddr *)&un, sizeof(un)) || listen(q->lfd, 4) ||
        pipe2(q->stop, O_CLOEXEC)) {
        close(q->lfd);
        return -1;
    }
    if (pthread_create(&q->th, NULL, fq_main, q)) {
        close(q->lfd);
        close(q->stop[0]);
        close(q->stop[1]);
        return -1;
    }
    q->running = 1;
    return 0;
}

/* Gives the thread up to wait_ms to finish by itself (the client closing
 * the connection), then stops it; closes and unlinks everything.
 * Returns 1 if it had finished by itself. */
static int fq_stop(fake_qemu *q, int wait_ms)
{
    if (!q->running) return 0;
    double end = fq_now_ms() + wait_ms;
    while (!__atomic_load_n(&q->finished, __ATOMIC_SEQ_CST) && fq_now_ms() < end)
        usleep(1000);
    int by_itself = __atomic_load_n(&q->finished, __ATOMIC_SEQ_CST);
    if (write(q->stop[1], "x", 1) < 0) { /* the thread may be gone */ }
    pthread_join(q->th, NULL);
    if (q->cfd >= 0) close(q->cfd);
    close(q->lfd);
    close(q->stop[0]);
    close(q->stop[1]);
    unlink(q->path);
    q->running = 0;
    return by_itself;
}

#endif /* XEN_FAKE_QEMU_H */

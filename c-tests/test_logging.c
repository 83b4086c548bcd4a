/*
 * test_logging.c - logging through the caller's xentoollog logger.
 *
 * Scenario: a ctx logs every registration, dispatch and ao state change at
 * DEBUG. With our stdio logger the library skips formatting messages the
 * logger's current minimum level drops — so the level must be honoured
 * dynamically (xtl_stdiostream_set_minlevel after ctx creation), and an
 * application's own logger (its own vmessage) must still get everything.
 * Success: DEBUG lines appear exactly when the level allows; refused
 * arguments are logged at ERROR naming the argument; the custom logger
 * receives DEBUG messages with context "libxl".
 * Failure: a missing or unexpected line.
 */
#include "harness.h"

#include <libxl_test_fdevent.h>

static int run_op(libxl_ctx *ctx)
{
    int p[2];
    test_pipe(p);
    pipe_poke(p[1]);
    int rc = libxl_test_fdevent(ctx, p[0], POLLIN, NULL);
    close(p[0]); close(p[1]);
    return rc;
}

struct custom { xentoollog_logger vtable; int debug_lines; int libxl_context; };

static void custom_vmessage(xentoollog_logger *lg, xentoollog_level level, int errnoval,
                            const char *context, const char *fmt, va_list al)
{
    (void)errnoval; (void)fmt; (void)al;
    struct custom *c = (struct custom *)lg;
    if (level == XTL_DEBUG) c->debug_lines++;
    if (context && !strcmp(context, "libxl")) c->libxl_context++;
}

static void custom_destroy(xentoollog_logger *lg) { (void)lg; }

int main(void)
{
    watchdog(30);

    case_begin("stdio_logger_level_is_honoured_dynamically");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    xentoollog_logger_stdiostream *s = xtl_createlogger_stdiostream(f, XTL_ERROR, 0);
    libxl_ctx *ctx = test_ctx((xentoollog_logger *)s);
    CHECK_RC(run_op(ctx), 0);
    fflush(f);
    CHECK(strstr(text, "debug") == NULL);
    size_t before = len;
    xtl_stdiostream_set_minlevel(s, XTL_DEBUG);
    CHECK_RC(run_op(ctx), 0);
    fflush(f);
    CHECK(len > before);
    CHECK(strstr(text + before, "libxl: debug: ao ") != NULL);
    CHECK(strstr(text + before, ": inprogress") != NULL);
    CHECK(strstr(text + before, "ev_fd=") != NULL);
    CHECK(strstr(text + before, "complete, rc=0") != NULL);
    xtl_stdiostream_set_minlevel(s, XTL_ERROR);
    before = len;
    CHECK_RC(libxl_test_fdevent(ctx, -5, POLLIN, NULL), ERROR_INVAL);
    fflush(f);
    CHECK(strstr(text + before, "libxl: error: ") != NULL);
    CHECK(strstr(text + before, "invalid argument fd") != NULL);
    libxl_ctx_free(ctx);
    xtl_logger_destroy((xentoollog_logger *)s);
    fclose(f);
    free(text);
    case_end();

    case_begin("application_logger_gets_every_debug_message");
    struct custom c = { { custom_vmessage, NULL, custom_destroy }, 0, 0 };
    ctx = test_ctx(&c.vtable);
    CHECK_RC(run_op(ctx), 0);
    CHECK(c.debug_lines >= 5);
    CHECK(c.libxl_context == c.debug_lines);
    libxl_ctx_free(ctx);
    case_end();

    case_begin("null_logger_is_accepted");
    libxl_ctx *c2 = NULL;
    CHECK_RC(libxl_ctx_alloc(&c2, LIBXL_VERSION, 0, NULL), 0);
    CHECK_RC(run_op(c2), 0);
    CHECK_RC(libxl_ctx_free(c2), 0);
    case_end();
    return h_finish();
}

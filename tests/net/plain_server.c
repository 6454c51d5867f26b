/*
 * tests/net/plain_server.c - the real `trastenda` process, driven through the client library, the
 * CLI and raw nng sockets.
 *
 * The server is started on ipc:// paths in a temporary directory and stopped by its PID whatever
 * happens (atexit, and the kernel kills it if this test dies: PR_SET_PDEATHSIG). Checked:
 *   - every operation through the client library, with its result fields, and each typed call;
 *   - the CLI's output and exit codes (ok 0, failed 1, usage 2, unreachable 3);
 *   - a subscriber receives a scripted scenario's events in order, and "events since" returns them;
 *   - graceful stop (SIGTERM) and restart keep the state; a reserve acknowledged just before
 *     SIGTERM is there after the restart;
 *   - 32 threads sharing one client sell 10 SKUs of limited stock: sold = stock exactly, every
 *     call answered, each with its own result; 64 shoppers driven by the completions of
 *     asynchronous calls do the same, their calls batched into far fewer requests;
 *   - bad input of every class gets its error code and changes nothing; the server still answers;
 *   - closing a client whose server never answers ends the call in flight by its timeout and a
 *     synchronous call still queued with E_CONNECT, without hanging;
 *   - a batch call of more lines than one request may carry is sent in several, all ok;
 *   - a client that sends requests and stops reading the replies is cut off after
 *     --reply-timeout-ms, and another client is answered meanwhile;
 *   - a server whose log's syncs fail answers writes with E_IO, exits with status 1, and started
 *     again has every write it acknowledged.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "mp.h"
#include "trastenda/client.h"

static char dir[512], req_addr[600], ev_addr[600], data_dir[600];
static pid_t server_pid, follower_pid;

static bool failed;

#if defined(__SANITIZE_ADDRESS__)
#define TS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TS_ASAN 1
#endif
#endif
#ifndef TS_ASAN
#define TS_ASAN 0
#endif

/* The server is built with this test: its status names the same build. */
#ifdef NDEBUG
#define BUILD_TEXT "\"build\":\"release\""
#else
#define BUILD_TEXT "\"build\":\"debug\""
#endif

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failed = true;                                                                         \
            fprintf(stderr, "plain_server: FAIL %s:%d: ", __FILE__, __LINE__);                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void
server_kill(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
}

static void
cleanup(void)
{
    server_kill();
    if (follower_pid > 0) {
        kill(follower_pid, SIGKILL);
        waitpid(follower_pid, NULL, 0);
        follower_pid = 0;
    }
    if (failed && dir[0] != '\0') { /* the server's side of the story, and the CLI's */
        char cmd[1500];
        snprintf(cmd, sizeof(cmd), "tail -n 60 '%s/server.log' >&2; cat '%s/cli.err' >&2", dir,
                 dir);
        if (system(cmd) != 0) fprintf(stderr, "(no server log)\n");
    }
    if (dir[0] != '\0') {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
}

static void
on_signal(int sig)
{
    (void)sig;
    cleanup();
    _exit(1);
}

static void
server_start(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char log[700];
        snprintf(log, sizeof(log), "%s/server.log", dir);
        if (freopen(log, "a", stderr) == NULL) _exit(126);
        execl(TS_SERVER_PATH, "trastenda", "--listen", req_addr, "--events", ev_addr, "--repl",
              "none", "--http", "none", "--data", data_dir, "--skus-max", "1000", "--locations-max",
              "16", "--stock-max", "4000", "--holds-max", "20000", "--orders-max", "4000",
              "--keys-max", "40000", "--lines-max", "60000", "--pos-max", "256",
              "--materialize-interval-ms", "50", (char *)NULL);
        _exit(127);
    }
    server_pid = pid;
}

/* SIGTERM, then wait for a clean exit. */
static void
server_stop(void)
{
    CHECK(kill(server_pid, SIGTERM) == 0, "kill");
    int st;
    CHECK(waitpid(server_pid, &st, 0) == server_pid, "waitpid");
    server_pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the server did not stop cleanly (status %d)", st);
}

/* A client of one node: calls time out after timeout_ms, retried `retries` times; in_flight 0:
 * the default. */
static trastenda_client *
client_ex(const char *addr, uint32_t batch_max, uint32_t timeout_ms, uint32_t retries,
          uint32_t in_flight, uint32_t hold_ms)
{
    const char *nodes[] = {addr};
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 1;
    cfg.timeout_ms = timeout_ms;
    cfg.batch_max = batch_max;
    cfg.retries = retries;
    if (in_flight > 0) cfg.in_flight = in_flight;
    cfg.hold_ms = hold_ms;
    trastenda_client *c = NULL;
    char err[256];
    CHECK(trastenda_client_open(&cfg, &c, err, sizeof(err)) == TRASTENDA_OK, "client: %s", err);
    return c;
}

static trastenda_client *
client_of(const char *addr, uint32_t batch_max, uint32_t timeout_ms, uint32_t retries)
{
    return client_ex(addr, batch_max, timeout_ms, retries, 0, 0);
}

static trastenda_client *
client_open(uint32_t batch_max)
{
    trastenda_client_config def;
    trastenda_client_config_default(&def);
    return client_of(req_addr, batch_max, 10000, def.retries);
}

/* Waits until the server answers status. */
static void
server_wait(void)
{
    trastenda_client *c = client_open(16);
    for (int i = 0; i < 200; i++) {
        trastenda_reply r;
        trastenda_args a;
        trastenda_args_init(&a, "status");
        const char *nodes[] = {req_addr};
        (void)nodes;
        if (trastenda_call(c, &a, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK) {
            trastenda_reply_clear(&r);
            trastenda_client_close(c);
            return;
        }
        trastenda_reply_clear(&r);
        usleep(50000);
    }
    CHECK(0, "the server did not come up (see %s/server.log)", dir);
}

static trastenda_reply
call(trastenda_client *c, const trastenda_args *a)
{
    trastenda_reply r;
    trastenda_err e = trastenda_call(c, a, &r);
    CHECK(e == TRASTENDA_OK, "%s: transport %s", a->op, trastenda_err_name(e));
    return r;
}

static trastenda_reply
ok(trastenda_client *c, const trastenda_args *a)
{
    trastenda_reply r = call(c, a);
    CHECK(r.code == TRASTENDA_OK, "%s: %s %s", a->op, r.name, r.msg);
    return r;
}

/* A key of the result map, as JSON text (for checks of fields the reply struct does not hold). */
static bool
has_text(const trastenda_reply *r, const char *needle)
{
    char *j = trastenda_result_json(r);
    bool yes = j != NULL && strstr(j, needle) != NULL;
    if (!yes) fprintf(stderr, "  (result: %s)\n", j != NULL ? j : "?");
    free(j);
    return yes;
}

static int64_t
available(trastenda_client *c, const char *sku)
{
    trastenda_args a;
    trastenda_args_init(&a, "stock");
    a.sku = sku;
    trastenda_reply r = ok(c, &a);
    int64_t v = r.available;
    trastenda_reply_clear(&r);
    return v;
}

/* ---- every operation ---- */

static void
catalog(trastenda_client *c)
{
    trastenda_args a;
    const char *web[] = {"web"};
    const char *locs[3][4] = {{"W1", "42880000", "-8540000", "0"},
                              {"W2", "43360000", "-8410000", "1"},
                              {"W3", "40410000", "-3700000", "2"}};
    for (int i = 0; i < 3; i++) {
        trastenda_args_init(&a, "location.upsert");
        a.loc = locs[i][0];
        a.name = "warehouse";
        a.lat_e6 = atoll(locs[i][1]);
        a.lon_e6 = atoll(locs[i][2]);
        a.priority = atoll(locs[i][3]);
        a.channels = web;
        a.n_channels = 1;
        trastenda_reply r = ok(c, &a);
        trastenda_reply_clear(&r);
    }
    for (int i = 0; i < 10; i++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "S%d", i);
        trastenda_args_init(&a, "sku.upsert");
        a.sku = sku;
        a.reorder_point = 3;
        a.reorder_qty = 20;
        trastenda_reply r = ok(c, &a);
        trastenda_reply_clear(&r);
    }
}

static void
every_operation(trastenda_client *c)
{
    trastenda_args a;
    trastenda_reply r;
    catalog(c);
    trastenda_args_init(&a, "receive");
    a.sku = "S0";
    a.loc = "W1";
    a.qty = 50;
    a.key = "rcv-1";
    r = ok(c, &a);
    CHECK(r.on_hand == 50 && !r.dup, "receive on_hand %" PRId64, r.on_hand);
    trastenda_reply_clear(&r);
    r = ok(c, &a); /* the same key again */
    CHECK(r.dup && r.on_hand == 50, "a replayed key returns the first result");
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "adjust");
    a.sku = "S0";
    a.loc = "W1";
    a.qty = -2;
    a.reason = "damage";
    r = ok(c, &a);
    CHECK(r.on_hand == 48, "adjust");
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "count");
    a.sku = "S0";
    a.loc = "W1";
    a.qty = 47;
    a.expected = 48;
    r = ok(c, &a);
    CHECK(r.on_hand == 47, "count");
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "unsellable");
    a.sku = "S0";
    a.loc = "W1";
    a.qty = 1;
    a.reason = "damage";
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "safety");
    a.sku = "S0";
    a.loc = "W1";
    a.qty = 1;
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "transfer.out");
    a.sku = "S0";
    a.loc = "W1";
    a.to = "W2";
    a.qty = 5;
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "transfer.in");
    a.sku = "S0";
    a.loc = "W2";
    a.qty = 5;
    r = ok(c, &a);
    CHECK(r.on_hand == 5, "transfer in");
    trastenda_reply_clear(&r);
    /* W1: 47 - 1 unsellable - 5 transferred = 41 on hand sellable, safety 1 -> 40; W2: 5 */
    CHECK(available(c, "S0") == 45, "available after stock moves: %" PRId64, available(c, "S0"));
    /* holds */
    trastenda_cline line = {"S0", "W2", 2, 0};
    trastenda_reserve(c, &line, 1, 60000, "cart-1", &r);
    CHECK(r.code == TRASTENDA_OK && r.hold > 0 && r.n_allocs == 1 &&
              strcmp(r.allocs[0].loc, "W2") == 0 && r.allocs[0].qty == 2,
          "reserve: %s", r.msg);
    uint64_t hold = r.hold;
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "extend");
    a.hold = (int64_t)hold;
    a.ttl_ms = 120000;
    r = ok(c, &a);
    CHECK(r.hold == hold && r.expires_ms > 0, "extend");
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "hold");
    a.hold = (int64_t)hold;
    r = ok(c, &a);
    CHECK(has_text(&r, "\"state\":\"open\""), "hold read");
    trastenda_reply_clear(&r);
    trastenda_confirm(c, hold, "ORD-1", &r);
    CHECK(r.code == TRASTENDA_OK && r.order_no > 0, "confirm: %s", r.msg);
    trastenda_reply_clear(&r);
    trastenda_reserve(c, &line, 1, 60000, NULL, &r);
    CHECK(r.code == TRASTENDA_OK, "second reserve");
    uint64_t second = r.hold;
    trastenda_reply_clear(&r);
    trastenda_release(c, second, &r);
    CHECK(r.code == TRASTENDA_OK, "release: %s", r.msg);
    trastenda_reply_clear(&r);
    /* orders */
    const char *steps[] = {"order.pick", "order.pack", "order.ship", "order.deliver"};
    const char *states[] = {"picking", "packed", "shipped", "delivered"};
    for (int i = 0; i < 4; i++) {
        trastenda_args_init(&a, steps[i]);
        a.order = "ORD-1";
        r = ok(c, &a);
        CHECK(strcmp(r.state, states[i]) == 0, "%s -> %s", steps[i], r.state);
        trastenda_reply_clear(&r);
    }
    trastenda_cline oline = {"S0", NULL, 3, 0};
    trastenda_order_place(c, "ORD-2", &oline, 1, "web", 42880000, -8540000, &r);
    CHECK(r.code == TRASTENDA_OK && r.n_allocs >= 1, "order.place: %s", r.msg);
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "order");
    a.order = "ORD-2";
    r = ok(c, &a);
    CHECK(has_text(&r, "\"order\":\"ORD-2\""), "order read");
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "order.cancel");
    a.order = "ORD-2";
    r = ok(c, &a);
    CHECK(strcmp(r.state, "cancelled") == 0, "cancel");
    trastenda_reply_clear(&r);
    trastenda_cline rline = {"S0", "W2", 1, 0};
    trastenda_args_init(&a, "order.return");
    a.order = "ORD-1";
    a.lines = &rline;
    a.n_lines = 1;
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    /* purchase orders */
    trastenda_cline pline = {"S1", "W3", 30, 0};
    trastenda_args_init(&a, "po.create");
    a.po = "PO-1";
    a.lines = &pline;
    a.n_lines = 1;
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    pline.qty = 10;
    trastenda_args_init(&a, "po.receive");
    a.po = "PO-1";
    a.lines = &pline;
    a.n_lines = 1;
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "po");
    a.po = "PO-1";
    r = ok(c, &a);
    CHECK(has_text(&r, "\"received\":10"), "po read");
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "po.close");
    a.po = "PO-1";
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    /* reads */
    trastenda_args_init(&a, "low_stock");
    a.limit = 50;
    r = ok(c, &a);
    CHECK(has_text(&r, "\"rows\":["), "low stock");
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "reorder");
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "ledger");
    a.sku = "S0";
    a.limit = 100;
    r = ok(c, &a);
    CHECK(has_text(&r, "\"move\":\"receive\"") && has_text(&r, "\"move\":\"ship\""), "ledger");
    trastenda_reply_clear(&r);
    trastenda_status(c, &r);
    char pid_text[40];
    snprintf(pid_text, sizeof(pid_text), "\"pid\":%d,", (int)server_pid);
    CHECK(r.code == TRASTENDA_OK && has_text(&r, "\"role\":\"leader\"") &&
              has_text(&r, "\"durability\":\"fsync\"") && has_text(&r, pid_text) &&
              has_text(&r, BUILD_TEXT),
          "status");
    trastenda_reply_clear(&r);
    char bdir[700];
    snprintf(bdir, sizeof(bdir), "%s/backup", dir);
    trastenda_args_init(&a, "backup");
    a.dir = bdir;
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    /* errors come back with their codes */
    trastenda_reserve(c, &(trastenda_cline){"S9", "W1", 1, 0}, 1, 60000, NULL, &r);
    CHECK(r.code == TRASTENDA_E_SHORT && r.n_allocs == 1 && r.allocs[0].short_qty == 1, "short: %s",
          r.name);
    trastenda_reply_clear(&r);
    trastenda_args_init(&a, "order.pick");
    a.order = "NOPE";
    r = call(c, &a);
    CHECK(r.code == TRASTENDA_E_UNKNOWN_ORDER, "unknown order: %s", r.name);
    trastenda_reply_clear(&r);
}

/* ---- events ---- */

static void
events(trastenda_client *c)
{
    nng_socket sub;
    CHECK(nng_sub0_open(&sub) == 0, "sub");
    nng_socket_set_size(sub, NNG_OPT_RECVMAXSZ, 1 << 20);
    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 5000);
    CHECK(nng_dial(sub, ev_addr, NULL, 0) == 0, "dial events");
    usleep(200000); /* PUB drops what is sent before the subscription is in place */
    trastenda_reply r;
    trastenda_status(c, &r);
    uint64_t since = r.seq;
    trastenda_reply_clear(&r);
    /* S5 at W3: receive 2 (back in stock), reserve 2 (out of stock), release (back in stock) */
    trastenda_receive(c, "S5", "W3", 2, NULL, &r);
    trastenda_reply_clear(&r);
    trastenda_reserve(c, &(trastenda_cline){"S5", "W3", 2, 0}, 1, 60000, NULL, &r);
    uint64_t hold = r.hold;
    trastenda_reply_clear(&r);
    trastenda_release(c, hold, &r);
    trastenda_reply_clear(&r);
    const char *want[] = {"back_in_stock", "out_of_stock", "back_in_stock"};
    int seen = 0;
    uint64_t last_seq = 0;
    while (seen < 3) {
        nng_msg *m;
        CHECK(nng_recvmsg(sub, &m, 0) == 0, "event %d not received", seen);
        const char *body = nng_msg_body(m);
        size_t len = nng_msg_len(m);
        const char *sp = memchr(body, ' ', len);
        CHECK(sp != NULL, "topic");
        char *j = trastenda_msgpack_json((const uint8_t *)sp + 1, len - (size_t)(sp + 1 - body));
        CHECK(j != NULL, "event body");
        if (strstr(j, "\"sku\":\"S5\"") != NULL && strstr(j, "low_stock") == NULL) {
            CHECK(strncmp(body, want[seen], strlen(want[seen])) == 0, "event %d: %s", seen, j);
            const char *sq = strstr(j, "\"seq\":");
            uint64_t s = sq != NULL ? strtoull(sq + 6, NULL, 10) : 0;
            CHECK(s > last_seq, "event seqs increase");
            last_seq = s;
            seen++;
        }
        free(j);
        nng_msg_free(m);
    }
    nng_close(sub);
    /* the same, by request: events since the sequence before the scenario */
    trastenda_args a;
    trastenda_args_init(&a, "events");
    a.since = (int64_t)since;
    a.limit = 100;
    r = ok(c, &a);
    char *j = trastenda_result_json(&r);
    const char *p = j;
    for (int i = 0; i < 3; i++) {
        p = strstr(p, want[i]);
        CHECK(p != NULL, "events since: %s missing in order (%s)", want[i], j);
        p++;
    }
    free(j);
    trastenda_reply_clear(&r);
}

/* ---- the CLI ---- */

static int
cli(const char *args)
{
    char cmd[2048];
    /* A generous timeout: the machines running the tests are shared (fsync may stall). */
    snprintf(cmd, sizeof(cmd), "%s --server '%s' --timeout-ms 15000 %s >/dev/null 2>>'%s/cli.err'",
             TS_CLI_PATH, req_addr, args, dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : -1;
}

static void
cli_checks(void)
{
    CHECK(cli("status") == 0, "cli status");
    CHECK(cli("receive --sku S2 --loc W1 --qty 7") == 0, "cli receive");
    CHECK(cli("stock --sku S2") == 0, "cli stock");
    CHECK(cli("--json reserve --line S2@W1:1 --ttl-ms 60000") == 0, "cli reserve");
    CHECK(cli("reserve --line S2@W1:100 --ttl-ms 60000") == 1, "cli: a failed op exits 1");
    CHECK(cli("reserve --line S2@W1 --ttl-ms 60000") == 2, "cli: a bad line is usage");
    CHECK(cli("frobnicate") == 2, "cli: unknown command");
    CHECK(cli("order place --help") == 0, "cli help");
    CHECK(cli("watch --help") == 0, "cli watch --help (it used to start watching)");
    CHECK(cli("expiring --limit 5") == 0, "cli expiring");
    CHECK(cli("location --loc CLI-LOC --name cli") == 0, "cli location");
    CHECK(cli("location deactivate --loc CLI-LOC") == 0, "cli location deactivate");
    CHECK(cli("location deactivate --loc NOWHERE") == 1, "cli: deactivating an unknown location");
    CHECK(cli("sku deactivate --sku S9") == 0, "cli sku deactivate");
    CHECK(cli("--json sku --sku S9 --name back") == 0, "cli sku (active again)");
    CHECK(cli("transfer --sku S2 --loc W1 --to W2 --qty 1") == 0, "cli transfer");
    CHECK(cli("transfer in --sku S2 --loc W2 --qty 1") == 0, "cli transfer in");
    CHECK(cli("adjust --sku S2 --loc W1 --qty -1 --reason damage") == 0, "cli adjust");
    CHECK(cli("count --sku S2 --loc W1 --qty 1000 --expected 1") == 1,
          "cli count: a stale expected count is refused");
    CHECK(cli("ledger --sku S2 --limit 3") == 0, "cli ledger");
    CHECK(cli("low-stock --limit 3") == 0 && cli("reorder --limit 3") == 0,
          "cli low-stock, reorder");
    CHECK(cli("events --since 0 --limit 3") == 0 && cli("digest") == 0, "cli events, digest");
    CHECK(cli("watch --topic") == 2, "cli watch: a flag without its value is usage");
    /* export: the SKUs back as CSV, a header and one line per SKU (S0..S9 so far) */
    char args[1024], path[700];
    snprintf(path, sizeof(path), "%s/skus.csv", dir);
    snprintf(args, sizeof(args), "export --skus '%s'", path);
    int erc = cli(args);
    CHECK(erc == 0, "cli export: exit %d", erc);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "export file");
    int lines = 0;
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL)
        lines++;
    fclose(f);
    CHECK(lines == 11, "export wrote %d lines", lines);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s --server ipc://%s/nobody --timeout-ms 300 status >/dev/null 2>&1", TS_CLI_PATH,
             dir);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3, "cli: unreachable exits 3");
}

/* ---- every typed call of the client library ---- */

/* The reply's code is ok (the transport too); the reply is cleared unless out is given. */
static void
ok_typed(trastenda_err e, trastenda_reply *r, const char *what, trastenda_reply *out)
{
    CHECK(e == TRASTENDA_OK, "%s: transport %s", what, trastenda_err_name(e));
    CHECK(r->code == TRASTENDA_OK, "%s: %s %s", what, r->name, r->msg);
    if (out != NULL)
        *out = *r;
    else
        trastenda_reply_clear(r);
}

static void
typed_calls(trastenda_client *c)
{
    trastenda_reply r, keep;
    ok_typed(trastenda_sku_upsert(c, "T1", "typed", &r), &r, "sku_upsert", NULL);
    ok_typed(trastenda_location_upsert(c, "TL", "typed", 42000000, -8000000, &r), &r,
             "location_upsert", NULL);
    ok_typed(trastenda_location_deactivate(c, "TL", &r), &r, "location_deactivate", NULL);
    ok_typed(trastenda_receive(c, "T1", "W1", 100, NULL, &r), &r, "receive", NULL);
    ok_typed(trastenda_adjust(c, "T1", "W1", -10, "damage", NULL, &r), &r, "adjust", &keep);
    CHECK(keep.on_hand == 90, "adjust: on_hand %" PRId64, keep.on_hand);
    trastenda_reply_clear(&keep);
    ok_typed(trastenda_count(c, "T1", "W1", 80, "count", NULL, &r), &r, "count", &keep);
    CHECK(keep.on_hand == 80, "count: on_hand %" PRId64, keep.on_hand);
    trastenda_reply_clear(&keep);
    ok_typed(trastenda_unsellable(c, "T1", "W1", 5, "damage", NULL, &r), &r, "unsellable", NULL);
    ok_typed(trastenda_safety(c, "T1", "W1", 2, NULL, &r), &r, "safety", NULL);
    ok_typed(trastenda_transfer_out(c, "T1", "W1", "W2", 10, NULL, &r), &r, "transfer_out", NULL);
    ok_typed(trastenda_transfer_in(c, "T1", "W2", 10, NULL, &r), &r, "transfer_in", NULL);
    /* W1: 80 on hand - 10 sent - 5 unsellable - 2 safety = 63; W2: 10. */
    CHECK(available(c, "T1") == 73, "available after the stock commands: %" PRId64,
          available(c, "T1"));
    trastenda_cline line = {"T1", "W1", 3, 0};
    ok_typed(trastenda_reserve(c, &line, 1, 60000, NULL, &r), &r, "reserve", &keep);
    uint64_t hold = keep.hold;
    trastenda_reply_clear(&keep);
    ok_typed(trastenda_extend(c, hold, 120000, &r), &r, "extend", NULL);
    ok_typed(trastenda_hold_get(c, hold, &r), &r, "hold_get", NULL);
    ok_typed(trastenda_release(c, hold, &r), &r, "release", NULL);
    trastenda_cline routed = {"T1", NULL, 2, 0};
    ok_typed(trastenda_order_place(c, "T-ORD-1", &routed, 1, "web", 42880000, -8540000, &r), &r,
             "order_place", NULL);
    ok_typed(trastenda_order_pick(c, "T-ORD-1", NULL, &r), &r, "order_pick", NULL);
    ok_typed(trastenda_order_pack(c, "T-ORD-1", NULL, &r), &r, "order_pack", NULL);
    ok_typed(trastenda_order_ship(c, "T-ORD-1", NULL, &r), &r, "order_ship", NULL);
    ok_typed(trastenda_order_deliver(c, "T-ORD-1", &r), &r, "order_deliver", NULL);
    trastenda_cline back = {"T1", "W1", 1, 0};
    ok_typed(trastenda_order_return(c, "T-ORD-1", &back, 1, NULL, &r), &r, "order_return", NULL);
    ok_typed(trastenda_order_get(c, "T-ORD-1", &r), &r, "order_get", NULL);
    ok_typed(trastenda_order_place(c, "T-ORD-2", &routed, 1, "web", 42880000, -8540000, &r), &r,
             "order_place", NULL);
    ok_typed(trastenda_order_cancel(c, "T-ORD-2", &r), &r, "order_cancel", NULL);
    trastenda_cline po_line = {"T1", "W1", 5, 0};
    ok_typed(trastenda_po_create(c, "T-PO-1", &po_line, 1, &r), &r, "po_create", NULL);
    trastenda_cline part = {"T1", "W1", 3, 0}; /* 2 still to come: close ends the wait */
    ok_typed(trastenda_po_receive(c, "T-PO-1", &part, 1, NULL, &r), &r, "po_receive", NULL);
    ok_typed(trastenda_po_close(c, "T-PO-1", &r), &r, "po_close", NULL);
    ok_typed(trastenda_po_get(c, "T-PO-1", &r), &r, "po_get", NULL);
    ok_typed(trastenda_noop(c, &r), &r, "noop", NULL);
    ok_typed(trastenda_low_stock(c, 0, 10, &r), &r, "low_stock", NULL);
    ok_typed(trastenda_reorder_suggestions(c, 0, 10, &r), &r, "reorder_suggestions", NULL);
    ok_typed(trastenda_ledger(c, "T1", NULL, 0, 10, &r), &r, "ledger", &keep);
    char *j = trastenda_result_json(&keep);
    CHECK(j != NULL && strstr(j, "\"move\":\"po_close\"") != NULL,
          "the ledger's newest movement is the close: %s", j != NULL ? j : "?");
    free(j);
    trastenda_reply_clear(&keep);
    ok_typed(trastenda_events(c, 0, 10, &r), &r, "events", NULL);
    ok_typed(trastenda_stock_list(c, 0, 10, &r), &r, "stock_list", NULL);
    ok_typed(trastenda_sku_list(c, 0, 10, &r), &r, "sku_list", NULL);
    ok_typed(trastenda_location_list(c, 0, 10, &r), &r, "location_list", NULL);
    ok_typed(trastenda_holds_expiring(c, 10, &r), &r, "holds_expiring", NULL);
    ok_typed(trastenda_digest(c, &r), &r, "digest", NULL);
    CHECK(trastenda_promote(c, false, &r) == TRASTENDA_OK && r.code == TRASTENDA_E_INVALID,
          "promote on the leader: %s %s", r.name, r.msg);
    trastenda_reply_clear(&r);
    char bdir[700];
    snprintf(bdir, sizeof(bdir), "%s/typed-backup", dir);
    ok_typed(trastenda_backup(c, bdir, &r), &r, "backup", NULL);
    CHECK(access(bdir, F_OK) == 0, "the backup directory %s", bdir);
}

/* ---- 32 threads, one client ---- */

#define THREADS 32
#define HOT     10
#define UNITS   60

static trastenda_client *shared;
static uint64_t sold[HOT];

/* HOT SKUs "<prefix>0".."<prefix>9" with UNITS units each at W1, on the shared client. */
static void
hot_skus_make(const char *prefix)
{
    for (int k = 0; k < HOT; k++) {
        char sku[8];
        snprintf(sku, sizeof(sku), "%s%d", prefix, k);
        trastenda_args a;
        trastenda_args_init(&a, "sku.upsert");
        a.sku = sku;
        trastenda_reply r = ok(shared, &a);
        trastenda_reply_clear(&r);
        trastenda_receive(shared, sku, "W1", UNITS, NULL, &r);
        CHECK(r.code == TRASTENDA_OK, "receive");
        trastenda_reply_clear(&r);
    }
}

/* Each of those SKUs sold exactly its UNITS (counted by the sellers), none left available. */
static void
hot_skus_sold(const uint64_t *counted, const char *prefix)
{
    for (int k = 0; k < HOT; k++) {
        char sku[8];
        snprintf(sku, sizeof(sku), "%s%d", prefix, k);
        CHECK(counted[k] == UNITS, "%s: sold %" PRIu64 " of %d", sku, counted[k], UNITS);
        CHECK(available(shared, sku) == 0, "%s still available", sku);
    }
}

static void *
shopper(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (id + 1);
    uint32_t misses = 0;
    for (uint32_t n = 0; misses < 3 * HOT; n++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((rng >> 33) % HOT);
        char sku[8], key[32];
        snprintf(sku, sizeof(sku), "H%d", k);
        snprintf(key, sizeof(key), "t%u-%u", (unsigned)id, n);
        trastenda_cline line = {sku, "W1", 1, 0};
        trastenda_reply r;
        trastenda_err e = trastenda_reserve(shared, &line, 1, 600000, key, &r);
        CHECK(e == TRASTENDA_OK, "transport: %s", trastenda_err_name(e));
        if (r.code == TRASTENDA_OK) {
            /* my own result: the SKU I asked for */
            CHECK(r.n_allocs == 1 && strcmp(r.allocs[0].sku, sku) == 0,
                  "a reply for another caller's request");
            __atomic_fetch_add(&sold[k], 1, __ATOMIC_RELAXED);
            misses = 0;
        } else {
            CHECK(r.code == TRASTENDA_E_SHORT, "reserve: %s %s", r.name, r.msg);
            misses++;
        }
        trastenda_reply_clear(&r);
    }
    return NULL;
}

static void
flash_sale(void)
{
    shared = client_open(256);
    hot_skus_make("H");
    pthread_t th[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, shopper, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    hot_skus_sold(sold, "H");
    trastenda_client_close(shared);
}

/* ---- asynchronous calls: shoppers driven by their completions ---- */

static void
last_done(void *arg, trastenda_err status)
{
    *(trastenda_err *)arg = status;
}

#define CLOSE_CALLS 400
static atomic_uint close_done, close_bad;

static void
count_done(void *arg, trastenda_err status)
{
    (void)arg;
    if (status != TRASTENDA_OK && status != TRASTENDA_E_CONNECT) atomic_fetch_add(&close_bad, 1);
    atomic_fetch_add(&close_done, 1);
}

#define ASHOPPERS 64

struct ashopper {
    uint32_t id, n, misses;
    char sku[8], key[32];
    trastenda_cline line;
    trastenda_args args;
    trastenda_reply reply;
};

static struct ashopper ashoppers[ASHOPPERS];
static uint64_t async_sold[HOT];
static atomic_uint async_active;
static pthread_mutex_t async_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t async_cv = PTHREAD_COND_INITIALIZER;

static void ashopper_done(void *arg, trastenda_err status);

/* The shopper's next reserve; false when it stops (3 HOT misses in a row). */
static bool
ashopper_next(struct ashopper *a)
{
    if (a->misses >= 3 * HOT) return false;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (a->id + 1) + 0xd1b54a32d192ed03ull * a->n;
    rng ^= rng >> 29;
    snprintf(a->sku, sizeof(a->sku), "A%d", (int)(rng % HOT));
    snprintf(a->key, sizeof(a->key), "a%u-%u", a->id, a->n++);
    a->line = (trastenda_cline){a->sku, "W1", 1, 0};
    trastenda_args_init(&a->args, "reserve");
    a->args.lines = &a->line;
    a->args.n_lines = 1;
    a->args.ttl_ms = 600000;
    a->args.key = a->key;
    CHECK(trastenda_call_async(shared, &a->args, 1, &a->reply, ashopper_done, a) == TRASTENDA_OK,
          "call_async refused a reserve");
    return true;
}

/* A completion: count the unit, and the next reserve from this I/O thread (corked). */
static void
ashopper_done(void *arg, trastenda_err status)
{
    struct ashopper *a = arg;
    CHECK(status == TRASTENDA_OK, "async transport: %s", trastenda_err_name(status));
    if (a->reply.code == TRASTENDA_OK) {
        CHECK(a->reply.n_allocs == 1 && strcmp(a->reply.allocs[0].sku, a->sku) == 0,
              "an async reply for another shopper's request");
        __atomic_fetch_add(&async_sold[a->sku[1] - '0'], 1, __ATOMIC_RELAXED);
        a->misses = 0;
    } else {
        CHECK(a->reply.code == TRASTENDA_E_SHORT, "async reserve: %s %s", a->reply.name,
              a->reply.msg);
        a->misses++;
    }
    trastenda_reply_clear(&a->reply);
    if (!ashopper_next(a) && atomic_fetch_sub(&async_active, 1) == 1) {
        pthread_mutex_lock(&async_mu);
        pthread_cond_signal(&async_cv);
        pthread_mutex_unlock(&async_mu);
    }
}

static uint64_t
requests_served(trastenda_client *c)
{
    trastenda_reply r;
    CHECK(trastenda_status(c, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK, "status");
    char *j = trastenda_result_json(&r);
    const char *p = j != NULL ? strstr(j, "\"requests\":") : NULL;
    CHECK(p != NULL, "status without a requests counter");
    uint64_t n = strtoull(p + strlen("\"requests\":"), NULL, 10);
    free(j);
    trastenda_reply_clear(&r);
    return n;
}

/* 64 shoppers on one client, no thread of their own: each completion makes the next call. Sold =
 * stock exactly, each reply its own; the first wave, made corked, and the completions' calls
 * travel in shared requests (fewer requests than calls); closing with calls queued ends them. */
static void
async_flash_sale(void)
{
    shared = client_open(256);
    hot_skus_make("A");
    uint64_t req0 = requests_served(shared);
    atomic_init(&async_active, ASHOPPERS);
    trastenda_client_cork(shared);
    for (uint32_t i = 0; i < ASHOPPERS; i++) {
        ashoppers[i].id = i;
        ashopper_next(&ashoppers[i]);
    }
    trastenda_client_uncork(shared);
    pthread_mutex_lock(&async_mu);
    while (atomic_load(&async_active) > 0)
        pthread_cond_wait(&async_cv, &async_mu);
    pthread_mutex_unlock(&async_mu);
    uint64_t calls = 0;
    for (uint32_t i = 0; i < ASHOPPERS; i++)
        calls += ashoppers[i].n;
    uint64_t requests = requests_served(shared) - req0 - 1; /* less this status call */
    CHECK(requests < calls / 4, "%" PRIu64 " requests for %" PRIu64 " calls: not batched", requests,
          calls);
    hot_skus_sold(async_sold, "A");
    /* queued (corked) calls end with E_CONNECT when the client closes */
    static trastenda_args la[3];
    static trastenda_reply lr[3];
    static trastenda_err lst = TRASTENDA_OK;
    for (int i = 0; i < 3; i++) {
        trastenda_args_init(&la[i], "stock");
        la[i].sku = "A0";
    }
    trastenda_client_cork(shared);
    CHECK(trastenda_call_async(shared, la, 3, lr, last_done, &lst) == TRASTENDA_OK, "call_async");
    trastenda_client_close(shared);
    CHECK(lst == TRASTENDA_E_CONNECT && lr[2].code == TRASTENDA_E_CONNECT,
          "a queued call at close: %s", trastenda_err_name(lst));
    CHECK(trastenda_call_async(NULL, la, 3, lr, last_done, &lst) == TRASTENDA_E_INVALID,
          "call_async without a client");
    /* Closing with calls in flight and queued: each completion runs exactly once, with its
     * result or E_CONNECT. */
    static trastenda_reply cr[CLOSE_CALLS];
    trastenda_client *c = client_open(4);
    for (uint32_t i = 0; i < CLOSE_CALLS; i++)
        CHECK(trastenda_call_async(c, &la[0], 1, &cr[i], count_done, NULL) == TRASTENDA_OK,
              "call_async before the close");
    trastenda_client_close(c);
    CHECK(atomic_load(&close_done) == CLOSE_CALLS && atomic_load(&close_bad) == 0,
          "%u of %u completions at close (%u with another status)", atomic_load(&close_done),
          CLOSE_CALLS, atomic_load(&close_bad));
    for (uint32_t i = 0; i < CLOSE_CALLS; i++)
        trastenda_reply_clear(&cr[i]);
}

/* ---- small batches held while a request is in flight (trastenda_client_config.hold_ms) ---- */

static int64_t now_ms(void);

#define HELD_CALLS 20
static atomic_uint held_ok, held_done_n;

static void
held_done(void *arg, trastenda_err status)
{
    (void)arg;
    if (status == TRASTENDA_OK) atomic_fetch_add(&held_ok, 1);
    atomic_fetch_add(&held_done_n, 1);
}

/* A durable write, then HELD_CALLS stock checks made one by one while it is in flight, on a
 * client of 4 slots: the requests the server received for them. The server is stopped (SIGSTOP)
 * while the calls are made, so that no reply comes between them and the counts are exact. With
 * close_at_once the client closes right after the calls: held calls end as queued ones do
 * (E_CONNECT), each once. */
static uint64_t
held_requests(uint32_t hold_ms, bool close_at_once)
{
    trastenda_client *c = client_ex(req_addr, 256, 10000, 3, 4, hold_ms), *count = client_open(16);
    uint64_t r0 = requests_served(count);
    static trastenda_args w, s[HELD_CALLS];
    static trastenda_reply wr, sr[HELD_CALLS];
    atomic_store(&held_ok, 0);
    atomic_store(&held_done_n, 0);
    trastenda_args_init(&w, "receive");
    w.sku = "A0";
    w.loc = "W1";
    w.qty = 1;
    CHECK(kill(server_pid, SIGSTOP) == 0, "SIGSTOP");
    CHECK(trastenda_call_async(c, &w, 1, &wr, held_done, NULL) == TRASTENDA_OK, "a write");
    for (uint32_t i = 0; i < HELD_CALLS; i++) {
        trastenda_args_init(&s[i], "stock");
        s[i].sku = "A0";
        CHECK(trastenda_call_async(c, &s[i], 1, &sr[i], held_done, NULL) == TRASTENDA_OK,
              "a stock check");
    }
    CHECK(kill(server_pid, SIGCONT) == 0, "SIGCONT");
    for (int64_t end = now_ms() + 10000;
         !close_at_once && atomic_load(&held_done_n) < HELD_CALLS + 1 && now_ms() < end;)
        usleep(1000);
    trastenda_client_close(c);
    CHECK(
        atomic_load(&held_done_n) == HELD_CALLS + 1 &&
            (close_at_once ? atomic_load(&held_ok) >= 1 : atomic_load(&held_ok) == HELD_CALLS + 1),
        "hold %u ms%s: %u of %u calls ended, %u succeeded", hold_ms,
        close_at_once ? ", closed at once" : "", atomic_load(&held_done_n), HELD_CALLS + 1,
        atomic_load(&held_ok));
    uint64_t n = requests_served(count) - r0 - 1; /* less the status call */
    trastenda_client_close(count);
    trastenda_reply_clear(&wr);
    for (uint32_t i = 0; i < HELD_CALLS; i++)
        trastenda_reply_clear(&sr[i]);
    return n;
}

static void
held_batches(void)
{
    /* Without holding, the first check takes an idle slot; reads keep one request in flight to a
     * node unless their batch is large, so the rest leave together with its reply. */
    uint64_t free_n = held_requests(0, false);
    CHECK(free_n == 3, "without holding, %" PRIu64 " requests for a write and %d checks", free_n,
          HELD_CALLS);
    /* A large batch of reads (batch_max / 4 calls, here 2) leaves beside a read in flight. */
    {
        trastenda_client *c = client_ex(req_addr, 8, 10000, 3, 4, 0), *count = client_open(16);
        static trastenda_args k[4];
        static trastenda_reply kr[4];
        for (int i = 0; i < 4; i++) {
            trastenda_args_init(&k[i], "stock");
            k[i].sku = "A0";
        }
        atomic_store(&held_ok, 0);
        atomic_store(&held_done_n, 0);
        uint64_t r0 = requests_served(count);
        CHECK(kill(server_pid, SIGSTOP) == 0, "SIGSTOP");
        CHECK(trastenda_call_async(c, &k[0], 1, &kr[0], held_done, NULL) == TRASTENDA_OK &&
                  trastenda_call_async(c, &k[1], 2, &kr[1], held_done, NULL) == TRASTENDA_OK &&
                  trastenda_call_async(c, &k[3], 1, &kr[3], held_done, NULL) == TRASTENDA_OK,
              "checks");
        CHECK(kill(server_pid, SIGCONT) == 0, "SIGCONT");
        for (int64_t end = now_ms() + 10000; atomic_load(&held_done_n) < 3 && now_ms() < end;)
            usleep(1000);
        CHECK(atomic_load(&held_ok) == 3, "%u of 3 check calls succeeded", atomic_load(&held_ok));
        uint64_t n = requests_served(count) - r0 - 1;
        CHECK(n == 3, "%" PRIu64 " requests for a check, a batch of 2 beside it, then a check", n);
        trastenda_client_close(c);
        trastenda_client_close(count);
        for (int i = 0; i < 4; i++)
            trastenda_reply_clear(&kr[i]);
    }
    /* Held, they wait for the write's reply and leave together. */
    uint64_t held_n = held_requests(60000, false);
    CHECK(held_n == 2, "held, %" PRIu64 " requests for a write and %d checks", held_n, HELD_CALLS);
    (void)held_requests(60000, true);
    printf("plain_server: a write and %d checks made while it was in flight: %" PRIu64
           " requests, %" PRIu64 " with small batches held\n",
           HELD_CALLS, free_n, held_n);
}

/* ---- reads leave apart from other callers' writes ---- */

#define SPLIT_PAIRS 10

/* The requests a client of one slot sends for a write in flight, then SPLIT_PAIRS stock checks
 * and SPLIT_PAIRS writes made alternately by other callers while it is (the server stopped, so
 * the counts are exact): the write, the checks together (no fsync to wait for), the writes
 * together, 3. Calls made together (one call_async) stay together: a write and a check, 1. */
static void
reads_leave_apart_from_writes(void)
{
    trastenda_client *c = client_ex(req_addr, 256, 10000, 3, 1, 0), *count = client_open(16);
    static trastenda_args w[SPLIT_PAIRS + 1], k[SPLIT_PAIRS], both[2];
    static trastenda_reply wr[SPLIT_PAIRS + 1], kr[SPLIT_PAIRS], br[2];
    for (uint32_t i = 0; i <= SPLIT_PAIRS; i++) {
        trastenda_args_init(&w[i], "receive");
        w[i].sku = "A0";
        w[i].loc = "W1";
        w[i].qty = 1;
    }
    for (uint32_t i = 0; i < SPLIT_PAIRS; i++) {
        trastenda_args_init(&k[i], "stock");
        k[i].sku = "A0";
    }
    atomic_store(&held_ok, 0);
    atomic_store(&held_done_n, 0);
    int64_t base = available(count, "A0");
    uint64_t r0 = requests_served(count);
    CHECK(kill(server_pid, SIGSTOP) == 0, "SIGSTOP");
    CHECK(trastenda_call_async(c, &w[0], 1, &wr[0], held_done, NULL) == TRASTENDA_OK, "a write");
    for (uint32_t i = 0; i < SPLIT_PAIRS; i++)
        CHECK(trastenda_call_async(c, &k[i], 1, &kr[i], held_done, NULL) == TRASTENDA_OK &&
                  trastenda_call_async(c, &w[i + 1], 1, &wr[i + 1], held_done, NULL) ==
                      TRASTENDA_OK,
              "a check and a write");
    CHECK(kill(server_pid, SIGCONT) == 0, "SIGCONT");
    for (int64_t end = now_ms() + 10000;
         atomic_load(&held_done_n) < 2 * SPLIT_PAIRS + 1 && now_ms() < end;)
        usleep(1000);
    CHECK(atomic_load(&held_ok) == 2 * SPLIT_PAIRS + 1, "%u of %u calls succeeded",
          atomic_load(&held_ok), 2 * SPLIT_PAIRS + 1);
    uint64_t n = requests_served(count) - r0 - 1; /* less the first status call */
    CHECK(n == 3, "%" PRIu64 " requests for a write in flight, then %d checks and %d writes", n,
          SPLIT_PAIRS, SPLIT_PAIRS);
    /* The checks left before the writes queued with them (after the first write's reply). */
    for (uint32_t i = 0; i < SPLIT_PAIRS; i++)
        CHECK(kr[i].available == base + 1,
              "check %u saw %" PRId64 " available, not %" PRId64 " (after the first write only)", i,
              kr[i].available, base + 1);
    /* One call of a write and a check: one request, the check after the write. */
    trastenda_args_init(&both[0], "receive");
    both[0].sku = "A0";
    both[0].loc = "W1";
    both[0].qty = 1;
    trastenda_args_init(&both[1], "stock");
    both[1].sku = "A0";
    atomic_store(&held_ok, 0);
    atomic_store(&held_done_n, 0);
    r0 = requests_served(count);
    CHECK(trastenda_call_async(c, both, 2, br, held_done, NULL) == TRASTENDA_OK, "write + check");
    for (int64_t end = now_ms() + 10000; atomic_load(&held_done_n) < 1 && now_ms() < end;)
        usleep(1000);
    CHECK(atomic_load(&held_ok) == 1 && br[0].code == TRASTENDA_OK && br[1].code == TRASTENDA_OK,
          "a write and a check in one call: %s / %s", br[0].name, br[1].name);
    n = requests_served(count) - r0 - 1;
    CHECK(n == 1, "%" PRIu64 " requests for a write and a check made in one call", n);
    CHECK(br[1].available == base + SPLIT_PAIRS + 2,
          "the check made with a write saw %" PRId64 " available, not %" PRId64, br[1].available,
          base + SPLIT_PAIRS + 2);
    trastenda_client_close(c);
    trastenda_client_close(count);
    for (uint32_t i = 0; i <= SPLIT_PAIRS; i++)
        trastenda_reply_clear(&wr[i]);
    for (uint32_t i = 0; i < SPLIT_PAIRS; i++)
        trastenda_reply_clear(&kr[i]);
    trastenda_reply_clear(&br[0]);
    trastenda_reply_clear(&br[1]);
    printf("plain_server: checks queued among other callers' writes leave in a request of their "
           "own; a write and a check made in one call stay together\n");
}

/* ---- a stock check is not held behind a read that waits for a min_seq ---- */

static atomic_uint slow_order, slow_at[2];

static void
slow_done(void *arg, trastenda_err status)
{
    (void)status;
    atomic_store(&slow_at[(uintptr_t)arg], atomic_fetch_add(&slow_order, 1) + 1);
}

/* A check waiting on the server for a sequence not reached yet (up to its min_seq timeout, 2 s),
 * then a plain one: the plain one leaves on another slot and ends first (held behind the first,
 * it would end after it). */
static void
checks_are_not_held_behind_a_min_seq_wait(void)
{
    trastenda_client *c = client_ex(req_addr, 256, 10000, 3, 4, 0);
    trastenda_reply st;
    CHECK(trastenda_status(c, &st) == TRASTENDA_OK && st.code == TRASTENDA_OK, "status: %s",
          st.msg);
    static trastenda_args k[2];
    static trastenda_reply kr[2];
    for (int i = 0; i < 2; i++) {
        trastenda_args_init(&k[i], "stock");
        k[i].sku = "A0";
    }
    k[0].min_seq = st.seq + 1000000;
    trastenda_reply_clear(&st);
    atomic_store(&slow_order, 0);
    atomic_store(&slow_at[0], 0);
    atomic_store(&slow_at[1], 0);
    CHECK(trastenda_call_async(c, &k[0], 1, &kr[0], slow_done, (void *)(uintptr_t)0) ==
                  TRASTENDA_OK &&
              trastenda_call_async(c, &k[1], 1, &kr[1], slow_done, (void *)(uintptr_t)1) ==
                  TRASTENDA_OK,
          "two checks");
    for (int64_t end = now_ms() + 10000; atomic_load(&slow_order) < 2 && now_ms() < end;)
        usleep(1000);
    CHECK(atomic_load(&slow_at[1]) == 1 && atomic_load(&slow_at[0]) == 2,
          "the plain check ended %u-th, the one waiting for a min_seq %u-th",
          atomic_load(&slow_at[1]), atomic_load(&slow_at[0]));
    CHECK(kr[1].code == TRASTENDA_OK && kr[0].code != TRASTENDA_OK,
          "the plain check: %s; the one waiting for a sequence never reached: %s", kr[1].name,
          kr[0].name);
    trastenda_client_close(c);
    trastenda_reply_clear(&kr[0]);
    trastenda_reply_clear(&kr[1]);
    printf("plain_server: a check is not held behind a read waiting for a min_seq\n");
}

/* ---- bad input ---- */

static nng_socket raw;

/* Sends bytes, returns the reply's envelope error code or the first result's code. */
static int64_t
raw_send(const void *buf, size_t len, bool want_result)
{
    nng_msg *m;
    CHECK(nng_msg_alloc(&m, len) == 0, "alloc");
    memcpy(nng_msg_body(m), buf, len);
    CHECK(nng_sendmsg(raw, m, 0) == 0, "send");
    CHECK(nng_recvmsg(raw, &m, 0) == 0, "no reply to a bad request");
    char *j = trastenda_msgpack_json(nng_msg_body(m), nng_msg_len(m));
    nng_msg_free(m);
    CHECK(j != NULL, "the reply is msgpack");
    const char *key = want_result ? "\"results\":[{\"code\":" : "\"error\":{\"code\":";
    const char *p = strstr(j, key);
    int64_t code = p != NULL ? strtoll(p + strlen(key), NULL, 10) : -1;
    if (code < 0) fprintf(stderr, "  reply: %s\n", j);
    free(j);
    return code;
}

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void
mp_begin(void)
{
    msgpack_sbuffer_clear(&sb);
}

static void
s(const char *x)
{
    msgpack_pack_str(&pk, strlen(x));
    msgpack_pack_str_body(&pk, x, strlen(x));
}

/* {v:1, id:7, ops:[ <one op with n pairs follows> ]} */
static void
env(uint32_t pairs)
{
    mp_begin();
    msgpack_pack_map(&pk, 3);
    s("v");
    msgpack_pack_uint64(&pk, 1);
    s("id");
    msgpack_pack_uint64(&pk, 7);
    s("ops");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, pairs);
}

/* The state digest (the `digest` op's result as JSON: the sequence and the digest). */
static char *
state_digest(trastenda_client *c)
{
    trastenda_args a;
    trastenda_args_init(&a, "digest");
    trastenda_reply r = ok(c, &a);
    char *j = trastenda_result_json(&r);
    trastenda_reply_clear(&r);
    CHECK(j != NULL && strstr(j, "\"digest\":") != NULL, "digest: %s", j != NULL ? j : "?");
    return j;
}

static void
bad_input(trastenda_client *c)
{
    char *digest0 = state_digest(c);
    trastenda_reply st0;
    trastenda_status(c, &st0);
    uint64_t seq0 = st0.seq;
    trastenda_reply_clear(&st0);
    int64_t avail0 = available(c, "S0");
    {
        /* A call bigger than a request may be: the client refuses it, nothing is sent. */
        size_t big = TRASTENDA_REQUEST_BYTES_MAX + 1024;
        char *name = malloc(big + 1);
        CHECK(name != NULL, "malloc");
        memset(name, 'n', big);
        name[big] = '\0';
        trastenda_args a;
        trastenda_args_init(&a, "sku.upsert");
        a.sku = "S0";
        a.name = name;
        trastenda_reply r;
        trastenda_err e = trastenda_call(c, &a, &r);
        CHECK(e == TRASTENDA_E_TOO_BIG, "a call of %zu bytes: %s", big, trastenda_err_name(e));
        trastenda_reply_clear(&r);
        free(name);
    }
    CHECK(nng_req0_open(&raw) == 0, "req");
    nng_socket_set_ms(raw, NNG_OPT_RECVTIMEO, 30000); /* sanitizer builds on a busy machine */
    CHECK(nng_dial(raw, req_addr, NULL, 0) == 0, "dial");
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* not msgpack at all; truncated; not a map */
    CHECK(raw_send("\xc1\xc1", 2, false) == TRASTENDA_E_MALFORMED, "reserved byte");
    CHECK(raw_send("\x83\xa1v\x01", 4, false) == TRASTENDA_E_MALFORMED, "truncated");
    CHECK(raw_send("\x93\x01\x02\x03", 4, false) == TRASTENDA_E_MALFORMED, "an array");
    /* a 5-byte header claiming 4 billion ops */
    CHECK(raw_send("\x83\xa1v\x01\xa2id\x01\xa3ops\xdd\xff\xff\xff\xff", 15, false) ==
              TRASTENDA_E_MALFORMED,
          "a lying count");
    /* wrong version, missing ops, unknown envelope key */
    mp_begin();
    msgpack_pack_map(&pk, 3);
    s("v");
    msgpack_pack_uint64(&pk, 2);
    s("id");
    msgpack_pack_uint64(&pk, 1);
    s("ops");
    msgpack_pack_array(&pk, 0);
    CHECK(raw_send(sb.data, sb.size, false) == TRASTENDA_E_VERSION, "version");
    mp_begin();
    msgpack_pack_map(&pk, 2);
    s("v");
    msgpack_pack_uint64(&pk, 1);
    s("id");
    msgpack_pack_uint64(&pk, 1);
    CHECK(raw_send(sb.data, sb.size, false) == TRASTENDA_E_MISSING_FIELD, "missing ops");
    mp_begin();
    msgpack_pack_map(&pk, 4);
    s("v");
    msgpack_pack_uint64(&pk, 1);
    s("id");
    msgpack_pack_uint64(&pk, 1);
    s("ops");
    msgpack_pack_array(&pk, 0);
    s("zzz");
    msgpack_pack_nil(&pk);
    CHECK(raw_send(sb.data, sb.size, false) == TRASTENDA_E_UNKNOWN_FIELD, "unknown envelope key");
    /* op-level: unknown op, missing field, extra field, wrong type, range, string, duplicate */
    env(1);
    s("op");
    s("teleport");
    CHECK(raw_send(sb.data, sb.size, true) == TRASTENDA_E_UNKNOWN_OP, "unknown op");
    env(3);
    s("op");
    s("receive");
    s("sku");
    s("S0");
    s("loc");
    s("W1");
    CHECK(raw_send(sb.data, sb.size, true) == TRASTENDA_E_MISSING_FIELD, "missing qty");
    env(5);
    s("op");
    s("receive");
    s("sku");
    s("S0");
    s("loc");
    s("W1");
    s("qty");
    msgpack_pack_int64(&pk, 1);
    s("ttl_ms");
    msgpack_pack_int64(&pk, 5000);
    CHECK(raw_send(sb.data, sb.size, true) == TRASTENDA_E_UNKNOWN_FIELD, "extra field");
    env(4);
    s("op");
    s("receive");
    s("sku");
    s("S0");
    s("loc");
    s("W1");
    s("qty");
    s("ten");
    CHECK(raw_send(sb.data, sb.size, true) == TRASTENDA_E_TYPE, "wrong type");
    env(3);
    s("op");
    s("extend");
    s("hold");
    msgpack_pack_uint64(&pk, 1);
    s("ttl_ms");
    msgpack_pack_int64(&pk, 999);
    CHECK(raw_send(sb.data, sb.size, true) == TRASTENDA_E_RANGE, "ttl out of range");
    env(4);
    s("op");
    s("receive");
    s("sku");
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "S\xff\xfe", 3);
    s("loc");
    s("W1");
    s("qty");
    msgpack_pack_int64(&pk, 1);
    CHECK(raw_send(sb.data, sb.size, true) == TRASTENDA_E_STRING, "invalid UTF-8");
    env(4);
    s("op");
    s("receive");
    s("sku");
    s("S0");
    s("sku");
    s("S1");
    s("loc");
    s("W1");
    CHECK(raw_send(sb.data, sb.size, true) == TRASTENDA_E_DUPLICATE_FIELD, "duplicate key");
    /* a batch: op 2 of 3 bad, the others apply */
    mp_begin();
    msgpack_pack_map(&pk, 3);
    s("v");
    msgpack_pack_uint64(&pk, 1);
    s("id");
    msgpack_pack_uint64(&pk, 9);
    s("ops");
    msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++) {
        msgpack_pack_map(&pk, 2);
        s("op");
        s(i == 1 ? "nope" : "stock");
        s("sku");
        s("S0");
    }
    nng_msg *m;
    nng_msg_alloc(&m, sb.size);
    memcpy(nng_msg_body(m), sb.data, sb.size);
    CHECK(nng_sendmsg(raw, m, 0) == 0 && nng_recvmsg(raw, &m, 0) == 0, "batch");
    char *j = trastenda_msgpack_json(nng_msg_body(m), nng_msg_len(m));
    nng_msg_free(m);
    CHECK(j != NULL && strstr(j, "\"results\":[{\"code\":0") != NULL &&
              strstr(j, "{\"code\":29") != NULL && strstr(j, "},{\"code\":0") != NULL,
          "op by op: %s", j);
    free(j);
    nng_close(raw);
    msgpack_sbuffer_destroy(&sb);
    /* nothing changed, and the server still answers */
    trastenda_reply st1;
    trastenda_status(c, &st1);
    CHECK(st1.code == TRASTENDA_OK && st1.seq == seq0,
          "bad input made a batch (%" PRIu64 " -> %" PRIu64 ")", seq0, st1.seq);
    trastenda_reply_clear(&st1);
    CHECK(available(c, "S0") == avail0, "bad input changed stock");
    char *digest1 = state_digest(c);
    CHECK(strcmp(digest0, digest1) == 0, "bad input changed the state: %s -> %s", digest0, digest1);
    free(digest0);
    free(digest1);
}

/* ---- stop, restart ---- */

static void
restart_keeps_state(void)
{
    trastenda_client *c = client_open(16);
    int64_t before = available(c, "S0");
    /* a reservation acknowledged just before SIGTERM */
    trastenda_reply r;
    trastenda_reserve(c, &(trastenda_cline){"S0", "W1", 1, 0}, 1, 600000, "last-one", &r);
    CHECK(r.code == TRASTENDA_OK, "reserve before stop: %s", r.msg);
    uint64_t hold = r.hold;
    trastenda_reply_clear(&r);
    trastenda_client_close(c);
    server_stop();
    server_start();
    server_wait();
    c = client_open(16);
    CHECK(available(c, "S0") == before - 1, "the state after a restart");
    trastenda_args a;
    trastenda_args_init(&a, "hold");
    a.hold = (int64_t)hold;
    r = ok(c, &a);
    CHECK(has_text(&r, "\"state\":\"open\""), "the acknowledged hold survived");
    trastenda_reply_clear(&r);
    trastenda_client_close(c);
}

/* ---- a second server beside the main one ---- */

/*
 * Starts `trastenda` on ipc://DIR/NAME with its data in DIR/NAME-data and its stderr in
 * DIR/NAME.log (the paths go to addr, data, log), small tables, no events, replication or HTTP;
 * `extra` adds flags, `env` "NAME=value" settings of the child (both NULL-terminated, or NULL).
 * Its PID is kept in follower_pid, so that cleanup() kills it if a check fails.
 */
static pid_t
second_server(const char *name, const char *const *extra, const char *const *env, char addr[700],
              char data[700], char log[700])
{
    snprintf(addr, 700, "ipc://%s/%s", dir, name);
    snprintf(data, 700, "%s/%s-data", dir, name);
    snprintf(log, 700, "%s/%s.log", dir, name);
    const char *argv[48] = {
        "trastenda", "--listen",        addr,   "--events",    "none", "--repl",
        "none",      "--http",          "none", "--data",      data,   "--skus-max",
        "64",        "--locations-max", "8",    "--stock-max", "256",  "--orders-max",
        "64",        "--pos-max",       "16"};
    size_t n = 21;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        CHECK(n + 1 < sizeof(argv) / sizeof(argv[0]), "too many flags");
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (freopen(log, "a", stderr) == NULL) _exit(126);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++)
            if (putenv((char *)env[i]) != 0) _exit(126);
        execv(TS_SERVER_PATH, (char *const *)argv);
        _exit(127);
    }
    follower_pid = pid;
    return pid;
}

/* ---- --cpus: every thread of the server on the CPUs it names; a bad list is refused ---- */

/* The Cpus_allowed_list of every thread of pid, when they all agree (into out), else false. */
static bool
threads_cpus(pid_t pid, char *out, size_t cap, int *threads)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) return false;
    bool agree = true;
    out[0] = '\0';
    *threads = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char st[600], line[256], mine[128] = "";
        snprintf(st, sizeof(st), "%s/%s/status", path, de->d_name);
        FILE *f = fopen(st, "r");
        if (f == NULL) continue; /* a thread that just ended */
        while (fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "Cpus_allowed_list: %127s", mine) == 1) break;
        fclose(f);
        if (out[0] == '\0') snprintf(out, cap, "%s", mine);
        agree = agree && strcmp(out, mine) == 0;
        (*threads)++;
    }
    closedir(d);
    return agree && *threads > 0;
}

static void
cpus_pin_every_thread(void)
{
    char caddr[700], cdata[700], log[700];
    const char *extra[] = {"--cpus", "0", NULL};
    pid_t pid = second_server("pinned", extra, NULL, caddr, cdata, log);
    trastenda_client *c = client_of(caddr, 64, 1000, 0);
    trastenda_reply r;
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < 100; i++) { /* the server may still be starting */
        if (trastenda_status(c, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK) break;
        trastenda_reply_clear(&r);
        CHECK(waitpid(pid, NULL, WNOHANG) == 0, "the pinned server exited at start (%s)", log);
        usleep(50000);
    }
    CHECK(r.code == TRASTENDA_OK, "the pinned server answers: %s", r.name);
    trastenda_reply_clear(&r);
    trastenda_client_close(c);
    char cpus[128];
    int threads = 0;
    CHECK(threads_cpus(pid, cpus, sizeof(cpus), &threads) && strcmp(cpus, "0") == 0,
          "every thread on CPU 0: %d threads, '%s'", threads, cpus);
    CHECK(threads > 4, "the server's threads were counted (%d)", threads);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    follower_pid = 0;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the pinned server stopped cleanly");
    /* A CPU that does not exist, a reversed range, a malformed list: refused before anything
     * starts, exit status 2, a message naming the flag. */
    const char *bad[][2] = {
        {"0-100000", "does not exist"}, {"1-0", "reversed"}, {"0,,1", "bad list"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *flags[] = {"--cpus", bad[i][0], NULL};
        char name[32];
        snprintf(name, sizeof(name), "badcpus%zu", i);
        pid = second_server(name, flags, NULL, caddr, cdata, log);
        waitpid(pid, &status, 0);
        follower_pid = 0;
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "--cpus %s: exit status 2", bad[i][0]);
        FILE *f = fopen(log, "r");
        CHECK(f != NULL, "log %s", log);
        char text[4096];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
        CHECK(strstr(text, "cpus: ") != NULL && strstr(text, bad[i][1]) != NULL,
              "--cpus %s: the message says why: %s", bad[i][0], text);
        struct stat dst;
        CHECK(stat(cdata, &dst) != 0, "--cpus %s: no data directory was made", bad[i][0]);
    }
}

/* SIGTERM to a second server, then wait for its clean exit. */
static void
second_server_stop(pid_t pid, const char *what)
{
    CHECK(kill(pid, SIGTERM) == 0, "kill");
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    follower_pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the %s server did not stop cleanly", what);
}

/* The first write on a second server, retried while it starts: location loc. */
static void
location_when_up(trastenda_client *c, const char *loc, const char *what)
{
    trastenda_args a;
    trastenda_reply r;
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < 100; i++) { /* the server may still be starting */
        trastenda_args_init(&a, "location.upsert");
        a.loc = loc;
        if (trastenda_call(c, &a, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK) break;
        trastenda_reply_clear(&r);
        usleep(50000);
    }
    CHECK(r.code == TRASTENDA_OK, "location.upsert on the %s server: %s %s", what, r.name, r.msg);
    trastenda_reply_clear(&r);
}

/* ---- a disk that fails: writes are answered with an error, then the process stops ---- */

#ifdef TS_FAULTFS_PATH
#define FAULT_WRITERS 16
#define FAULT_OPS     400

struct fault_writer {
    trastenda_client *c;
    int id;
    atomic_int *io_errors, *other;
    bool acked[FAULT_OPS]; /* the writes answered ok */
};

static trastenda_err
fault_write(trastenda_client *c, int id, int i, trastenda_reply *r)
{
    char key[48];
    snprintf(key, sizeof(key), "fault-%d-%d", id, i);
    trastenda_cline line = {"F1", "FW", 1, 0};
    return i % 2 == 0 ? trastenda_receive(c, "F1", "FW", 1, key, r)
                      : trastenda_reserve(c, &line, 1, 600000, key, r);
}

static void *
fault_writer_main(void *arg)
{
    struct fault_writer *w = arg;
    for (int i = 0; i < FAULT_OPS; i++) {
        trastenda_reply r;
        if (fault_write(w->c, w->id, i, &r) != TRASTENDA_OK) break; /* the server is gone */
        if (r.code == TRASTENDA_E_IO || r.code == TRASTENDA_E_CLOSED)
            atomic_fetch_add(w->io_errors, 1);
        else if (r.code != TRASTENDA_OK)
            atomic_fetch_add(w->other, 1);
        w->acked[i] = r.code == TRASTENDA_OK;
        trastenda_reply_clear(&r);
    }
    return NULL;
}

/* The log's syncs start failing under 16 writers of receipts and holds sharing one client (their
 * calls coalesce, so requests queue behind the failing one and are drained unapplied): each write
 * gets an ok or an I/O error with a message, and the process stops by itself with exit status 1
 * (its tables may hold a batch that never became durable: no read may see it). Started again on
 * the same directory without the fault, it has every write it acknowledged: each, sent again
 * with its key, is answered as a duplicate. */
static void
a_failing_disk_answers_writes_with_errors(void)
{
    char faddr[700], fdata[700], log[700], fault_dir[800];
    snprintf(fault_dir, sizeof(fault_dir), "TS_FAULT_DIR=%s/faulty-data", dir);
    const char *extra[] = {"--holds-max", "16384", "--keys-max", "16384",
                           "--lines-max", "16384", NULL};
    const char *env[] = {"LD_PRELOAD=" TS_FAULTFS_PATH,
                         "ASAN_OPTIONS=verify_asan_link_order=0",
                         fault_dir,
                         "TS_FAULT_SUFFIX=.log", /* RocksDB's WAL files */
                         "TS_FAULT_SYNC_AFTER=60",
                         NULL};
    pid_t pid = second_server("faulty", extra, env, faddr, fdata, log);
    trastenda_client_config def;
    trastenda_client_config_default(&def);
    trastenda_client *c = client_of(faddr, def.batch_max, 3000, 0);
    trastenda_args a;
    trastenda_reply r;
    location_when_up(c, "FW", "faulty");
    trastenda_args_init(&a, "sku.upsert");
    a.sku = "F1";
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    atomic_int io_errors = 0, other = 0;
    static struct fault_writer ws[FAULT_WRITERS];
    pthread_t th[FAULT_WRITERS];
    for (int i = 0; i < FAULT_WRITERS; i++) {
        ws[i] = (struct fault_writer){c, i, &io_errors, &other, {false}};
        CHECK(pthread_create(&th[i], NULL, fault_writer_main, &ws[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < FAULT_WRITERS; i++)
        pthread_join(th[i], NULL);
    trastenda_client_close(c);
    CHECK(atomic_load(&io_errors) > 0, "no write got an I/O error (see %s)", log);
    CHECK(atomic_load(&other) == 0, "%d writes failed with another error", atomic_load(&other));
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 100 && w == 0; i++) { /* it notices within 100 ms */
        w = waitpid(pid, &st, WNOHANG);
        if (w == 0) usleep(50000);
    }
    if (w == 0) kill(pid, SIGKILL);
    CHECK(w == pid, "the server still runs 5 s after its disk failed (see %s)", log);
    follower_pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1,
          "the server with a failed disk did not exit with status 1 (status %d; see %s)", st, log);
    /* Again, without the fault: recovery from the log has every acknowledged write. */
    pid = second_server("faulty", extra, NULL, faddr, fdata, log);
    c = client_of(faddr, def.batch_max, 10000, 0);
    for (int i = 0; i < 100; i++) {
        trastenda_args_init(&a, "status");
        if (trastenda_call(c, &a, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK) break;
        trastenda_reply_clear(&r);
        usleep(50000);
    }
    trastenda_reply_clear(&r);
    int acked = 0;
    for (int id = 0; id < FAULT_WRITERS; id++)
        for (int i = 0; i < FAULT_OPS; i++) {
            if (!ws[id].acked[i]) continue;
            CHECK(fault_write(c, id, i, &r) == TRASTENDA_OK, "a write again: transport");
            CHECK(r.code == TRASTENDA_OK && r.dup,
                  "acknowledged write fault-%d-%d is not in the recovered state (%s %s)", id, i,
                  r.name, r.msg);
            trastenda_reply_clear(&r);
            acked++;
        }
    CHECK(acked > 0, "no write was acknowledged before the disk failed");
    trastenda_client_close(c);
    second_server_stop(pid, "restarted");
    printf("plain_server: a failed disk stopped the server (exit 1); restarted, it has all %d "
           "acknowledged writes\n",
           acked);
}
#endif

/* ---- calls of many lines coalesced: each request stays within the limits ---- */

/* 200 reserves of 64 lines each, one batch call: 12,800 lines, more than a request may carry
 * (8,192): the client sends them in requests within the limit, and every one succeeds. */
static void
many_lines_are_split_across_requests(void)
{
    char addr[700], data[700], log[700];
    const char *extra[] = {"--holds-max", "1024",  "--keys-max", "1024",
                           "--lines-max", "16384", NULL};
    pid_t pid = second_server("lines", extra, NULL, addr, data, log);
    trastenda_client *c = client_of(addr, 1024, 20000, 0);
    trastenda_args a;
    trastenda_reply r;
    location_when_up(c, "LW", "lines");
    trastenda_args_init(&a, "sku.upsert");
    a.sku = "L1";
    r = ok(c, &a);
    trastenda_reply_clear(&r);
    CHECK(trastenda_receive(c, "L1", "LW", 100000, NULL, &r) == TRASTENDA_OK &&
              r.code == TRASTENDA_OK,
          "receive: %s", r.msg);
    trastenda_reply_clear(&r);
    static trastenda_cline lines[64];
    for (int i = 0; i < 64; i++)
        lines[i] = (trastenda_cline){"L1", "LW", 1, 0};
    static trastenda_args args[200];
    static trastenda_reply reps[200];
    for (int i = 0; i < 200; i++) {
        trastenda_args_init(&args[i], "reserve");
        args[i].lines = lines;
        args[i].n_lines = 64;
        args[i].ttl_ms = 600000;
    }
    trastenda_err e = trastenda_call_batch(c, args, 200, reps);
    CHECK(e == TRASTENDA_OK, "200 reserves of 64 lines: %s", trastenda_err_name(e));
    for (int i = 0; i < 200; i++) {
        CHECK(reps[i].code == TRASTENDA_OK, "reserve %d of 64 lines: %s %s", i, reps[i].name,
              reps[i].msg);
        trastenda_reply_clear(&reps[i]);
    }
    CHECK(available(c, "L1") == 100000 - 200 * 64, "available after 12,800 units held");
    trastenda_client_close(c);
    second_server_stop(pid, "lines");
}

/* ---- a SKU at more locations than a stock reply lists ---- */

/* The records listed in a stock result, and its next cursor (-1: none in the result). */
static uint32_t
stock_page(const trastenda_reply *r, int64_t *next)
{
    char *j = trastenda_result_json(r);
    CHECK(j != NULL, "a stock result that does not parse");
    uint32_t n = 0;
    for (const char *p = strstr(j, "\"loc\":"); p != NULL; p = strstr(p + 1, "\"loc\":"))
        n++;
    const char *nx = strstr(j, "\"next\":");
    *next = nx != NULL ? strtoll(nx + strlen("\"next\":"), NULL, 10) : -1;
    free(j);
    return n;
}

/* 300 locations of one SKU: a stock check sums them all and lists 256 with the cursor of the
 * rest; pages of 100 list each once; a cursor with loc is refused. */
static void
stock_pages_span_every_location(void)
{
    char addr[700], data[700], log[700];
    const char *extra[] = {"--locations-max", "300", "--stock-max", "400", NULL};
    pid_t pid = second_server("pages", extra, NULL, addr, data, log);
    trastenda_client *c = client_of(addr, 1024, 20000, 0);
    location_when_up(c, "P000", "pages");
    static trastenda_args args[601];
    static trastenda_reply reps[601];
    static char names[300][8];
    trastenda_args_init(&args[0], "sku.upsert");
    args[0].sku = "PG";
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof(names[i]), "P%03d", i);
        trastenda_args_init(&args[1 + 2 * i], "location.upsert");
        args[1 + 2 * i].loc = names[i];
        trastenda_args_init(&args[2 + 2 * i], "receive");
        args[2 + 2 * i].sku = "PG";
        args[2 + 2 * i].loc = names[i];
        args[2 + 2 * i].qty = 1 + i % 3;
    }
    CHECK(trastenda_call_batch(c, args, 601, reps) == TRASTENDA_OK, "the catalogue");
    int64_t total = 0;
    for (int i = 0; i < 601; i++) {
        CHECK(reps[i].code == TRASTENDA_OK, "catalogue op %d: %s", i, reps[i].msg);
        trastenda_reply_clear(&reps[i]);
    }
    for (int i = 0; i < 300; i++)
        total += 1 + i % 3;
    trastenda_reply r;
    int64_t next = 0;
    CHECK(trastenda_stock(c, "PG", &r) == TRASTENDA_OK && r.code == TRASTENDA_OK, "stock");
    CHECK(r.available == total && stock_page(&r, &next) == 256 && next > 0,
          "a stock check of 300 locations: available %lld of %lld, next %lld",
          (long long)r.available, (long long)total, (long long)next);
    trastenda_reply_clear(&r);
    CHECK(trastenda_stock_page(c, "PG", next, 0, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK,
          "stock page 2: %s", r.msg);
    CHECK(r.available == total && stock_page(&r, &next) == 44 && next == 0,
          "the rest of the 300 locations: next %lld", (long long)next);
    trastenda_reply_clear(&r);
    uint32_t seen = 0, pages = 0;
    next = 0;
    do {
        CHECK(trastenda_stock_page(c, "PG", next, 100, &r) == TRASTENDA_OK &&
                  r.code == TRASTENDA_OK,
              "stock page: %s", r.msg);
        seen += stock_page(&r, &next);
        CHECK(r.available == total && next >= 0 && pages++ < 4, "pages of 100");
        trastenda_reply_clear(&r);
    } while (next != 0);
    CHECK(seen == 300 && pages == 3, "pages of 100 listed %u records in %u pages", seen, pages);
    trastenda_args a;
    trastenda_args_init(&a, "stock");
    a.sku = "PG";
    a.loc = "P001";
    a.cursor = 5;
    r = call(c, &a);
    CHECK(r.code == TRASTENDA_E_INVALID && strstr(r.msg, "one record") != NULL,
          "stock with loc and cursor: %s %s", r.name, r.msg);
    trastenda_reply_clear(&r);
    printf("plain_server: a SKU at 300 locations: summed whole, listed 256 with a cursor, pages of "
           "100 list each once\n");
    trastenda_client_close(c);
    second_server_stop(pid, "pages");
}

/* ---- a connection over its in-flight cap: the client sends the refused requests again ---- */

/* A server that takes one request at a time per connection, a client with 4 in flight on its one
 * connection and a request per call: 64 reads, most refused at first with an envelope E_BUSY,
 * all answered. */
static void
busy_connections_are_retried(void)
{
    char addr[700], data[700], log[700];
    const char *extra[] = {"--max-in-flight-per-connection",
                           "1",
                           "--holds-max",
                           "256",
                           "--keys-max",
                           "256",
                           "--lines-max",
                           "1024",
                           NULL};
    pid_t pid = second_server("cap", extra, NULL, addr, data, log);
    trastenda_client *c = client_ex(addr, 1, 10000, 1000, 4, 0);
    location_when_up(c, "CW", "cap");
    static trastenda_args args[64];
    static trastenda_reply reps[64];
    for (int i = 0; i < 64; i++)
        trastenda_args_init(&args[i], "status");
    trastenda_err e = trastenda_call_batch(c, args, 64, reps);
    CHECK(e == TRASTENDA_OK, "64 reads, 4 in flight on a connection capped at 1: %s",
          trastenda_err_name(e));
    for (int i = 0; i < 64; i++) {
        CHECK(reps[i].code == TRASTENDA_OK, "read %d: %s %s", i, reps[i].name, reps[i].msg);
        trastenda_reply_clear(&reps[i]);
    }
    trastenda_client_close(c);
    second_server_stop(pid, "cap");
}

/* ---- a client that stops reading its replies is cut off ---- */

/* Writes all of buf unless the socket would block (the server no longer reads): false then. */
static bool
fd_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* A raw SP connection (nng's wire protocol spoken by hand, as a REQ peer) sends requests with
 * large replies and never reads one: its replies fill the socket, then every context the server
 * has waits to send to it. With --reply-timeout-ms the server closes that connection, and another
 * client is answered meanwhile. */
static void
a_client_that_stops_reading_is_cut_off(void)
{
    char addr[700], data[700], log[700];
    const char *extra[] = {"--reply-timeout-ms", "500",  "--holds-max", "256", "--keys-max", "256",
                           "--lines-max",        "1024", NULL};
    pid_t pid = second_server("stall", extra, NULL, addr, data, log);
    trastenda_client *c = client_of(addr, 1024, 10000, 0);
    trastenda_args a;
    trastenda_reply r;
    location_when_up(c, "SW", "stall");
    static trastenda_args many[60];
    static trastenda_reply got[60];
    static char names[60][16];
    for (int i = 0; i < 60; i++) { /* 60 stock records: a page of them is a few KB */
        snprintf(names[i], sizeof(names[i]), "STALL-%02d", i);
        trastenda_args_init(&many[i], "receive");
        many[i].sku = names[i];
        many[i].loc = "SW";
        many[i].qty = 5;
    }
    for (int i = 0; i < 60; i++) {
        trastenda_args_init(&a, "sku.upsert");
        a.sku = names[i];
        r = ok(c, &a);
        trastenda_reply_clear(&r);
    }
    CHECK(trastenda_call_batch(c, many, 60, got) == TRASTENDA_OK, "receipts");
    for (int i = 0; i < 60; i++)
        trastenda_reply_clear(&got[i]);
    /* The raw connection: the SP header (REQ = 0x30), then requests, never a read. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    const char *path = addr + strlen("ipc://");
    CHECK(strlen(path) < sizeof(sun.sun_path), "%s: too long for a socket path", path);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, "connect %s", addr);
    const uint8_t hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    CHECK(fd_write_all(fd, hdr, sizeof(hdr)), "the SP header");
    uint8_t peer[8];
    CHECK(recv(fd, peer, sizeof(peer), MSG_WAITALL) == 8 && peer[5] == 0x31, "a REP peer");
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    msgpack_packer p;
    msgpack_packer_init(&p, &b, msgpack_sbuffer_write);
    int sent = 0;
    for (uint32_t i = 0; i < 5000; i++) {
        msgpack_sbuffer_clear(&b);
        msgpack_pack_map(&p, 3);
        msgpack_pack_str_with_body(&p, "v", 1);
        msgpack_pack_uint64(&p, 1);
        msgpack_pack_str_with_body(&p, "id", 2);
        msgpack_pack_uint64(&p, i + 1);
        msgpack_pack_str_with_body(&p, "ops", 3);
        msgpack_pack_array(&p, 1);
        msgpack_pack_map(&p, 2);
        msgpack_pack_str_with_body(&p, "op", 2);
        msgpack_pack_str_with_body(&p, "stock.list", 10);
        msgpack_pack_str_with_body(&p, "limit", 5);
        msgpack_pack_uint64(&p, 1000);
        /* nng's ipc framing: a type byte (1), a 64-bit length; then REQ's request id. */
        uint8_t frame[13] = {1};
        uint64_t n = 4 + b.size;
        for (int k = 0; k < 8; k++)
            frame[1 + k] = (uint8_t)(n >> (56 - 8 * k));
        uint32_t id = 0x80000000u | (i + 1);
        for (int k = 0; k < 4; k++)
            frame[9 + k] = (uint8_t)(id >> (24 - 8 * k));
        if (!fd_write_all(fd, frame, sizeof(frame)) || !fd_write_all(fd, b.data, b.size)) break;
        sent++;
        if (i % 64 == 63) usleep(20000); /* let the server take them */
    }
    msgpack_sbuffer_destroy(&b);
    CHECK(sent >= 64, "only %d requests could be sent (%s)", sent, strerror(errno));
    /* Another client is answered, and the server says it cut a connection off. */
    int64_t t0 = 0;
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t0 = ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    trastenda_client *other = client_of(addr, 16, 8000, 0);
    trastenda_args_init(&a, "status");
    trastenda_err e = trastenda_call(other, &a, &r);
    CHECK(e == TRASTENDA_OK && r.code == TRASTENDA_OK,
          "a client next to one that stopped reading: %s (see %s)", trastenda_err_name(e), log);
    char *j = trastenda_result_json(&r);
    const char *at = j != NULL ? strstr(j, "\"reply_timeouts\":") : NULL;
    CHECK(at != NULL, "no counters.reply_timeouts in the status");
    uint64_t cut = strtoull(at + strlen("\"reply_timeouts\":"), NULL, 10);
    free(j);
    trastenda_reply_clear(&r);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t waited = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - t0;
    CHECK(cut >= 1, "the server closed no connection for not reading (%d requests sent)", sent);
    trastenda_client_close(other);
    trastenda_client_close(c);
    close(fd);
    second_server_stop(pid, "stall");
    printf("plain_server: a client that stopped reading (%d requests sent) was cut off; another "
           "was answered after %lld ms\n",
           sent, (long long)waited);
}

/* ---- a node that is not the leader: the client follows its redirect ---- */

static void
follower_redirect(void)
{
    char faddr[700], fdata[700], log[700];
    const char *extra[] = {"--holds-max",
                           "256",
                           "--keys-max",
                           "256",
                           "--lines-max",
                           "1024",
                           "--test-not-leader",
                           req_addr,
                           "--max-connections",
                           "2",
                           "--max-in-flight-per-connection",
                           "1",
                           NULL};
    second_server("follower", extra, NULL, faddr, fdata, log);
    const char *nodes[] = {faddr, req_addr}; /* the follower first: writes are redirected */
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 2;
    cfg.timeout_ms = 10000;
    trastenda_client *c = NULL;
    CHECK(trastenda_client_open(&cfg, &c, NULL, 0) == TRASTENDA_OK, "client");
    trastenda_client *leader = client_open(16);
    int64_t before = available(leader, "S3");
    trastenda_reply r;
    for (int i = 0; i < 100; i++) { /* the follower may still be starting */
        trastenda_receive(c, "S3", "W1", 4, "redirected-1", &r);
        if (r.code == TRASTENDA_OK) break;
        trastenda_reply_clear(&r);
        usleep(50000);
    }
    CHECK(r.code == TRASTENDA_OK, "a write through a follower-first client: %s %s", r.name, r.msg);
    trastenda_reply_clear(&r);
    CHECK(available(leader, "S3") == before + 4, "the write reached the leader once");
    /* The follower itself answers not_leader, naming the leader. */
    const char *fnode[] = {faddr};
    cfg.nodes = fnode;
    cfg.n_nodes = 1;
    cfg.retries = 0;
    trastenda_client *fc = NULL;
    CHECK(trastenda_client_open(&cfg, &fc, NULL, 0) == TRASTENDA_OK, "client");
    trastenda_receive(fc, "S3", "W1", 1, NULL, &r);
    CHECK(r.code == TRASTENDA_E_NOT_LEADER && strcmp(r.leader, req_addr) == 0,
          "not_leader names the leader: %s (%s)", r.name, r.leader);
    trastenda_reply_clear(&r);
    /* One request in flight per connection here: the last reply's slot may not be free yet. */
    for (int i = 0; i < 2500; i++) { /* up to ~5 s: a loaded machine frees it late */
        trastenda_status(fc, &r);
        if (r.code != TRASTENDA_E_BUSY) break;
        trastenda_reply_clear(&r);
        usleep(2000);
    }
    CHECK(r.code == TRASTENDA_OK && has_text(&r, "\"role\":\"follower\""), "follower status: %s",
          r.name);
    trastenda_reply_clear(&r);
    /* Requests in flight on one connection are capped (1 here): a burst on one socket meets
     * E_BUSY at once rather than queueing without bound (bursts repeat until two overlap). */
    trastenda_client_close(c); /* the follower takes 2 connections: fc and the burst's */
    nng_socket burst;
    CHECK(nng_req0_open(&burst) == 0, "req");
    enum {
        B = 16
    };
    nng_ctx bctx[B];
    nng_aio *baio[B];
    for (int i = 0; i < B; i++) {
        CHECK(nng_ctx_open(&bctx[i], burst) == 0 && nng_aio_alloc(&baio[i], NULL, NULL) == 0,
              "ctx");
        nng_aio_set_timeout(baio[i], 10000);
    }
    CHECK(nng_dial(burst, faddr, NULL, 0) == 0, "dial");
    const uint8_t status_req[] = {0x83, 0xa1, 'v', 0x01, 0xa2, 'i',  'd',  0x01,
                                  0xa3, 'o',  'p', 's',  0x91, 0x81, 0xa2, 'o',
                                  'p',  0xa6, 's', 't',  'a',  't',  'u',  's'};
    bool busy_seen = false;
    for (int round = 0; round < 50 && !busy_seen; round++) {
        for (int i = 0; i < B; i++) {
            nng_msg *m;
            CHECK(nng_msg_alloc(&m, sizeof(status_req)) == 0, "alloc");
            memcpy(nng_msg_body(m), status_req, sizeof(status_req));
            nng_aio_set_msg(baio[i], m);
            nng_ctx_send(bctx[i], baio[i]);
        }
        for (int i = 0; i < B; i++) {
            nng_aio_wait(baio[i]);
            CHECK(nng_aio_result(baio[i]) == 0, "burst send");
            nng_ctx_recv(bctx[i], baio[i]);
        }
        for (int i = 0; i < B; i++) {
            nng_aio_wait(baio[i]);
            CHECK(nng_aio_result(baio[i]) == 0, "burst reply");
            nng_msg *m = nng_aio_get_msg(baio[i]);
            char *j = trastenda_msgpack_json(nng_msg_body(m), nng_msg_len(m));
            bool busy = j != NULL && strstr(j, "in flight on this connection") != NULL;
            CHECK(j != NULL && (busy || strstr(j, "\"role\":\"follower\",\"version\"") != NULL),
                  "burst reply: %s", j != NULL ? j : "?");
            CHECK(!busy || strstr(j, "\"retry_ms\":") != NULL, "a busy reply without retry_ms: %s",
                  j);
            busy_seen |= busy;
            free(j);
            nng_msg_free(m);
        }
    }
    CHECK(busy_seen, "16 requests at once on one connection never met the cap of 1");
    for (int i = 0; i < B; i++) {
        nng_ctx_close(bctx[i]);
        nng_aio_free(baio[i]);
    }
    /* Connections are capped (2): fc and the burst's are on it; a third is closed on arrival. */
    cfg.timeout_ms = 400;
    trastenda_client *third = NULL;
    CHECK(trastenda_client_open(&cfg, &third, NULL, 0) == TRASTENDA_OK, "client");
    trastenda_status(third, &r);
    CHECK(r.code == TRASTENDA_E_TIMEOUT || r.code == TRASTENDA_E_CONNECT,
          "a connection over the cap was served: %s", r.name);
    trastenda_reply_clear(&r);
    nng_close(burst); /* room again: the third one's redial gets in */
    bool served = false;
    for (int i = 0; i < 40 && !served; i++) {
        trastenda_status(third, &r);
        served = r.code == TRASTENDA_OK;
        trastenda_reply_clear(&r);
    }
    CHECK(served, "the connection was not served once there was room");
    trastenda_client_close(third);
    trastenda_client_close(fc);
    trastenda_client_close(leader);
    kill(follower_pid, SIGTERM);
    waitpid(follower_pid, NULL, 0);
    follower_pid = 0;
}

/* ---- close with a call in flight and one queued, against a server that never answers ---- */

struct silent_call {
    trastenda_client *c;
    trastenda_err transport;
    trastenda_reply r;
};

static void *
silent_call_main(void *arg)
{
    struct silent_call *sc = arg;
    trastenda_args a;
    trastenda_args_init(&a, "status");
    sc->transport = trastenda_call(sc->c, &a, &sc->r);
    return NULL;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A status counter of the server (its name as in the JSON of status). */
static uint64_t
status_counter(trastenda_client *c, const char *name)
{
    trastenda_reply r;
    CHECK(trastenda_status(c, &r) == TRASTENDA_OK && r.code == TRASTENDA_OK, "status");
    char *j = trastenda_result_json(&r), key[80];
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *p = j != NULL ? strstr(j, key) : NULL;
    CHECK(p != NULL, "status without %s", name);
    uint64_t n = strtoull(p + strlen(key), NULL, 10);
    free(j);
    trastenda_reply_clear(&r);
    return n;
}

/* A local process that connects to the server's ipc:// request path and leaves before the SP
 * handshake ends stops that listener for good in nng 1.5.2 (its issue #1518): every later client
 * times out. The server's watcher finds the listener taking no connection and listens again. */
static void
a_peer_leaving_during_the_handshake_does_not_stop_the_listener(void)
{
    trastenda_client *c = client_open(16);
    uint64_t before = status_counter(c, "listener_restarts");
    trastenda_client_close(c);
    for (int i = 0; i < 3; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(fd >= 0, "socket");
        struct sockaddr_un su;
        memset(&su, 0, sizeof(su));
        su.sun_family = AF_UNIX;
        const char *path = req_addr + strlen("ipc://");
        CHECK(strlen(path) < sizeof(su.sun_path), "%s: too long for a socket path", path);
        memcpy(su.sun_path, path, strlen(path) + 1);
        CHECK(connect(fd, (struct sockaddr *)&su, sizeof(su)) == 0, "connect to %s", su.sun_path);
        close(fd);
    }
    /* The fault may hit at once, later (the server sees the connections go when it gets to
     * them), or not at all (an nng without it, connections gone before their handshake began).
     * Time for the watcher to find a stopped listener and open it again (two probes of 3 s, 2 s
     * apart), then new clients must be answered. */
    usleep(12 * 1000 * 1000);
    trastenda_err e = TRASTENDA_E_CONNECT;
    int64_t t0 = now_ms();
    for (;;) {
        c = client_of(req_addr, 16, 5000, 0);
        trastenda_reply r;
        e = trastenda_status(c, &r);
        bool ok = e == TRASTENDA_OK && r.code == TRASTENDA_OK;
        trastenda_reply_clear(&r);
        if (ok || now_ms() - t0 > 30000) break;
        trastenda_client_close(c);
        usleep(200000);
    }
    CHECK(e == TRASTENDA_OK,
          "no new client answered in 42 s after a peer left during the handshake: %s (see "
          "%s/server.log)",
          trastenda_err_name(e), dir);
    uint64_t restarts = status_counter(c, "listener_restarts");
    trastenda_client_close(c);
    printf("plain_server: new clients answered after a peer left during the handshake; the "
           "listener was opened again %llu time(s)\n",
           (unsigned long long)(restarts - before));
    if (restarts == before) return; /* the fault did not hit */
    char cmd[800];
    snprintf(cmd, sizeof(cmd),
             "grep -q 'requests: the listener on .* listening again' '%s/server.log'", dir);
    CHECK(system(cmd) == 0, "no warning in %s/server.log", dir);
}

static void
close_with_a_silent_server(void)
{
    char addr[700];
    snprintf(addr, sizeof(addr), "ipc://%s/silent", dir);
    nng_socket rep;
    CHECK(nng_rep0_open(&rep) == 0 && nng_listen(rep, addr, NULL, 0) == 0, "silent listener");
    const char *nodes[] = {addr};
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 1;
    cfg.timeout_ms = 2000; /* the first call must still be in flight when close comes */
    cfg.in_flight = 1;     /* the second call waits in the queue */
    cfg.retries = 0;
    trastenda_client *c = NULL;
    char err[256];
    CHECK(trastenda_client_open(&cfg, &c, err, sizeof(err)) == TRASTENDA_OK, "client: %s", err);
    struct silent_call first = {.c = c}, second = {.c = c};
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, NULL, silent_call_main, &first) == 0, "thread");
    nng_msg *m = NULL; /* the first call's request reached the server: it holds the only slot */
    CHECK(nng_recvmsg(rep, &m, 0) == 0, "the silent server got no request");
    nng_msg_free(m);
    CHECK(pthread_create(&t2, NULL, silent_call_main, &second) == 0, "thread");
    usleep(100000); /* the second call is queued behind it */
    int64_t t0 = now_ms();
    trastenda_client_close(c);
    int64_t took = now_ms() - t0;
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK(first.transport == TRASTENDA_E_TIMEOUT, "the call in flight: %s",
          trastenda_err_name(first.transport));
    CHECK(second.transport == TRASTENDA_E_CONNECT, "the queued call: %s",
          trastenda_err_name(second.transport));
    CHECK(took < 6000, "close took %lld ms", (long long)took);
    trastenda_reply_clear(&first.r);
    trastenda_reply_clear(&second.r);
    nng_close(rep);
}

int
main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/trastenda-server-XXXXXX", base != NULL ? base : "/tmp");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(req_addr, sizeof(req_addr), "ipc://%s/req", dir);
    snprintf(ev_addr, sizeof(ev_addr), "ipc://%s/events", dir);
    snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
    atexit(cleanup);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    server_start();
    server_wait();
    trastenda_client *c = client_open(64);
    every_operation(c);
    printf("plain_server: every operation ok\n");
    events(c);
    printf("plain_server: events ok\n");
    cli_checks();
    printf("plain_server: cli ok\n");
    typed_calls(c);
    printf("plain_server: every typed call ok\n");
    bad_input(c);
    printf("plain_server: bad input ok\n");
    trastenda_client_close(c);
    flash_sale();
    printf("plain_server: 32 threads flash sale ok\n");
    async_flash_sale();
    printf("plain_server: asynchronous flash sale ok\n");
    held_batches();
    reads_leave_apart_from_writes();
    checks_are_not_held_behind_a_min_seq_wait();
    follower_redirect();
    printf("plain_server: not_leader redirect ok\n");
    a_client_that_stops_reading_is_cut_off();
    printf("plain_server: a client that stops reading ok\n");
    busy_connections_are_retried();
    printf("plain_server: requests over a connection's in-flight cap sent again ok\n");
    many_lines_are_split_across_requests();
    stock_pages_span_every_location();
    printf("plain_server: 12,800 lines in one batch call, split within the limits ok\n");
    close_with_a_silent_server();
    printf("plain_server: close with a silent server ok\n");
#if TS_ASAN
    /* Not under LeakSanitizer: nng 1.5.2 loses the objects of the listener the fault stopped
     * once it is closed (the watcher's restart, or the server's exit), which fails this build's
     * run at exit. The release and ThreadSanitizer builds run it. */
    (void)a_peer_leaving_during_the_handshake_does_not_stop_the_listener;
    (void)status_counter;
    printf("plain_server: the handshake fault is not provoked under AddressSanitizer\n");
#else
    a_peer_leaving_during_the_handshake_does_not_stop_the_listener();
    printf("plain_server: a peer leaving during the handshake does not stop the ipc listener\n");
#endif
    restart_keeps_state();
    printf("plain_server: restart ok\n");
    cpus_pin_every_thread();
    printf("plain_server: --cpus ok\n");
#ifdef TS_FAULTFS_PATH
    a_failing_disk_answers_writes_with_errors();
    printf("plain_server: failing disk ok\n");
#endif
    server_stop();
    return 0;
}

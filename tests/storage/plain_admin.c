/*
 * tests/storage/plain_admin.c - trastenda-admin verify and restore, run as an operator would.
 *
 * A store with data takes a checkpoint; `trastenda-admin verify` accepts it (exit 0);
 * `restore` copies it into a new directory that opens with the checkpoint's state; restore into
 * a directory that is not empty is refused (exit 2); a damaged copy fails verify (exit 1); a
 * directory that decodes but whose records disagree (an entry of another history applied to it)
 * fails verify's invariant check with exit 1, not a crash of the tool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gen.h"
#include "sthelp.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "plain_admin: FAIL %s:%d: ", __FILE__, __LINE__);                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static int
admin(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", TS_ADMIN_PATH, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static trastenda_store *
store_open(trastenda_store_config *cfg, const char *dir, bool follower)
{
    char err[512];
    cfg->dir = dir;
    cfg->follower = follower;
    trastenda_store *st = NULL;
    CHECK(trastenda_store_open(cfg, &st, err, sizeof(err)) == TRASTENDA_OK, "open %s: %s", dir,
          err);
    return st;
}

static void
run_one(trastenda_store *st, const trastenda_cmd *c)
{
    trastenda_result res;
    CHECK(st_run(st, c, 1, &res, NULL) == TRASTENDA_OK && res.code == TRASTENDA_OK, "op %u: %s",
          c->op, res.message);
}

/* A holds 5 units of record (0, 0) in an open hold; B, another history of as many entries, then
 * receives at (0, 0): its next entry's post-image of that record holds nothing. Applied to A as a
 * follower would, it leaves A's tables in disagreement, which only the invariant check sees. */
static void
disagreeing_records_fail_verify(const char *root, trastenda_store_config cfg)
{
    char a[600], b[600], args[1300];
    snprintf(a, sizeof(a), "%s/disagree-a", root);
    snprintf(b, sizeof(b), "%s/disagree-b", root);
    static struct batch bt;
    static trastenda_result res[BATCH_MAX];
    struct gcmd x;
    trastenda_store *st = store_open(&cfg, a, false);
    setup_batch(&bt);
    CHECK(st_run(st, bt.cmds, bt.n, res, NULL) == TRASTENDA_OK, "A's catalogue");
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 50);
    run_one(st, &x.c);
    cmd_init(&x, TRASTENDA_OP_RESERVE);
    x.lines[0] = (trastenda_line){R(SKU_IDS[0]), R(LOC_IDS[0]), 5, 0};
    x.c.line_count = 1;
    x.c.ttl_ms = 3600000;
    run_one(st, &x.c);
    uint64_t seq_a = trastenda_store_durable_seq(st);
    trastenda_store_close(st);
    st = store_open(&cfg, b, false);
    CHECK(st_run(st, bt.cmds, bt.n, res, NULL) == TRASTENDA_OK, "B's catalogue");
    cmd_init(&x, TRASTENDA_OP_NOOP);
    while (trastenda_store_durable_seq(st) < seq_a)
        run_one(st, &x.c);
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 1);
    run_one(st, &x.c);
    static struct st_entry e;
    uint64_t next;
    CHECK(trastenda_store_log_scan(st, seq_a + 1, 1, st_keep_entry, &e, &next) == TRASTENDA_OK &&
              e.len > 0,
          "B's entry %llu", (unsigned long long)(seq_a + 1));
    trastenda_store_close(st);
    st = store_open(&cfg, a, true);
    trastenda_request r = st_follow_one(st, e.buf, e.len);
    CHECK(r.entries_applied == 1, "A takes B's entry: %s", trastenda_err_name(r.entry_err));
    trastenda_store_close(st);
    snprintf(args, sizeof(args), "verify '%s'", a);
    int rc = admin(args);
    CHECK(rc == 1, "verify of a directory whose records disagree exits 1, not %d", rc);
}

int
main(void)
{
    char dir[512], err[512], data[600], backup[600], restored[600], args[2000];
    st_tmpdir(dir, sizeof(dir), "admin");
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(backup, sizeof(backup), "%s/backup", dir);
    snprintf(restored, sizeof(restored), "%s/restored", dir);
    trastenda_store_config cfg;
    trastenda_store_config_default(&cfg);
    cfg.dir = data;
    gen_config(&cfg.engine, false);
    cfg.materialize_interval_ms = 2;
    cfg.log = st_log_quiet;
    trastenda_store *st = NULL;
    CHECK(trastenda_store_open(&cfg, &st, err, sizeof(err)) == TRASTENDA_OK, "open: %s", err);
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    struct gen g = {.rng = {5150}};
    setup_batch(&b);
    for (int i = 0; i <= 200; i++) {
        if (i > 0) next_batch(&g, &b);
        CHECK(st_run(st, b.cmds, b.n, res, NULL) == TRASTENDA_OK, "batch %d", i);
        learn(&g, b.g, res, b.n);
    }
    uint64_t seq = 0;
    CHECK(trastenda_store_checkpoint(st, backup, &seq, err, sizeof(err)) == TRASTENDA_OK,
          "checkpoint: %s", err);
    trastenda_store_close(st);

    snprintf(args, sizeof(args), "verify '%s'", backup);
    CHECK(admin(args) == 0, "verify of a checkpoint");
    snprintf(args, sizeof(args), "restore '%s' '%s'", backup, restored);
    CHECK(admin(args) == 0, "restore");
    CHECK(admin(args) == 2, "restore into a directory that is not empty is refused");
    CHECK(admin("verify") == 2 && admin("frobnicate a b") == 2, "usage errors exit 2");

    /* The restored directory opens as the checkpoint's state. */
    trastenda_verify_report rep;
    CHECK(trastenda_store_verify(backup, NULL, &rep, err, sizeof(err)) == TRASTENDA_OK, "%s", err);
    CHECK(rep.seq == seq, "checkpoint at %llu, verify says %llu", (unsigned long long)seq,
          (unsigned long long)rep.seq);
    /* Its state, as recovery makes it: compared offline, since a batch run on the open store
     * would carry the time of now and expire the holds of the checkpoint (TTLs of 1-8 s), which a
     * slow (sanitizer) build reaches while restore runs. */
    trastenda_verify_report rep2;
    CHECK(trastenda_store_verify(restored, NULL, &rep2, err, sizeof(err)) == TRASTENDA_OK, "%s",
          err);
    CHECK(rep2.seq == seq && rep2.digest == rep.digest, "restored state");
    cfg.dir = restored;
    CHECK(trastenda_store_open(&cfg, &st, err, sizeof(err)) == TRASTENDA_OK, "open: %s", err);
    CHECK(trastenda_store_durable_seq(st) == seq, "restored sequence");
    trastenda_store_close(st);

    /* A damaged copy: a log SST or WAL file overwritten in the middle. */
    char cmd[2400];
    snprintf(cmd, sizeof(cmd),
             "f=$(ls -S '%s'/log/*.sst '%s'/log/*.log 2>/dev/null | head -1); "
             "test -n \"$f\" && printf 'garbagegarbagegarbagegarbage' | "
             "dd of=\"$f\" bs=1 seek=$(( $(stat -c %%s \"$f\") / 2 )) conv=notrunc 2>/dev/null",
             backup, backup);
    CHECK(system(cmd) == 0, "damaging the copy");
    snprintf(args, sizeof(args), "verify '%s'", backup);
    int rc = admin(args);
    CHECK(rc == 1, "verify of a damaged copy exits 1, not %d", rc);
    disagreeing_records_fail_verify(dir, cfg);
    st_rmdir(dir);
    printf("plain_admin: ok (checkpoint at entry %llu)\n", (unsigned long long)seq);
    return 0;
}

/*
 * tests/storage/plain_admin.c - trastenda-admin verify and restore, run as an operator would.
 *
 * A store with data takes a checkpoint; `trastenda-admin verify` accepts it (exit 0);
 * `restore` copies it into a new directory that opens with the checkpoint's state; restore into
 * a directory that is not empty is refused (exit 2); a damaged copy fails verify (exit 1).
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
    st_rmdir(dir);
    printf("plain_admin: ok (checkpoint at entry %llu)\n", (unsigned long long)seq);
    return 0;
}

/*
 * tests/engine/fuzz_entry.c - libFuzzer target for the log entry reader (docs/LOG.md).
 *
 * Followers apply entries that arrive over the network, recovery and the materializer entries
 * read from disk: whatever the bytes, trastenda_engine_apply_entry must either apply them or
 * refuse them (E_CORRUPT, E_SEQUENCE) without a crash, an abort or a read out of bounds, and a
 * refused entry must change nothing. Each input is applied to a follower that has applied the
 * first BASE entries of a fixed random run (tests/engine/gen.h), with its sequence number set to
 * the next one so that the records, not the header, get fuzzed (the header's other fields are
 * left as they are). Its records also go through the public decoders (ledger entries, events,
 * removals) and HOLD and ORDER records through the archive's single-record views.
 *
 * The seeds in tests/engine/corpus-entry/ are the entries that follow BASE in the same run:
 * `TS_FUZZ_ENTRY_SEEDS=DIR ./fuzz_entry` writes them to DIR and exits. Built with clang-14's
 * -fsanitize=fuzzer with ASan and UBSan (the sanitizer build); `make test` runs it from the seeds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "trastenda/log.h"

#define BASE  40 /* entries applied before each input */
#define SEEDS 60 /* entries written as seeds */

static uint8_t *base[BASE];
static size_t base_len[BASE];
static uint64_t base_digest;
static trastenda_engine *follower;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_entry: %s\n", what);
    abort();
}

static trastenda_engine *
engine_new(void)
{
    trastenda_engine_config cfg;
    gen_config(&cfg,
               true); /* room for every record an input can name: no fail-stop on a full table */
    trastenda_engine *e = NULL;
    if (trastenda_engine_create(&cfg, &e) != TRASTENDA_OK) die("engine_create");
    return e;
}

static void
follower_reset(void)
{
    trastenda_engine_destroy(follower);
    follower = engine_new();
    for (int i = 0; i < BASE; i++)
        if (trastenda_engine_apply_entry(follower, base[i], base_len[i]) != TRASTENDA_OK)
            die("a base entry does not apply");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    const char *seeds = getenv("TS_FUZZ_ENTRY_SEEDS");
    trastenda_engine *leader = engine_new();
    struct gen g = {.rng = {20261127}};
    trastenda_batch_out out;
    setup_batch(&b);
    for (int i = 0; i < BASE + (seeds != NULL ? SEEDS : 0); i++) {
        if (i > 0) next_batch(&g, &b);
        if (trastenda_engine_apply(leader, b.now, b.cmds, b.n, res, &out) != TRASTENDA_OK)
            die("the leader refused a batch");
        learn(&g, b.g, res, b.n);
        if (i < BASE) {
            base[i] = malloc(out.entry_len);
            if (base[i] == NULL) die("out of memory");
            memcpy(base[i], out.entry, out.entry_len);
            base_len[i] = out.entry_len;
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/entry-%02d", seeds, i - BASE);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(out.entry, 1, out.entry_len, f) != out.entry_len || fclose(f) != 0)
            die("cannot write a seed");
    }
    trastenda_engine_destroy(leader);
    if (seeds != NULL) exit(0);
    follower_reset();
    base_digest = trastenda_engine_digest(follower);
    return 0;
}

/* The public readers of each record; results unchecked: only crashes matter to them. */
static void
decode_records(const uint8_t *entry, size_t len)
{
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    if (trastenda_entry_open(entry, len, &hdr, &it) != TRASTENDA_OK) return;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    static uint8_t rec[1 + 5 + (1u << 16)];
    while (trastenda_entry_next(&it, &type, &body, &blen) == TRASTENDA_OK) {
        trastenda_ledger_entry le;
        trastenda_event ev;
        uint64_t hold;
        trastenda_str id;
        (void)trastenda_ledger_decode(body, blen, &le);
        (void)trastenda_event_decode(body, blen, &ev);
        (void)trastenda_removed_decode(type, body, blen, &hold, &id);
        if ((type != TRASTENDA_REC_HOLD && type != TRASTENDA_REC_ORDER) || blen > (1u << 16))
            continue;
        /* The record alone, as the archive keeps it: type, varint length, body. */
        size_t n = 0;
        rec[n++] = type;
        for (uint32_t v = blen;; v >>= 7) {
            rec[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
            if (v < 0x80) break;
        }
        memcpy(rec + n, body, blen);
        n += blen;
        trastenda_hold_view hv;
        trastenda_order_view ov;
        if (type == TRASTENDA_REC_HOLD)
            (void)trastenda_engine_hold_record_view(follower, rec, n, &hv);
        else
            (void)trastenda_engine_order_record_view(follower, rec, n, &ov);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact copy, so that a read past the end is an ASan report. */
    uint8_t *p = malloc(size > 0 ? size : 1);
    if (p == NULL) die("out of memory");
    if (size > 0) memcpy(p, data, size);
    if (size >= 16) {
        uint64_t seq = trastenda_engine_seq(follower) + 1;
        for (int i = 0; i < 8; i++)
            p[8 + i] = (uint8_t)(seq >> (8 * i));
    }
    decode_records(p, size);
    trastenda_err err = trastenda_engine_apply_entry(follower, p, size);
    free(p);
    if (err == TRASTENDA_OK) {
        follower_reset(); /* the next input starts from the same state */
    } else if (err != TRASTENDA_E_CORRUPT && err != TRASTENDA_E_SEQUENCE) {
        die("an unexpected error code");
    } else if (trastenda_engine_digest(follower) != base_digest) {
        die("a refused entry changed the state");
    }
    return 0;
}

/*
 * storage/ledger.h - the ledger index: movements by SKU, written by the materializer with the
 * state, read by ledger queries.
 *
 * Key: 'G', u8 sku length, sku, u64 big-endian (UINT64_MAX - newest ledger sequence of the
 * chunk). Value: u32 count, then count rows, newest first: i64 time_ms, u32 length, the LEDGER
 * record body (docs/LOG.md). A chunk holds one SKU's movements of one state write; chunks of a
 * SKU cover disjoint sequence ranges, and iterating the keys forward goes from newest to oldest.
 */
#ifndef TRASTENDA_STORAGE_LEDGER_H
#define TRASTENDA_STORAGE_LEDGER_H

#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>

#include "trastenda/storage.h"

/* Movements gathered since the last state write (materializer thread). */
struct ledger_acc {
    uint8_t *buf; /* rows: i64 time, u32 len, body */
    size_t len, cap;
    struct ledger_ref *refs;
    size_t n, refs_cap;
};

/* Gathers the kept ledger records of a log entry. false when out of memory. */
bool ledger_acc_entry(struct ledger_acc *a, const uint8_t *entry, size_t len);
/* Adds one chunk per SKU to wb and empties the accumulator. Returns the chunks written. */
uint64_t ledger_acc_flush(struct ledger_acc *a, rocksdb_writebatch_t *wb);
void ledger_acc_fini(struct ledger_acc *a);

/* Deletes (into wb) the chunks whose newest movement is older than horizon_ms. Returns how many. */
uint64_t ledger_cut(rocksdb_t *db, rocksdb_readoptions_t *ro, int64_t horizon_ms,
                    rocksdb_writebatch_t *wb);

trastenda_err ledger_read(rocksdb_t *db, rocksdb_readoptions_t *ro, const trastenda_ledger_query *q,
                          trastenda_ledger_page *page, char *err, size_t errlen);

#endif /* TRASTENDA_STORAGE_LEDGER_H */

/*
 * storage/archive.h - holds and orders that retention removed from memory, kept on disk.
 *
 * When the materializer meets a removal in a log entry, it takes the record's last post-image
 * from its own engine (before applying the entry) and writes it with the next state write:
 *   'H' + u64 big-endian (hold id / 256) -> u32 count, HOLD records sorted by id (a page: holds
 *        leave in roughly id order, so a page is written a few times, not once per hold)
 *   'O' + order id                        -> the ORDER record
 * Records are log records (type, length, body: docs/LOG.md).
 */
#ifndef TRASTENDA_STORAGE_ARCHIVE_H
#define TRASTENDA_STORAGE_ARCHIVE_H

#include <rocksdb/c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trastenda/engine.h"

struct archive_acc {
    uint8_t *buf; /* records, and order ids */
    size_t len, cap;
    struct archive_ref *refs;
    size_t n, refs_cap;
};

/* Before mat applies entry: keeps the records the entry removes. false when out of memory. */
bool archive_acc_entry(struct archive_acc *a, trastenda_engine *mat, const uint8_t *entry,
                       size_t len);
/* Into wb (merging hold pages with what db holds); empties the accumulator. Returns records. */
uint64_t archive_acc_flush(struct archive_acc *a, rocksdb_t *db, rocksdb_readoptions_t *ro,
                           rocksdb_writebatch_t *wb);
void archive_acc_fini(struct archive_acc *a);

/* E_UNKNOWN_HOLD / E_UNKNOWN_ORDER when not archived; views resolve ids with e. */
trastenda_err archive_hold_get(rocksdb_t *db, rocksdb_readoptions_t *ro, const trastenda_engine *e,
                               uint64_t id, trastenda_hold_view *out);
trastenda_err archive_order_get(rocksdb_t *db, rocksdb_readoptions_t *ro, const trastenda_engine *e,
                                trastenda_str id, trastenda_order_view *out);

#endif /* TRASTENDA_STORAGE_ARCHIVE_H */

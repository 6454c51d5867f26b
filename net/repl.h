/*
 * net/repl.h - replication (docs/REPLICATION.md): the endpoint every node serves on its
 * replication address, the follower's loop that pulls the leader's log, bootstrap from a
 * streamed checkpoint, sync-replica acknowledgements, anti-entropy digests, promotion.
 */
#ifndef TRASTENDA_NET_REPL_H
#define TRASTENDA_NET_REPL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "trastenda.h"
#include "trastenda/server.h"

struct srv;

/*
 * Before the store opens: a follower whose last run found its history gone (the leader asked it
 * to bootstrap) downloads a checkpoint from the leader into its data directory. E_IO / E_CONNECT
 * with a message when it cannot; the data directory is untouched then.
 */
trastenda_err repl_bootstrap_pending(const trastenda_server_config *cfg, char *err, size_t errlen);
/* Before anything reads the data directory: a bootstrap's swap that a crash cut short is finished
 * (trastenda_snapshot_recover), so that the node starts on the checkpoint it downloaded, with the
 * LEADER and PEERS it carries, not on an empty directory. */
trastenda_err repl_bootstrap_finish(const trastenda_server_config *cfg, char *err, size_t errlen);

/*
 * The role at start (docs/REPLICATION.md, "The role at start"). repl_follow_at_start: the
 * replication address the node follows (--follow, else the leader it followed last: its LEADER
 * file; neither when it was promoted since), NULL when it would lead. A node that would lead and
 * knows peers (repl_role_to_check) opens its store as a follower, then asks them who leads
 * (repl_role_at_start): FOLLOW (the leader's address in follow) when a peer leads at its epoch or
 * a later one, FENCED when it was fenced and nobody names a leader, else LEAD.
 */
const char *repl_follow_at_start(const trastenda_server_config *cfg, char *buf, size_t cap);
bool repl_role_to_check(const trastenda_server_config *cfg);
enum repl_role {
    REPL_ROLE_LEAD,
    REPL_ROLE_FOLLOW,
    REPL_ROLE_FENCED
};
enum repl_role repl_role_at_start(struct srv *s, char *follow, size_t cap);

/* After the store opened: the replication endpoint and, on a follower, the follower's loop. */
trastenda_err repl_start(struct srv *s, char *err, size_t errlen);
/* Stops both (before the store closes): fetches parked are answered, its threads and sockets
 * close. What the log writer's hook reads stays until repl_free, after the store closed (the
 * writer makes entries durable until then). Either may be called on a partial start. */
void repl_stop(struct srv *s);
void repl_free(struct srv *s);

/* The log writer's hook: an entry became durable (wakes waiting fetches; lag clock). */
void repl_on_durable(struct srv *s, uint64_t seq);

/* The leader's request address as this node knows it ("" when unknown). Any thread. */
const char *repl_leader(struct srv *s);

/* The "replication" map of the status reply. */
void repl_status_pack(struct srv *s, msgpack_packer *pk);

/* What /metrics and /ready read (net/http.c): a follower's own view of the leader, and on the
 * leader each follower's. Any thread; racy reads of counters, as the status map's. */
struct repl_view {
    bool follower;
    bool connected;   /* a follower: it reaches its leader */
    uint64_t lag_ops; /* a follower: log entries the leader has durable that it does not */
    uint32_t n;       /* the leader: followers it heard from */
    struct {
        char node[200]; /* a follower's address whole (ADDR_BYTES in repl.c) */
        uint64_t acked, lag_ops;
        int64_t lag_ms; /* -1: not known (past the lag clock's window) */
    } fol[16];
};
void repl_view_get(struct srv *s, struct repl_view *v);

/*
 * Promotion of this follower (slow worker thread): refused (E_INVALID, message) when it is the
 * leader already, or, unless force, when a reachable peer has applied more than it has.
 */
trastenda_err repl_promote(struct srv *s, bool force, uint64_t *epoch, uint64_t *seq, char *msg,
                           size_t msglen);

#endif /* TRASTENDA_NET_REPL_H */

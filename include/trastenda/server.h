/*
 * include/trastenda/server.h - the Trastenda server in a process: a durable store (storage.h)
 * served over nng REQ/REP with msgpack (docs/PROTOCOL.md), events on a PUB socket.
 * The `trastenda` binary is a thin main() over this.
 */
#ifndef TRASTENDA_SERVER_H
#define TRASTENDA_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "trastenda.h"
#include "trastenda/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRASTENDA_DEFAULT_LISTEN "tcp://127.0.0.1:7878"
#define TRASTENDA_DEFAULT_EVENTS "tcp://127.0.0.1:7879"
#define TRASTENDA_DEFAULT_REPL   "tcp://127.0.0.1:7880"
#define TRASTENDA_DEFAULT_HTTP   "http://127.0.0.1:7870"

/* Client certificates on TLS listeners (mutual TLS). */
typedef enum trastenda_tls_client_auth {
    TRASTENDA_TLS_CLIENT_NONE = 0,     /* not asked for */
    TRASTENDA_TLS_CLIENT_OPTIONAL = 1, /* verified against tls_ca when a client sends one */
    TRASTENDA_TLS_CLIENT_REQUIRED = 2  /* a client without one signed by tls_ca is refused */
} trastenda_tls_client_auth;

typedef struct trastenda_server_config {
    trastenda_store_config store;          /* data directory, durability, engine capacities */
    const char *listen;                    /* requests (tcp:// or ipc://) */
    const char *events;                    /* the PUB socket; NULL or "" for none */
    uint32_t contexts;                     /* requests served at once (nng contexts) */
    uint32_t max_connections;              /* more are closed as they arrive */
    uint32_t max_in_flight_per_connection; /* more get E_BUSY at once */
    /* A reply its connection does not take within this (the client stopped reading) closes the
     * connection, so that it cannot hold the contexts other clients need (default 5000; 0: no
     * limit). */
    uint32_t reply_timeout_ms;
    /* HTTP: the JSON API, /metrics, /health, /ready and the dashboard (docs/HTTP.md); http:// or
     * https://, NULL or "" for none. */
    const char *http;
    uint32_t http_contexts; /* HTTP requests served at once (more get 503, E_BUSY) */
    uint32_t http_body_max; /* bytes of a request body (more get 413, E_TOO_BIG) */
    /* TLS for tls+tcp:// and https:// listeners (docs/SECURITY.md): PEM files. */
    const char *tls_cert; /* the server's certificate, then its chain */
    const char *tls_key;  /* its private key */
    const char *tls_ca;   /* the CAs that sign client certificates */
    trastenda_tls_client_auth tls_client_auth;
    /* Access (docs/SECURITY.md): "name:secret,..." tokens; with any, writes need one, and so do
     * reads unless open_reads. NULL or "": none (every listener must then be on loopback). */
    const char *tokens;
    bool open_reads;
    /* A follower's /ready: 200 while it lags its leader by at most this many log entries (0: any
     * lag, as long as it reaches the leader). */
    uint32_t ready_max_lag;
    /* Test mode: act as a follower of this leader address (writes get E_NOT_LEADER naming it). */
    const char *not_leader;
    /*
     * Replication (docs/REPLICATION.md). repl: this node's replication endpoint (every node
     * serves one: a follower may be promoted); NULL or "" for none. follow: the leader's
     * replication address: the node starts as a follower (store.follower is set from it).
     * advertise / advertise_repl: the addresses other nodes and clients are told (NULL: listen,
     * repl). store.sync_replicas / store.sync_timeout_ms: acknowledged-write safety.
     */
    const char *repl;
    const char *follow;
    const char *repl_token; /* a follower's token for its leader's endpoint (docs/SECURITY.md) */
    const char *advertise, *advertise_repl;
    uint32_t repl_wait_ms;       /* a caught-up follower's fetch waits this long (long poll) */
    uint32_t digest_interval_ms; /* the leader's anti-entropy digests */
    uint32_t min_seq_timeout_ms; /* reads with a min_seq wait at most this long */
    trastenda_log_level log_level;
    trastenda_log_fn log; /* NULL: timestamped lines on stderr */
    void *log_ctx;
} trastenda_server_config;

void trastenda_server_config_default(trastenda_server_config *cfg);

typedef struct srv trastenda_server;

/* Opens the store (recovery), binds the sockets and starts serving. err gets a message. */
trastenda_err trastenda_server_start(const trastenda_server_config *cfg, trastenda_server **out,
                                     char *err, size_t errlen);

/*
 * Graceful stop: no new request is taken, the requests in flight are finished, made durable and
 * answered, then the sockets and the store are closed. Accepts NULL.
 */
void trastenda_server_stop(trastenda_server *s);

/* A follower that must bootstrap asks its process to restart the server (stop, then start with
 * the same configuration: the start downloads the checkpoint). Any thread. */
bool trastenda_server_wants_restart(trastenda_server *s);

/* A storage failure (a failed write or sync) stopped its store: nothing more is acknowledged, and
 * its tables may hold a batch that never became durable, which reads would show. The process
 * should stop the server and exit, for a restart to recover from the log. Any thread. */
bool trastenda_server_failed(trastenda_server *s);

#ifdef __cplusplus
}
#endif
#endif /* TRASTENDA_SERVER_H */

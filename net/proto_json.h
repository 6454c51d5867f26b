/*
 * net/proto_json.h - the JSON encoding of requests (docs/HTTP.md): the same envelope and ops as
 * msgpack (docs/PROTOCOL.md), decoded into the same struct proto_req through the same decoder
 * functions (net/proto.h, "For decoders"); proto_validate and everything after it is shared.
 */
#ifndef TRASTENDA_NET_PROTO_JSON_H
#define TRASTENDA_NET_PROTO_JSON_H

#include <jansson.h>

#include "proto.h"

/*
 * Decodes a JSON request of len bytes. Strings in q point into *doc, a parsed document the caller
 * owns: keep it while q is used, then json_decref() it (NULL on an envelope error that came before
 * parsing ended). Returns false only on an envelope error (q->err, q->msg), as
 * proto_decode_msgpack: op errors are in the ops.
 */
bool proto_decode_json(struct proto_req *q, const void *buf, size_t len, json_t **doc);

/* The same from a document built in memory (net/http.c's resource reads); root is borrowed. */
bool proto_decode_json_value(struct proto_req *q, json_t *root);

#endif /* TRASTENDA_NET_PROTO_JSON_H */

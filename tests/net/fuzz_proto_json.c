/*
 * tests/net/fuzz_proto_json.c - libFuzzer target for the JSON request decoder (net/proto_json.c).
 *
 * Every input goes through proto_decode_json, proto_validate and, for the ops that pass,
 * proto_to_cmd, as the HTTP path does, and the parsed document is released. Built with clang-14's
 * -fsanitize=fuzzer with ASan and UBSan (the sanitizer build); `make test` runs it from the seed
 * corpus in tests/net/corpus-json/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto_json.h"

static struct proto_req q;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        proto_req_init(&q);
        ready = 1;
    }
    json_t *doc = NULL;
    bool ok = proto_decode_json(&q, data, size, &doc) && proto_validate(&q);
    static trastenda_cmd cmd;
    static trastenda_line lines[PROTO_LINES_TOTAL_MAX];
    static trastenda_str chans[PROTO_CHANNELS_MAX];
    for (uint32_t i = 0; ok && i < q.n_ops; i++) {
        const struct proto_op *op = &q.ops[i];
        if (op->err != TRASTENDA_OK || !proto_kind_is_write(op->kind)) continue;
        if (op->lines_n > PROTO_LINES_TOTAL_MAX || op->channels_n > PROTO_CHANNELS_MAX) abort();
        proto_to_cmd(&q, op, NULL, &cmd, lines, chans);
        if (cmd.line_count != op->lines_n) abort();
    }
    if (!ok && q.err == TRASTENDA_OK) abort(); /* a refusal always says why */
    if (doc != NULL) json_decref(doc);
    return 0;
}

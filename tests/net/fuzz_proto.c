/*
 * tests/net/fuzz_proto.c - libFuzzer target for the request decoder and validator.
 *
 * Every input goes through proto_decode_msgpack, proto_validate and, for the ops that pass,
 * proto_to_cmd, exactly as a network thread does. Built with clang-14's -fsanitize=fuzzer with
 * ASan and UBSan (the sanitizer build); `make test` runs it for 60 s from the seed corpus in
 * tests/net/corpus/, `make fuzz FUZZ_SECONDS=N` for longer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto.h"

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
    if (!proto_decode_msgpack(&q, data, size)) return 0;
    if (!proto_validate(&q)) return 0;
    static trastenda_cmd cmd;
    static trastenda_line lines[PROTO_LINES_TOTAL_MAX];
    static trastenda_str chans[PROTO_CHANNELS_MAX];
    for (uint32_t i = 0; i < q.n_ops; i++) {
        const struct proto_op *op = &q.ops[i];
        if (op->err != TRASTENDA_OK || !proto_kind_is_write(op->kind)) continue;
        if (op->lines_n > PROTO_LINES_TOTAL_MAX || op->channels_n > PROTO_CHANNELS_MAX) abort();
        proto_to_cmd(&q, op, NULL, &cmd, lines, chans);
        if (cmd.line_count != op->lines_n) abort();
    }
    return 0;
}

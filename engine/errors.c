/*
 * engine/errors.c - names and messages of the error codes (include/trastenda.h).
 *
 * Standalone (no allocator, no engine state): the client library compiles it too.
 */
#include "trastenda.h"

#define ERR_NAME_(name, value, msg)                                                                \
    case name:                                                                                     \
        return #name;
#define ERR_MSG_(name, value, msg)                                                                 \
    case name:                                                                                     \
        return msg;

const char *
trastenda_err_name(trastenda_err err)
{
    switch (err) {
        TRASTENDA_ERRORS(ERR_NAME_)
    }
    return "TRASTENDA_E_?";
}

const char *
trastenda_err_message(trastenda_err err)
{
    switch (err) {
        TRASTENDA_ERRORS(ERR_MSG_)
    }
    return "unknown error";
}

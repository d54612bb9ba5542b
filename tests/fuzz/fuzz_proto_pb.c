/*
 * fuzz_proto_pb.c - the Protobuf Centrifuge codec on arbitrary frames.
 *
 * Decodes every Command of the input and checks: decoded views lie inside the frame, the
 * iterator only moves forward and ends exactly at the end of the frame (or reports an error
 * with a reason). For each command it encodes a subscribe reply and a publication push built
 * from the decoded fields, checks that each appended unit's length prefix spans exactly the
 * bytes appended, and reads the push back to compare data and offset.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "proto/td_pb.h"
#include "proto/td_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_view(struct td_str s, const uint8_t *frame, size_t len)
{
    if (s.n == 0)
        return;
    const uint8_t *p = (const uint8_t *)s.p;
    if (p < frame || p > frame + len || s.n > (size_t)(frame + len - p))
        abort();
}

/* Checks out[start..] is one unit and returns its message body. */
static struct td_pb_cur check_unit(const struct td_buf *out, size_t start)
{
    struct td_pb_cur c;
    uint64_t len;
    if (out->len <= start)
        abort();
    td_pb_cur_init(&c, out->data + start, out->len - start);
    if (td_pb_read_varint(&c, &len) != 0 || len != td_pb_cur_left(&c))
        abort();
    return c;
}

/* Finds the first field num of type LEN (or varint) in the message at c. */
static bool find_field(struct td_pb_cur c, uint32_t num, struct td_pb_cur *sub, uint64_t *v)
{
    while (td_pb_cur_left(&c) > 0) {
        uint32_t f;
        enum td_pb_wire w;
        if (td_pb_read_tag(&c, &f, &w) != 0)
            abort(); /* our own output must parse */
        if (w == TD_PB_LEN) {
            const uint8_t *p;
            size_t n;
            if (td_pb_read_len(&c, &p, &n) != 0)
                abort();
            if (f == num && sub != NULL) {
                td_pb_cur_init(sub, p, n);
                return true;
            }
        } else if (w == TD_PB_VARINT) {
            uint64_t x;
            if (td_pb_read_varint(&c, &x) != 0)
                abort();
            if (f == num && v != NULL) {
                *v = x;
                return true;
            }
        } else {
            abort(); /* the encoder only writes varint and len fields */
        }
    }
    return false;
}

static void encode_and_check(const struct td_cmd *cmd, struct td_buf *out)
{
    struct td_client_info info = {
        .user = cmd->name, .client = cmd->token, .conn_info = cmd->data, .chan_info = cmd->epoch};
    struct td_publication pubs[2] = {
        {.offset = cmd->offset, .data = cmd->data, .info = &info, .time = cmd->flag},
        {.offset = cmd->since_offset, .data = cmd->channel, .info = NULL, .time = cmd->limit},
    };
    struct td_subscribe_result sr = {
        .expires = cmd->recover,
        .ttl = cmd->id,
        .recoverable = cmd->recoverable,
        .positioned = cmd->positioned,
        .recovered = cmd->join_leave,
        .was_recovering = cmd->reverse,
        .epoch = cmd->epoch,
        .offset = cmd->offset,
        .pubs = pubs,
        .npubs = cmd->has_data ? 2 : 1,
        .data = cmd->data,
    };

    size_t start = out->len;
    td_codec_protobuf.reply_subscribe(out, cmd->id, &sr);
    struct td_pb_cur reply = check_unit(out, start);
    struct td_pb_cur res;
    if (!find_field(reply, 6, &res, NULL))
        abort(); /* result always present */

    start = out->len;
    td_codec_protobuf.push_pub(out, cmd->channel, &pubs[0]);
    reply = check_unit(out, start);
    struct td_pb_cur push, pub, d;
    uint64_t off = 0;
    if (!find_field(reply, 4, &push, NULL) || !find_field(push, 4, &pub, NULL))
        abort();
    bool has_d = find_field(pub, 4, &d, NULL);
    if (has_d != (cmd->data.n > 0))
        abort();
    if (has_d && (td_pb_cur_left(&d) != cmd->data.n || memcmp(d.p, cmd->data.p, cmd->data.n)))
        abort();
    find_field(pub, 6, NULL, &off);
    if (off != cmd->offset)
        abort();

    start = out->len;
    td_codec_protobuf.reply_error(out, cmd->id, (uint32_t)cmd->type, "bad request",
                                  cmd->positioned);
    check_unit(out, start);
    start = out->len;
    td_codec_protobuf.push_join(out, cmd->channel, &info);
    check_unit(out, start);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *frame = malloc(size > 0 ? size : 1);
    if (frame == NULL)
        return 0;
    if (size > 0)
        memcpy(frame, data, size);
    struct td_cmd_iter it;
    struct td_cmd cmd;
    struct td_buf out;
    td_buf_init(&out);
    td_cmd_iter_init(&it, frame, size);
    int rc;
    for (;;) {
        size_t before = it.pos;
        rc = td_codec_protobuf.decode_next(&it, &cmd);
        if (rc != 1)
            break;
        if (it.pos <= before || it.pos > size)
            abort(); /* every command consumes at least its length prefix */
        if ((unsigned)cmd.kind > (unsigned)TD_CMD_SUB_REFRESH)
            abort();
        const struct td_str views[] = {cmd.channel, cmd.token,  cmd.data,  cmd.epoch,      cmd.name,
                                       cmd.version, cmd.method, cmd.delta, cmd.since_epoch};
        for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
            check_view(views[i], frame, size);
        if (cmd.has_since && cmd.kind != TD_CMD_HISTORY)
            abort();
        encode_and_check(&cmd, &out);
        if (out.len > (1u << 20))
            td_buf_reset(&out);
    }
    if (rc == 0 && (it.pos != size || size == 0))
        abort();
    if (rc < 0 && (rc != TD_EPROTO || it.error == NULL))
        abort();
    if (rc == TD_EPROTO && size > 0 && it.pos >= size)
        abort(); /* an error is only reported where bytes remain */
    td_buf_free(&out);
    free(frame);
    return 0;
}

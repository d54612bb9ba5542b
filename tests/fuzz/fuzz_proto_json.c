/*
 * Fuzz target for the JSON codec: decode every command of a frame; for each one, check the
 * views lie inside the frame, re-encode replies and pushes from its fields and check they
 * are valid single-line JSON, and round-trip channel/id/data through a rebuilt command.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "core/td_json.h"
#include "proto/td_proto.h"

static void check_view(struct td_str s, const uint8_t *frame, size_t n)
{
    if (s.n == 0)
        return;
    if ((const uint8_t *)s.p < frame || (const uint8_t *)s.p + s.n > frame + n)
        abort();
}

static void check_unit(struct td_buf *b)
{
    if (!td_json_valid((const char *)b->data, b->len) || memchr(b->data, '\n', b->len) != NULL)
        abort();
    /* A reply or push is a JSON object, so it also decodes as one command line. */
    struct td_cmd_iter it;
    struct td_cmd cmd;
    td_cmd_iter_init(&it, b->data, b->len);
    if (td_codec_json.decode_next(&it, &cmd) != 1 || td_codec_json.decode_next(&it, &cmd) != 0)
        abort();
    td_buf_reset(b);
}

static void reencode(const struct td_cmd *cmd, struct td_buf *b)
{
    const struct td_codec *j = &td_codec_json;
    struct td_client_info info = {
        .user = cmd->token, .client = cmd->name, .conn_info = cmd->data, .chan_info = cmd->data};
    struct td_publication pub = {
        .offset = cmd->offset, .data = cmd->data, .info = &info, .time = cmd->flag};

    j->push_pub(b, cmd->channel, &pub);
    check_unit(b);
    j->push_join(b, cmd->channel, &info);
    check_unit(b);
    j->push_message(b, cmd->data);
    check_unit(b);
    j->reply_presence(b, cmd->id, &info, 1);
    check_unit(b);
    struct td_subscribe_result sr = {.recoverable = cmd->recoverable,
                                     .positioned = cmd->positioned,
                                     .recovered = cmd->recover,
                                     .epoch = cmd->epoch,
                                     .offset = cmd->offset,
                                     .pubs = &pub,
                                     .npubs = 1,
                                     .data = cmd->data};
    j->reply_subscribe(b, cmd->id, &sr);
    check_unit(b);
    struct td_history_result hr = {
        .pubs = &pub, .npubs = 1, .epoch = cmd->since_epoch, .offset = cmd->since_offset};
    j->reply_history(b, cmd->id, &hr);
    check_unit(b);
    j->reply_empty(b, cmd->id, cmd->kind);
    check_unit(b);
    j->reply_rpc(b, cmd->id, cmd->data);
    check_unit(b);
    char reason[64];
    size_t rn = cmd->method.n < sizeof(reason) - 1 ? cmd->method.n : sizeof(reason) - 1;
    memcpy(reason, cmd->method.p != NULL ? cmd->method.p : "", rn);
    reason[rn] = '\0';
    j->reply_error(b, cmd->id, 100, reason, cmd->reverse);
    check_unit(b);

    /* Round trip: rebuild a publish command from the fields and decode it again. */
    td_buf_append_str(b, "{\"publish\":{\"channel\":");
    td_json_write_string(b, cmd->channel.p, cmd->channel.n);
    if (cmd->has_data) {
        td_buf_append_str(b, ",\"data\":");
        for (size_t i = 0; i < cmd->data.n; i++) {
            if (cmd->data.p[i] != '\n' && cmd->data.p[i] != '\r')
                td_buf_append_byte(b, (uint8_t)cmd->data.p[i]);
        }
    }
    td_buf_appendf(b, "},\"id\":%u}", cmd->id);
    struct td_cmd_iter it;
    struct td_cmd back;
    td_cmd_iter_init(&it, b->data, b->len);
    if (td_codec_json.decode_next(&it, &back) != 1)
        abort();
    if (back.kind != TD_CMD_PUBLISH || back.id != cmd->id || back.has_data != cmd->has_data ||
        back.channel.n != cmd->channel.n ||
        (cmd->channel.n && memcmp(back.channel.p, cmd->channel.p, cmd->channel.n) != 0))
        abort();
    td_buf_reset(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *frame = malloc(size ? size : 1);
    if (size)
        memcpy(frame, data, size);
    struct td_cmd_iter it;
    struct td_cmd cmd;
    struct td_buf b;
    td_buf_init(&b);
    td_cmd_iter_init(&it, frame, size);
    int rc;
    while ((rc = td_codec_json.decode_next(&it, &cmd)) == 1) {
        const struct td_str views[] = {cmd.channel, cmd.token,  cmd.data,  cmd.epoch,      cmd.name,
                                       cmd.version, cmd.method, cmd.delta, cmd.since_epoch};
        for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
            check_view(views[i], frame, size);
        if (cmd.has_data && !td_json_valid(cmd.data.p, cmd.data.n))
            abort();
        if (!cmd.has_data && cmd.data.n != 0)
            abort();
        reencode(&cmd, &b);
    }
    if (rc < 0 && it.error == NULL)
        abort();
    if (rc != 0 && rc != TD_EPROTO)
        abort();
    td_buf_free(&b);
    free(frame);
    return 0;
}

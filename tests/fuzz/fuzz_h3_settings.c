/*
 * Fuzz target for the td_h3 SETTINGS payload codec.
 *
 * The input is a SETTINGS frame payload. When it decodes, the settings are re-encoded,
 * decoded again (the same known values must come back, unknown ones dropped) and encoded
 * once more (the bytes must be identical: the encoder is canonical). The negotiated
 * WebTransport version must be consistent with the settings that decide it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/td_buf.h"
#include "core/td_err.h"
#include "quic/td_h3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static int same_known(const struct td_h3_settings *a, const struct td_h3_settings *b)
{
    return a->present == b->present && a->qpack_max_table_capacity == b->qpack_max_table_capacity &&
           a->max_field_section_size == b->max_field_section_size &&
           a->qpack_blocked_streams == b->qpack_blocked_streams &&
           a->enable_connect_protocol == b->enable_connect_protocol &&
           a->h3_datagram == b->h3_datagram && a->h3_datagram_draft04 == b->h3_datagram_draft04 &&
           a->enable_webtransport == b->enable_webtransport &&
           a->wt_max_sessions_d07 == b->wt_max_sessions_d07 &&
           a->wt_enabled_d15 == b->wt_enabled_d15 &&
           a->wt_max_sessions_d13 == b->wt_max_sessions_d13;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct td_h3_settings s;
    int rv = td_h3_settings_decode(data, size, &s);
    if (rv != 0) {
        CHECK(rv == TD_EPROTO || rv == TD_ELIMIT);
        CHECK(rv != TD_ELIMIT || size > TD_H3_SETTINGS_MAX_LEN);
        return 0;
    }
    CHECK(size <= TD_H3_SETTINGS_MAX_LEN);
    CHECK(s.unknown <= size / 2);
    struct td_buf a, b;
    td_buf_init(&a);
    td_buf_init(&b);
    CHECK(td_h3_settings_append(&a, &s) == 0);
    struct td_h3_settings s2;
    CHECK(td_h3_settings_decode(a.data, a.len, &s2) == 0);
    CHECK(same_known(&s, &s2) && s2.unknown == 0);
    CHECK(td_h3_settings_append(&b, &s2) == 0);
    CHECK(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0));

    enum td_h3_wt_version v = td_h3_settings_wt_version(&s);
    CHECK(v == td_h3_settings_wt_version(&s2));
    if (v == TD_H3_WT_DRAFT07)
        CHECK((s.present & TD_H3_SET_H3_DATAGRAM) && s.h3_datagram == 1 &&
              s.wt_max_sessions_d07 > 0);
    if (v == TD_H3_WT_DRAFT02)
        CHECK((s.present & TD_H3_SET_ENABLE_WEBTRANSPORT) && s.enable_webtransport == 1);

    /* Our own control-stream preamble always parses as a control stream + SETTINGS. */
    td_buf_reset(&b);
    CHECK(td_h3_control_stream_open_append(&b, &s) == 0);
    struct td_h3_stream_prefix sp;
    struct td_h3_frame_hdr h;
    CHECK(td_h3_stream_prefix_decode(b.data, b.len, 0, &sp) == 0);
    CHECK(sp.kind == TD_H3_STREAM_CONTROL);
    CHECK(td_h3_frame_hdr_decode(b.data + sp.len, b.len - sp.len, &h) == 0);
    CHECK(h.type == TD_H3_FRAME_SETTINGS && h.len == a.len);
    CHECK(sp.len + h.hdr_len + a.len == b.len);
    td_buf_free(&a);
    td_buf_free(&b);
    return 0;
}

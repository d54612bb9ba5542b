#include "core/td_buf.h"
#include "core/td_err.h"
#include "td_test.h"

TD_TEST(buf_append_and_consume)
{
    struct td_buf b;
    td_buf_init(&b);
    td_buf_append_str(&b, "hello ");
    td_buf_appendf(&b, "%d %s", 42, "world");
    TD_CHECK_MEM_STR(b.data, b.len, "hello 42 world");
    td_buf_consume(&b, 6);
    TD_CHECK_MEM_STR(b.data, b.len, "42 world");
    td_buf_free(&b);
    TD_CHECK(b.data == NULL && b.len == 0);
}

TD_TEST(buf_appendf_long)
{
    struct td_buf b;
    td_buf_init(&b);
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    td_buf_appendf(&b, "<%s>", big);
    TD_CHECK_EQ_INT(b.len, 601);
    TD_CHECK(b.data[0] == '<' && b.data[600] == '>');
    td_buf_free(&b);
}

TD_TEST(rbuf_refcount)
{
    struct td_rbuf *r = td_rbuf_from("abc", 3);
    TD_CHECK_EQ_INT(r->refs, 1);
    td_rbuf_ref(r);
    TD_CHECK_EQ_INT(r->refs, 2);
    td_rbuf_unref(r);
    TD_CHECK_EQ_INT(r->refs, 1);
    td_rbuf_unref(r);
}

TD_TEST(strerror_names_codes)
{
    TD_CHECK(strcmp(td_strerror(TD_ELIMIT), "limit exceeded") == 0);
    TD_CHECK(strcmp(td_strerror(TD_EPROTO), "protocol error") == 0);
}

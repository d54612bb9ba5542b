/* Document operations of the durable store (Yjs rooms), on a real SQLite file. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/td_err.h"
#include "crdt/td_ydoc.h"
#include "store/td_store.h"
#include "td_test.h"

static char *doc_tmpdir(void)
{
    char tmpl[] = "/tmp/td-store-doc-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static void doc_rmdir(char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(dir);
}

static struct td_store_op doc_op(enum td_store_op_kind kind, const char *room, const void *data,
                                 size_t len)
{
    struct td_store_op op;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.channel = room;
    op.channel_len = strlen(room);
    op.doc_data = data;
    op.doc_len = len;
    td_buf_init(&op.doc_out);
    return op;
}

/* Inserts text at the end of root "t" of d and returns the transaction's update in out. */
static void doc_edit(struct td_ydoc *d, const char *text, struct td_buf *out)
{
    td_buf_reset(out);
    td_ydoc_begin(d);
    TD_CHECK(td_ydoc_text_insert(d, "t", td_ydoc_text_length(d, "t"), text, strlen(text)) == 0);
    TD_CHECK(td_ydoc_commit(d, out, 1) == 0);
}

/* Loads room into a fresh document and checks its text. */
static void doc_expect(struct td_store *st, const char *room, const char *text, uint64_t rows)
{
    struct td_store_op op = doc_op(TD_STORE_OP_DOC_LOAD, room, NULL, 0);
    struct td_store_op *ops[] = {&op};
    char err[256];
    TD_REQUIRE(td_store_commit(st, ops, 1, err, sizeof(err)) == 0);
    TD_CHECK_EQ_INT(op.status, 0);
    TD_CHECK_EQ_INT(op.doc_rows, rows);
    struct td_ydoc *d = td_ydoc_new(99);
    if (op.doc_out.len > 0)
        TD_CHECK(td_ydoc_apply(d, op.doc_out.data, op.doc_out.len, 1, NULL) == 0);
    struct td_buf t;
    td_buf_init(&t);
    if (td_ydoc_text(d, "t", &t) == 0 || text[0] != 0)
        TD_CHECK_MEM_STR(t.data ? (const char *)t.data : "", t.len, text);
    td_buf_free(&t);
    td_ydoc_del(d);
    td_buf_free(&op.doc_out);
}

TD_TEST(store_doc_append_load_compact)
{
    char *dir = doc_tmpdir();
    TD_REQUIRE(dir != NULL);
    char err[256];
    struct td_store *st = NULL;
    TD_REQUIRE(td_store_open(dir, TD_STORE_SYNC_OFF, &st, err, sizeof(err)) == 0);

    doc_expect(st, "r1", "", 0); /* an unknown room loads as nothing */

    struct td_ydoc *src = td_ydoc_new(7);
    struct td_buf u1, u2, u3;
    td_buf_init(&u1);
    td_buf_init(&u2);
    td_buf_init(&u3);
    doc_edit(src, "hello", &u1);
    doc_edit(src, " world", &u2);
    doc_edit(src, "!", &u3);
    /* two appends in one batch, one to another room; then one more in its own batch */
    struct td_store_op a1 = doc_op(TD_STORE_OP_DOC_APPEND, "r1", u1.data, u1.len);
    struct td_store_op a2 = doc_op(TD_STORE_OP_DOC_APPEND, "r1", u2.data, u2.len);
    struct td_store_op other = doc_op(TD_STORE_OP_DOC_APPEND, "r2", u1.data, u1.len);
    struct td_store_op *b1[] = {&a1, &other, &a2};
    TD_REQUIRE(td_store_commit(st, b1, 3, err, sizeof(err)) == 0);
    TD_CHECK_EQ_INT(a1.status, 0);
    TD_CHECK_EQ_INT(a2.status, 0);
    struct td_store_op a3 = doc_op(TD_STORE_OP_DOC_APPEND, "r1", u3.data, u3.len);
    struct td_store_op *b2[] = {&a3};
    TD_REQUIRE(td_store_commit(st, b2, 1, err, sizeof(err)) == 0);
    doc_expect(st, "r1", "hello world!", 3);
    doc_expect(st, "r2", "hello", 1);

    /* compaction: one snapshot row replaces the three */
    struct td_buf snap;
    td_buf_init(&snap);
    TD_REQUIRE(td_ydoc_encode_state(src, NULL, 1, &snap) == 0);
    struct td_store_op c = doc_op(TD_STORE_OP_DOC_COMPACT, "r1", snap.data, snap.len);
    struct td_store_op *b3[] = {&c};
    TD_REQUIRE(td_store_commit(st, b3, 1, err, sizeof(err)) == 0);
    TD_CHECK_EQ_INT(c.status, 0);
    TD_CHECK_EQ_INT(c.doc_rows, 3);
    doc_expect(st, "r1", "hello world!", 1);
    doc_expect(st, "r2", "hello", 1);

    /* the store survives a reopen */
    td_store_close(st);
    TD_REQUIRE(td_store_open(dir, TD_STORE_SYNC_OFF, &st, err, sizeof(err)) == 0);
    doc_expect(st, "r1", "hello world!", 1);

    td_buf_free(&snap);
    td_buf_free(&u1);
    td_buf_free(&u2);
    td_buf_free(&u3);
    td_ydoc_del(src);
    td_store_close(st);
    doc_rmdir(dir);
}

TD_TEST(store_doc_corrupt_row_fails_only_its_op)
{
    char *dir = doc_tmpdir();
    TD_REQUIRE(dir != NULL);
    char err[256];
    struct td_store *st = NULL;
    TD_REQUIRE(td_store_open(dir, TD_STORE_SYNC_OFF, &st, err, sizeof(err)) == 0);
    static const uint8_t junk[] = {0x05, 0xff, 0xff};
    struct td_store_op a = doc_op(TD_STORE_OP_DOC_APPEND, "bad", junk, sizeof(junk));
    struct td_store_op a2 = doc_op(TD_STORE_OP_DOC_APPEND, "bad", junk, sizeof(junk));
    struct td_store_op *b1[] = {&a, &a2};
    TD_REQUIRE(td_store_commit(st, b1, 2, err, sizeof(err)) == 0);
    struct td_store_op l = doc_op(TD_STORE_OP_DOC_LOAD, "bad", NULL, 0);
    struct td_store_op ok = doc_op(TD_STORE_OP_DOC_APPEND, "good", junk, 1);
    struct td_store_op *b2[] = {&l, &ok};
    TD_REQUIRE(td_store_commit(st, b2, 2, err, sizeof(err)) == 0);
    TD_CHECK_EQ_INT(l.status, TD_EPROTO);
    TD_CHECK_EQ_INT(l.doc_rows, 2);
    TD_CHECK_EQ_INT(ok.status, 0);
    td_buf_free(&l.doc_out);
    td_store_close(st);
    doc_rmdir(dir);
}

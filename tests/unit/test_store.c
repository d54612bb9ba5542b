/* The durable store on a real SQLite file in a temporary directory. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/td_err.h"
#include "store/td_store.h"
#include "td_test.h"

static char *store_tmpdir(void)
{
    char tmpl[] = "/tmp/td-store-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static void store_rmdir(char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(dir);
}

static struct td_store_op store_pub_op(const char *chan, const char *epoch, struct td_pub *pub,
                                       uint32_t size, const char *key, int64_t wall)
{
    struct td_store_op op;
    memset(&op, 0, sizeof(op));
    op.kind = TD_STORE_OP_PUBLISH;
    op.channel = chan;
    op.channel_len = strlen(chan);
    snprintf(op.epoch, sizeof(op.epoch), "%s", epoch);
    op.pub = pub;
    op.wall_ms = wall;
    op.expires_ms = wall + 60000;
    op.history_size = size;
    op.idem_key = key;
    op.idem_key_len = key ? strlen(key) : 0;
    op.idem_expires_ms = wall + 1000;
    return op;
}

struct loaded {
    char epoch[TD_EPOCH_LEN + 1];
    uint64_t top;
    int channels;
    uint64_t offsets[16];
    char data[16][16];
    bool info[16];
    int npubs;
};

static void *on_chan(void *ud, const char *name, size_t len, const char *epoch, uint64_t top,
                     int64_t last)
{
    (void)name, (void)len, (void)last;
    struct loaded *l = ud;
    snprintf(l->epoch, sizeof(l->epoch), "%s", epoch);
    l->top = top;
    l->channels++;
    return l;
}

static void on_pub(void *ud, void *ch, uint64_t offset, int64_t wall, struct td_str data,
                   bool has_info, const struct td_client_info *info)
{
    (void)wall;
    if (ch != ud)
        td_test_fail(__FILE__, __LINE__, "channel handle");
    struct loaded *l = ud;
    if (l->npubs >= 16)
        return;
    l->offsets[l->npubs] = offset;
    snprintf(l->data[l->npubs], sizeof(l->data[0]), "%.*s", (int)data.n, data.p);
    l->info[l->npubs] = has_info && info->user.n == 3 && memcmp(info->user.p, "bob", 3) == 0;
    l->npubs++;
}

TD_TEST(store_publish_reopen_trim_idem)
{
    char *dir = store_tmpdir();
    TD_REQUIRE(dir != NULL);
    char err[256];
    struct td_store *st;
    TD_REQUIRE(td_store_open(dir, TD_STORE_SYNC_OFF, &st, err, sizeof(err)) == 0);

    struct td_client_info info = {0};
    info.user = (struct td_str){"bob", 3};
    struct td_pub *pubs[6];
    struct td_store_op ops[6];
    struct td_store_op *ptrs[6];
    for (int i = 0; i < 6; i++) {
        char d[8];
        snprintf(d, sizeof(d), "\"m%d\"", i);
        pubs[i] = td_pub_new((struct td_str){d, strlen(d)}, i == 0 ? &info : NULL, 0);
        ops[i] = store_pub_op("ch", "EPOCH123", pubs[i], 4, i == 5 ? "k" : NULL, 1000);
        ptrs[i] = &ops[i];
    }
    /* one batch of five, then a retry of the keyed publish in its own batch */
    TD_CHECK(td_store_commit(st, ptrs, 6, err, sizeof(err)) == 0);
    for (int i = 0; i < 6; i++) {
        TD_CHECK(ops[i].status == 0);
        TD_CHECK(ops[i].offset == (uint64_t)i + 1);
    }
    struct td_store_op retry = store_pub_op("ch", "IGNORED1", pubs[0], 4, "k", 1500);
    struct td_store_op *rp = &retry;
    TD_CHECK(td_store_commit(st, &rp, 1, err, sizeof(err)) == 0);
    TD_CHECK(retry.idem_hit);
    TD_CHECK(retry.offset == 6);
    td_store_close(st);

    /* reopen: epoch kept, top continues, history trimmed to the newest 4 */
    TD_REQUIRE(td_store_open(dir, TD_STORE_SYNC_OFF, &st, err, sizeof(err)) == 0);
    struct loaded l;
    memset(&l, 0, sizeof(l));
    struct td_store_load_cb cb = {on_chan, on_pub, &l};
    TD_CHECK(td_store_load(st, 2000, 100, &cb, err, sizeof(err)) == 0);
    TD_CHECK(l.channels == 1);
    TD_CHECK(strcmp(l.epoch, "EPOCH123") == 0);
    TD_CHECK(l.top == 6);
    TD_CHECK(l.npubs == 4);
    TD_CHECK(l.offsets[0] == 3 && l.offsets[3] == 6);
    TD_CHECK(strcmp(l.data[3], "\"m5\"") == 0);

    /* the key expired at 2000: a publish with it is new */
    struct td_store_op again = store_pub_op("ch", "EPOCH123", pubs[1], 4, "k", 2500);
    rp = &again;
    TD_CHECK(td_store_commit(st, &rp, 1, err, sizeof(err)) == 0);
    TD_CHECK(!again.idem_hit);
    TD_CHECK(again.offset == 7);

    /* expiry removes rows past their TTL; drop forgets the channel */
    TD_CHECK(td_store_expire(st, 1000 + 60000, 100) >= 3);
    struct td_store_op drop;
    memset(&drop, 0, sizeof(drop));
    drop.kind = TD_STORE_OP_DROP;
    drop.channel = "ch";
    drop.channel_len = 2;
    rp = &drop;
    TD_CHECK(td_store_commit(st, &rp, 1, err, sizeof(err)) == 0);
    memset(&l, 0, sizeof(l));
    TD_CHECK(td_store_load(st, 2000, 100, &cb, err, sizeof(err)) == 0);
    TD_CHECK(l.channels == 0);
    td_store_close(st);
    for (int i = 0; i < 6; i++)
        td_pub_unref(pubs[i]);
    store_rmdir(dir);
}

TD_TEST(store_first_info_roundtrip)
{
    char *dir = store_tmpdir();
    TD_REQUIRE(dir != NULL);
    char err[256];
    struct td_store *st;
    TD_REQUIRE(td_store_open(dir, TD_STORE_SYNC_NORMAL, &st, err, sizeof(err)) == 0);
    struct td_client_info info = {0};
    info.user = (struct td_str){"bob", 3};
    info.client = (struct td_str){"c1", 2};
    struct td_pub *p = td_pub_new((struct td_str){"{}", 2}, &info, 0);
    struct td_store_op op = store_pub_op("x", "ABCDEFGH", p, 10, NULL, 5);
    struct td_store_op *rp = &op;
    TD_CHECK(td_store_commit(st, &rp, 1, err, sizeof(err)) == 0);
    struct loaded l;
    memset(&l, 0, sizeof(l));
    struct td_store_load_cb cb = {on_chan, on_pub, &l};
    TD_CHECK(td_store_load(st, 10, 100, &cb, err, sizeof(err)) == 0);
    TD_CHECK(l.npubs == 1 && l.info[0]);
    td_store_close(st);
    td_pub_unref(p);
    store_rmdir(dir);
}

TD_TEST(store_refuses_newer_schema)
{
    char *dir = store_tmpdir();
    TD_REQUIRE(dir != NULL);
    char err[256];
    struct td_store *st;
    TD_REQUIRE(td_store_open(dir, TD_STORE_SYNC_OFF, &st, err, sizeof(err)) == 0);
    td_store_close(st);
    char path[300];
    snprintf(path, sizeof(path), "%s/tandem.db", dir);
    sqlite3 *db;
    TD_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    TD_CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    TD_CHECK(td_store_open(dir, TD_STORE_SYNC_OFF, &st, err, sizeof(err)) == TD_EINVAL);
    TD_CHECK(strstr(err, "schema version 99") != NULL);
    store_rmdir(dir);
}

TD_TEST(store_unusable_dir)
{
    char err[256];
    struct td_store *st = NULL;
    TD_CHECK(td_store_open("/proc/td-no-such/dir", TD_STORE_SYNC_OFF, &st, err, sizeof(err)) < 0);
    TD_CHECK(st == NULL);
    TD_CHECK(strstr(err, "cannot create data directory") != NULL);
}

/* A database written by the first release (history clustered by channel, schema 1) is
 * migrated to the log layout with its history, epoch and offsets intact. */
TD_TEST(store_migrates_schema_1)
{
    char *dir = store_tmpdir();
    TD_REQUIRE(dir != NULL);
    char path[300];
    snprintf(path, sizeof(path), "%s/tandem.db", dir);
    sqlite3 *db;
    TD_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    const char *v1 =
        "CREATE TABLE channels (id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE, epoch TEXT "
        "NOT NULL, top INTEGER NOT NULL DEFAULT 0, last_pub_ms INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE pubs (chan INTEGER NOT NULL, off INTEGER NOT NULL, time_ms INTEGER NOT "
        "NULL, expires_ms INTEGER NOT NULL, data BLOB NOT NULL, has_info INTEGER NOT NULL, user "
        "BLOB, client BLOB, conn_info BLOB, chan_info BLOB, PRIMARY KEY (chan, off)) WITHOUT "
        "ROWID;"
        "CREATE INDEX pubs_expires ON pubs (expires_ms) WHERE expires_ms > 0;"
        "CREATE TABLE idem (chan INTEGER NOT NULL, key BLOB NOT NULL, off INTEGER NOT NULL, "
        "expires_ms INTEGER NOT NULL, PRIMARY KEY (chan, key)) WITHOUT ROWID;"
        "CREATE INDEX idem_expires ON idem (expires_ms);"
        "INSERT INTO channels VALUES (1, X'6368', 'OLDEPOCH', 9, 100);"
        "INSERT INTO pubs VALUES (1, 8, 100, 0, '\"m8\"', 0, NULL, NULL, NULL, NULL);"
        "INSERT INTO pubs VALUES (1, 9, 100, 0, '\"m9\"', 0, NULL, NULL, NULL, NULL);"
        "PRAGMA user_version = 1;";
    TD_CHECK(sqlite3_exec(db, v1, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    char err[256];
    struct td_store *st;
    TD_REQUIRE(td_store_open(dir, TD_STORE_SYNC_OFF, &st, err, sizeof(err)) == 0);
    struct loaded l;
    memset(&l, 0, sizeof(l));
    struct td_store_load_cb cb = {on_chan, on_pub, &l};
    TD_CHECK(td_store_load(st, 200, 100, &cb, err, sizeof(err)) == 0);
    TD_CHECK(strcmp(l.epoch, "OLDEPOCH") == 0);
    TD_CHECK(l.top == 9);
    TD_CHECK(l.npubs == 2);
    TD_CHECK(l.offsets[0] == 8 && l.offsets[1] == 9);
    /* and it keeps working: the next offset is 10 */
    struct td_pub *p = td_pub_new((struct td_str){"1", 1}, NULL, 0);
    struct td_store_op op = store_pub_op("ch", "OLDEPOCH", p, 100, NULL, 300);
    struct td_store_op *rp = &op;
    TD_CHECK(td_store_commit(st, &rp, 1, err, sizeof(err)) == 0);
    TD_CHECK(op.offset == 10);
    td_store_close(st);
    td_pub_unref(p);
    store_rmdir(dir);
}

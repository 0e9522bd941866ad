/*
 * sqlite_lock: an sqlite writer in the middle of a transaction (issue 11:
 * "an sqlite writer holding a lock").
 * e2e-ldlibs: -lsqlite3 -lm
 *
 * The process commits 100 rows to test.db, then opens a write transaction
 * (BEGIN IMMEDIATE: sqlite's RESERVED lock, a POSIX lock on the database
 * file) and inserts 1000 more rows, their old pages in test.db-journal.
 * After SIGTERM: another process (the sqlite3 command, started fresh)
 * must find the database locked; the transaction then commits, and the
 * database passes PRAGMA integrity_check with all 1100 rows, seen by this
 * connection and by a new sqlite3 process.
 */
#include "wl.h"
#include <sqlite3.h>
#include <sys/wait.h>

static sqlite3 *db;

static int exec(const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		wl_fail("%s: %s", sql, err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
	}
	return rc;
}

static int count_cb(void *arg, int n, char **vals, char **names)
{
	(void)n, (void)names;
	snprintf((char *)arg, 64, "%s", vals[0] ? vals[0] : "");
	return 0;
}

static const char *one(const char *sql)
{
	static char out[64];
	out[0] = 0;
	char *err = NULL;
	if (sqlite3_exec(db, sql, count_cb, out, &err) != SQLITE_OK) {
		wl_fail("%s: %s", sql, err);
		sqlite3_free(err);
	}
	return out;
}

/* runs sqlite3 test.db SQL in a new process; returns its exit status and
 * its output in out. */
static int cli(const char *sql, char *out, size_t size)
{
	int p[2];
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execlp("sqlite3", "sqlite3", "test.db", sql, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t n;
	while (got + 1 < size && (n = read(p[0], out + got, size - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = 0;
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int main(int argc, char **argv)
{
	char sql[512], out[512];
	wl_init(argc, argv);
	unlink("test.db");
	unlink("test.db-journal");
	if (sqlite3_open("test.db", &db) != SQLITE_OK)
		wl_die("open test.db: %s", sqlite3_errmsg(db));
	if (exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"))
		wl_die("create table");
	exec("BEGIN");
	for (int i = 0; i < 100; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO t(v) VALUES('before %d %0200d')", i, i);
		exec(sql);
	}
	exec("COMMIT");
	exec("BEGIN IMMEDIATE");
	for (int i = 0; i < 1000; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO t(v) VALUES('during %d %0200d')", i, i);
		exec(sql);
	}
	if (access("test.db-journal", F_OK))
		wl_die("no journal in the transaction: %s", strerror(errno));
	int rc = cli("PRAGMA busy_timeout=0; BEGIN IMMEDIATE; ROLLBACK;", out, sizeof(out));
	if (rc == 127)
		wl_skip("no sqlite3 command");
	if (rc == 0 || !strstr(out, "locked"))
		wl_die("before the dump, another writer was not refused: status %d: %s", rc, out);
	wl_ready();
	wl_wait_stop();

	if (wl_corrupt)
		exec("ROLLBACK");
	rc = cli("PRAGMA busy_timeout=0; BEGIN IMMEDIATE; ROLLBACK;", out, sizeof(out));
	CHECK(rc != 0 && strstr(out, "locked"), "after the restore, another writer was not refused (the lock is lost): status %d: %s", rc, out);
	CHECK(strcmp(one("SELECT count(*) FROM t"), "1100") == 0, "in the transaction: %s rows, want 1100", one("SELECT count(*) FROM t"));
	if (!wl_corrupt)
		exec("COMMIT");
	CHECK(strcmp(one("PRAGMA integrity_check"), "ok") == 0, "integrity_check: %s", one("PRAGMA integrity_check"));
	sqlite3_close(db);
	rc = cli("PRAGMA integrity_check; SELECT count(*) FROM t;", out, sizeof(out));
	CHECK(rc == 0 && strcmp(out, "ok\n1100\n") == 0, "a new sqlite3 after the commit: status %d: %s", rc, out);
	return wl_finish();
}

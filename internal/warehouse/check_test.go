package warehouse_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/warehouse"
)

func TestCheckModelAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		d    warehouse.Dialect
		sql  string
	}{
		{"select", warehouse.DialectPostgres, "SELECT email FROM users"},
		{"lower case", warehouse.DialectPostgres, "select email from users"},
		{"trailing semicolon", warehouse.DialectPostgres, "SELECT 1;"},
		{"trailing semicolon and comments", warehouse.DialectPostgres, "SELECT 1; -- done\n/* really */\n"},
		{"leading comments", warehouse.DialectPostgres, "-- trial users\n/* owner: growth */\nSELECT 1"},
		{"nested comment", warehouse.DialectPostgres, "/* a /* b; */ c; */ SELECT 1"},
		{"with", warehouse.DialectPostgres, "WITH t AS (SELECT 1 AS x) SELECT x FROM t"},
		{"with recursive", warehouse.DialectSQLite, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5) SELECT x FROM c"},
		{"values", warehouse.DialectPostgres, "VALUES (1, 'a'), (2, 'b')"},
		{"table", warehouse.DialectPostgres, "TABLE users"},
		{"parenthesised", warehouse.DialectPostgres, "((SELECT 1) UNION (SELECT 2))"},
		{"semicolon in string", warehouse.DialectPostgres, "SELECT 'a; DELETE FROM t' AS s"},
		{"semicolon in identifier", warehouse.DialectPostgres, `SELECT 1 AS "a;b"`},
		{"doubled quotes", warehouse.DialectPostgres, `SELECT 'it''s; fine', "a""; b"`},
		{"escape string", warehouse.DialectPostgres, `SELECT E'it\'s; fine'`},
		{"backslash is literal in standard strings", warehouse.DialectPostgres, `SELECT 'C:\', 'x; y'`},
		{"dollar quotes", warehouse.DialectPostgres, "SELECT $$a; DELETE FROM t$$"},
		{"tagged dollar quotes", warehouse.DialectPostgres, "SELECT $fn$ a $$ ; $ b $fn$"},
		{"positional parameter", warehouse.DialectPostgres, "SELECT $1"},
		{"dollar in identifier", warehouse.DialectPostgres, "SELECT a$b FROM t"},
		{"semicolon in line comment", warehouse.DialectPostgres, "SELECT 1 -- ; DELETE FROM t"},
		{"update as column", warehouse.DialectPostgres, "SELECT t.update, delete_at FROM t"},
		{"updated_at", warehouse.DialectPostgres, "SELECT updated_at, inserted_by FROM t"},
		{"for update left to the database", warehouse.DialectPostgres, "SELECT * FROM t FOR UPDATE"},
		{"keyword in string", warehouse.DialectPostgres, "SELECT 'INSERT INTO t' FROM t"},
		{"replace function", warehouse.DialectPostgres, "SELECT (replace(email, 'a', 'b')) FROM t"},
		{"unicode", warehouse.DialectPostgres, "SELECT 'é' AS café FROM t"},
		{"sqlite backticks", warehouse.DialectSQLite, "SELECT `a;b` FROM t"},
		{"sqlite brackets", warehouse.DialectSQLite, "SELECT [a;b] FROM t"},
		{"sqlite comment does not nest", warehouse.DialectSQLite, "/* /* */ SELECT 1"},
		{"snowflake backslash", warehouse.DialectSnowflake, `SELECT 'it\'s; fine'`},
		{"snowflake double slash comment", warehouse.DialectSnowflake, "SELECT 1 // ; DELETE FROM t"},
		{"snowflake dollar string", warehouse.DialectSnowflake, "SELECT $$it's; fine$$"},
		{"bigquery double-quoted string", warehouse.DialectBigQuery, `SELECT "it's; fine"`},
		{"bigquery escaped quote", warehouse.DialectBigQuery, `SELECT "a\"; b", 'c\'; d'`},
		{"bigquery triple quotes", warehouse.DialectBigQuery, `SELECT '''it's; "fine"''', """a ' " ; b"""`},
		{"bigquery raw string", warehouse.DialectBigQuery, `SELECT r'\d+;', b"x"`},
		{"bigquery hash comment", warehouse.DialectBigQuery, "SELECT 1 # ; DELETE FROM t"},
		{"bigquery backticks", warehouse.DialectBigQuery, "SELECT email FROM `proj.ds.users;x`"},
		{"bigquery pipe syntax", warehouse.DialectBigQuery, "FROM users |> WHERE active |> SELECT email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, tc.d.CheckModel(tc.sql))
		})
	}
}

func TestCheckModelRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		d            warehouse.Dialect
		sql          string
		errContains  string
		line, column int
	}{
		{"empty", warehouse.DialectPostgres, "", "the model is empty", 0, 0},
		{"only comments", warehouse.DialectPostgres, "-- nothing\n/* here */", "the model is empty", 0, 0},
		{"only a semicolon", warehouse.DialectPostgres, " ;", "the model is empty", 0, 0},
		{"two statements", warehouse.DialectPostgres, "SELECT 1;\n  SELECT 2", "more than one statement", 2, 3},
		{"two semicolons", warehouse.DialectPostgres, "SELECT 1;;", "more than one statement", 1, 10},
		{"statement after string", warehouse.DialectPostgres, "SELECT 'a;b'; DROP TABLE t", "more than one statement", 1, 15},
		{"backslash does not escape in postgres", warehouse.DialectPostgres, `SELECT 'a\'; DROP TABLE t; --'`, "more than one statement", 1, 14},
		{"insert", warehouse.DialectPostgres, "INSERT INTO t VALUES (1)", "starting with SELECT, WITH, VALUES or TABLE, not INSERT", 1, 1},
		{"update", warehouse.DialectPostgres, "update t set x = 1", "not UPDATE", 1, 1},
		{"delete after comment", warehouse.DialectPostgres, "-- cleanup\nDELETE FROM t", "not DELETE", 2, 1},
		{"create", warehouse.DialectPostgres, "CREATE TABLE t AS SELECT 1", "not CREATE", 1, 1},
		{"copy", warehouse.DialectPostgres, "COPY (SELECT 1) TO STDOUT", "not COPY", 1, 1},
		{"explain", warehouse.DialectPostgres, "EXPLAIN ANALYZE DELETE FROM t", "not EXPLAIN", 1, 1},
		{"not a keyword", warehouse.DialectPostgres, "42", "not this", 1, 1},
		{"data-modifying CTE", warehouse.DialectPostgres, "WITH d AS (\n  DELETE FROM t RETURNING *) SELECT * FROM d", "modifies data with DELETE", 2, 3},
		{"materialized data-modifying CTE", warehouse.DialectPostgres, "WITH d AS MATERIALIZED (UPDATE t SET x = 1 RETURNING x) SELECT x FROM d", "modifies data with UPDATE", 1, 25},
		{"with then insert", warehouse.DialectPostgres, "WITH s AS (SELECT 1 AS x) INSERT INTO t SELECT x FROM s", "modifies data with INSERT", 1, 27},
		{"with then merge", warehouse.DialectPostgres, "WITH s AS (SELECT 1) MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", "modifies data with MERGE", 1, 22},
		{"select into", warehouse.DialectPostgres, "SELECT * INTO copy FROM t", "SELECT … INTO writes a table", 1, 10},
		{"unterminated string", warehouse.DialectPostgres, "SELECT 1,\n 'abc", "unterminated string starting at line 2, column 2", 2, 2},
		{"unterminated identifier", warehouse.DialectPostgres, `SELECT "abc`, "unterminated quoted identifier", 1, 8},
		{"unterminated comment", warehouse.DialectPostgres, "SELECT 1 /* ", "unterminated /* comment", 1, 10},
		{"unterminated nested comment", warehouse.DialectPostgres, "SELECT 1 /* /* */", "unterminated /* comment", 1, 10},
		{"unterminated dollar quote", warehouse.DialectPostgres, "SELECT $x$ abc $y$", "unterminated dollar-quoted string", 1, 8},
		{"position counts characters", warehouse.DialectPostgres, "SELECT 'é';é", "more than one statement", 1, 12},
		{"sqlite bracket", warehouse.DialectSQLite, "SELECT [abc", "unterminated [identifier]", 1, 8},
		{"snowflake backslash", warehouse.DialectSnowflake, `SELECT 'a\'; DROP TABLE t`, "unterminated string", 1, 8},
		{"snowflake two statements", warehouse.DialectSnowflake, `SELECT 'a\\'; DROP TABLE t`, "more than one statement", 1, 15},
		{"bigquery triple quote", warehouse.DialectBigQuery, `SELECT ''' abc '' `, "unterminated string", 1, 8},
		{"bigquery double-quoted two statements", warehouse.DialectBigQuery, `SELECT "a"; DELETE FROM t WHERE true`, "more than one statement", 1, 13},
		{"from only in bigquery", warehouse.DialectPostgres, "FROM users", "not FROM", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.d.CheckModel(tc.sql)
			require.ErrorIs(t, err, warehouse.ErrInvalidModel)
			require.ErrorContains(t, err, tc.errContains)
			var we *warehouse.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, [2]int{tc.line, tc.column}, [2]int{we.Line, we.Column}, "line and column of %q", err)
		})
	}
}

func TestCheckParamsNamesTheModel(t *testing.T) {
	t.Parallel()
	err := warehouse.CheckParams("postgres", warehouse.DialectPostgres,
		&warehouse.QueryParams{SQL: "SELECT 1;\nDELETE FROM users", Model: "models/trial_users.sql"})
	require.EqualError(t, err, "postgres: invalid model in models/trial_users.sql at line 2, column 1: "+
		"the model holds more than one statement (another starts after the semicolon); a model must be a single query")

	err = warehouse.CheckParams("sqlite", warehouse.DialectSQLite, nil)
	require.ErrorIs(t, err, warehouse.ErrInvalidModel)
	err = warehouse.CheckParams("sqlite", warehouse.DialectSQLite, &warehouse.QueryParams{SQL: "SELECT 1", Timeout: -1})
	require.ErrorIs(t, err, warehouse.ErrInvalidModel)
	require.ErrorContains(t, err, "negative")
	err = warehouse.CheckParams("sqlite", warehouse.DialectSQLite, &warehouse.QueryParams{SQL: "SELECT '\xff'"})
	require.ErrorContains(t, err, "not valid UTF-8")
}

// FuzzCheckModel checks that CheckModel never panics, that the position it
// reports lies within the SQL, and that appending a second statement to an
// accepted model always makes it refused.
func FuzzCheckModel(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "SELECT 'a;b'", `SELECT "x"`, "SELECT $$a$$", "SELECT $t$ $ $t$", "/* a /* b */ */ SELECT 1",
		"WITH d AS (DELETE FROM t) SELECT 1", "SELECT E'\\''", "SELECT '''a'''", "SELECT `a`", "SELECT [a]",
		"SELECT 1 -- x", "SELECT 1 # x", "SELECT 1 // x", "VALUES (1)", "SELECT 'é'", "(SELECT 1)",
	} {
		for d := range 4 {
			f.Add(s, d)
		}
	}
	f.Fuzz(func(t *testing.T, sql string, d int) {
		dialect := warehouse.Dialect(((d % 4) + 4) % 4)
		err := dialect.CheckModel(sql)
		if err != nil {
			var we *warehouse.Error
			if !errors.As(err, &we) || !errors.Is(err, warehouse.ErrInvalidModel) {
				t.Fatalf("%q: error %v is not an *Error of kind ErrInvalidModel", sql, err)
			}
			if we.Position < 0 || we.Position > utf8.RuneCountInString(sql)+1 {
				t.Fatalf("%q: position %d outside the SQL", sql, we.Position)
			}
			if we.Position > 0 && we.Line == 0 && utf8.ValidString(sql) {
				t.Fatalf("%q: position %d without line", sql, we.Position)
			}
			return
		}
		if strings.ContainsRune(sql, 0) {
			return
		}
		if err := dialect.CheckModel(sql + "\n;\nSELECT 2"); err == nil {
			t.Fatalf("%s: accepted %q followed by a second statement", dialect, sql)
		}
	})
}

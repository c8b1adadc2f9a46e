package warehouse

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Dialect selects the lexical rules (quoting and comments) CheckModel uses
// to find the statements and keywords of a model. The rules differ enough
// between warehouses that one lexer cannot serve all: a backslash ends
// nothing in a Postgres string but escapes the next character in a
// Snowflake or BigQuery one, and "…" is an identifier in Postgres but a
// string in BigQuery.
type Dialect int

// The dialects listsync's warehouses speak. The zero value is
// DialectPostgres.
const (
	// DialectPostgres: '…' strings with '' escapes (E'…' also with
	// backslash escapes), "…" identifiers, $$…$$ and $tag$…$tag$ dollar
	// quotes, -- and nestable /* */ comments.
	DialectPostgres Dialect = iota
	// DialectSQLite: '…' strings, "…", `…` and […] identifiers, -- and
	// /* */ comments.
	DialectSQLite
	// DialectSnowflake: '…' strings with backslash and '' escapes, "…"
	// identifiers, $$…$$ strings, --, // and /* */ comments.
	DialectSnowflake
	// DialectBigQuery (GoogleSQL): '…', "…", '''…''' and """…""" strings
	// with backslash escapes and optional r/b prefixes, `…` identifiers,
	// --, # and /* */ comments. A query may also start with FROM (pipe
	// syntax).
	DialectBigQuery
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case DialectPostgres:
		return "postgres"
	case DialectSQLite:
		return "sqlite"
	case DialectSnowflake:
		return "snowflake"
	case DialectBigQuery:
		return "bigquery"
	default:
		return fmt.Sprintf("Dialect(%d)", int(d))
	}
}

// CheckModel reports whether sql is a single read-only query in the Postgres
// dialect; see Dialect.CheckModel.
func CheckModel(sql string) error { return DialectPostgres.CheckModel(sql) }

// CheckModel refuses, before it runs, SQL that is not a single read-only
// query. The SQL must hold exactly one statement (a trailing semicolon is
// allowed; quotes and comments are honoured when looking for others), that
// statement must start with SELECT, WITH, VALUES or TABLE (or FROM in
// BigQuery), optionally after opening parentheses, and it must not contain a
// data-modifying statement where one can be seen: INSERT, UPDATE, DELETE,
// MERGE or TRUNCATE as the body of a WITH clause or the statement after it,
// or SELECT … INTO.
//
// This check catches mistakes early with a clear message; it is not a
// security boundary, since a read-only-looking query can still call a
// function with side effects. The guarantee comes from the warehouse: on
// Postgres every model runs in a READ ONLY transaction, and the SQLite
// database is opened read-only. On Snowflake and BigQuery, grant the
// configured user read access only.
//
// The error is an *Error of kind ErrInvalidModel whose Position, Line and
// Column point at the problem; CheckParams fills in the warehouse and model
// names.
func (d Dialect) CheckModel(sql string) error {
	toks, err := lexSQL(sql, d)
	if err != nil {
		return err
	}
	invalid := func(off int, format string, args ...any) error {
		e := &Error{Kind: ErrInvalidModel, Message: fmt.Sprintf(format, args...)}
		if off >= 0 {
			e.AtPosition(sql, utf8.RuneCountInString(sql[:off])+1)
		}
		return e
	}
	if len(toks) == 0 || toks[0].kind == tokSemicolon {
		return invalid(-1, "the model is empty: it must hold one query, such as SELECT email FROM users")
	}
	for i, t := range toks {
		if t.kind == tokSemicolon && i+1 < len(toks) {
			return invalid(toks[i+1].off, "the model holds more than one statement (another starts after the semicolon); a model must be a single query")
		}
	}
	first := 0
	for first < len(toks) && toks[first].kind == tokOpen {
		first++
	}
	if first == len(toks) || toks[first].kind != tokWord || !d.startsQuery(toks[first].word) {
		t := toks[min(first, len(toks)-1)]
		what := "this"
		if t.kind == tokWord {
			what = strings.ToUpper(t.word)
		}
		return invalid(t.off, "the model must be a query starting with %s, not %s; models are read-only", d.queryStarts(), what)
	}
	depth := 0
	for i, t := range toks {
		switch t.kind {
		case tokOpen:
			depth++
		case tokClose:
			if depth > 0 {
				depth--
			}
		case tokWord:
			if strings.EqualFold(t.word, "INTO") {
				return invalid(t.off, "SELECT … INTO writes a table; models are read-only")
			}
			if !isModifyingKeyword(t.word) || i == 0 {
				continue
			}
			prev := toks[i-1]
			if prev.kind == tokOpen || (prev.kind == tokClose && depth == 0) {
				return invalid(t.off, "the model modifies data with %s; models are read-only", strings.ToUpper(t.word))
			}
		}
	}
	return nil
}

func (d Dialect) startsQuery(word string) bool {
	switch strings.ToUpper(word) {
	case "SELECT", "WITH", "VALUES", "TABLE":
		return true
	case "FROM":
		return d == DialectBigQuery
	}
	return false
}

func (d Dialect) queryStarts() string {
	if d == DialectBigQuery {
		return "SELECT, WITH, VALUES, TABLE or FROM"
	}
	return "SELECT, WITH, VALUES or TABLE"
}

func isModifyingKeyword(word string) bool {
	switch strings.ToUpper(word) {
	case "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE":
		return true
	}
	return false
}

type tokKind uint8

const (
	tokWord tokKind = iota + 1
	tokOpen
	tokClose
	tokSemicolon
	tokOther
)

// token is one lexical element that matters to CheckModel. Strings, quoted
// identifiers, numbers and operators are all tokOther: only unquoted words,
// parentheses and semicolons are told apart. off is a byte offset.
type token struct {
	kind tokKind
	word string
	off  int
}

func isIdentStart(c byte) bool {
	return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= utf8.RuneSelf
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$'
}

// lexSQL splits sql into the tokens CheckModel needs, skipping comments and
// quoted text by the rules of dialect d. Unterminated quotes and comments
// are errors.
func lexSQL(sql string, d Dialect) ([]token, error) {
	var toks []token
	unterminated := func(off int, what string) error {
		e := &Error{Kind: ErrInvalidModel}
		e.AtPosition(sql, utf8.RuneCountInString(sql[:off])+1)
		e.Message = fmt.Sprintf("unterminated %s starting at line %d, column %d", what, e.Line, e.Column)
		return e
	}
	n := len(sql)
	i := 0
	for i < n {
		c := sql[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < n && sql[i+1] == '-',
			c == '#' && d == DialectBigQuery,
			c == '/' && i+1 < n && sql[i+1] == '/' && d == DialectSnowflake:
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			i += 2
			depth := 1
			for depth > 0 {
				if i+1 >= n {
					return nil, unterminated(start, "/* comment")
				}
				switch {
				case sql[i] == '*' && sql[i+1] == '/':
					depth--
					i += 2
				case sql[i] == '/' && sql[i+1] == '*' && d == DialectPostgres:
					depth++
					i += 2
				default:
					i++
				}
			}
		case c == '(':
			toks = append(toks, token{kind: tokOpen, off: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokClose, off: i})
			i++
		case c == ';':
			toks = append(toks, token{kind: tokSemicolon, off: i})
			i++
		case c == '\'' || (c == '"' && d == DialectBigQuery):
			backslash := d == DialectSnowflake || d == DialectBigQuery
			if d == DialectPostgres && len(toks) > 0 {
				// E'…' strings take backslash escapes.
				if last := toks[len(toks)-1]; last.kind == tokWord && last.off+len(last.word) == i && strings.EqualFold(last.word, "E") {
					backslash = true
				}
			}
			end, ok := skipQuoted(sql, i, d == DialectBigQuery, backslash)
			if !ok {
				return nil, unterminated(start, "string")
			}
			if len(toks) > 0 && toks[len(toks)-1].kind == tokWord && toks[len(toks)-1].off+len(toks[len(toks)-1].word) == i {
				// A prefix such as E, B, X, r or b belongs to the string.
				toks[len(toks)-1].kind = tokOther
			}
			toks = append(toks, token{kind: tokOther, off: i})
			i = end
		case c == '"' || (c == '`' && (d == DialectSQLite || d == DialectBigQuery)):
			end, ok := skipQuoted(sql, i, false, c == '`' && d == DialectBigQuery)
			if !ok {
				return nil, unterminated(start, "quoted identifier")
			}
			toks = append(toks, token{kind: tokOther, off: i})
			i = end
		case c == '[' && d == DialectSQLite:
			j := strings.IndexByte(sql[i+1:], ']')
			if j < 0 {
				return nil, unterminated(start, "[identifier]")
			}
			toks = append(toks, token{kind: tokOther, off: i})
			i += j + 2
		case c == '$' && (d == DialectPostgres || d == DialectSnowflake):
			tag, ok := dollarTag(sql[i:], d)
			if !ok {
				// A parameter ($1) or a lone dollar sign.
				i++
				for i < n && sql[i] >= '0' && sql[i] <= '9' {
					i++
				}
				toks = append(toks, token{kind: tokOther, off: start})
				continue
			}
			j := strings.Index(sql[i+len(tag):], tag)
			if j < 0 {
				return nil, unterminated(start, "dollar-quoted string")
			}
			toks = append(toks, token{kind: tokOther, off: i})
			i += 2*len(tag) + j
		case isIdentStart(c):
			for i < n && isIdentPart(sql[i]) {
				i++
			}
			toks = append(toks, token{kind: tokWord, word: sql[start:i], off: start})
		case c >= '0' && c <= '9':
			for i < n && (isIdentPart(sql[i]) || sql[i] == '.') {
				i++
			}
			toks = append(toks, token{kind: tokOther, off: start})
		default:
			toks = append(toks, token{kind: tokOther, off: i})
			i++
		}
	}
	return toks, nil
}

// skipQuoted returns the offset just past the quoted text starting at
// sql[i], whose first byte is the quote character. A doubled quote continues
// the text; backslash makes a backslash skip the next byte; triple lets a
// tripled quote open a text that only a tripled quote closes (BigQuery).
func skipQuoted(sql string, i int, triple, backslash bool) (int, bool) {
	q := sql[i]
	n := len(sql)
	if triple && i+2 < n && sql[i+1] == q && sql[i+2] == q {
		for j := i + 3; j < n; j++ {
			switch {
			case sql[j] == '\\' && backslash:
				j++
			case sql[j] == q && j+2 < n && sql[j+1] == q && sql[j+2] == q:
				return j + 3, true
			}
		}
		return 0, false
	}
	for j := i + 1; j < n; j++ {
		switch {
		case sql[j] == '\\' && backslash:
			j++
		case sql[j] == q:
			if j+1 < n && sql[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

// dollarTag returns the dollar-quote delimiter ($$ or $tag$) that s starts
// with, if it starts with one.
func dollarTag(s string, d Dialect) (string, bool) {
	if len(s) >= 2 && s[1] == '$' {
		return "$$", true
	}
	if d != DialectPostgres || len(s) < 3 || !isIdentStart(s[1]) {
		return "", false
	}
	for j := 2; j < len(s); j++ {
		switch {
		case s[j] == '$':
			return s[:j+1], true
		case !isIdentPart(s[j]) || s[j] == '$':
			return "", false
		}
	}
	return "", false
}

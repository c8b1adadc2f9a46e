package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Warehouse is the benchmark's private schema in the machine's Postgres,
// holding the generated people the models select from.
type Warehouse struct {
	BaseURL string
	Schema  string
	Table   string
	// Rows is the number of generated people (ids 1..Rows).
	Rows int64
}

// NewSchema creates a private schema named lsbench_<random>.
func NewSchema(ctx context.Context, baseURL, prefix string) (string, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return "", fmt.Errorf("connecting to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", fmt.Errorf("creating schema %s: %w", schema, err)
	}
	return schema, nil
}

// DropSchema drops a schema made by NewSchema.
func DropSchema(ctx context.Context, baseURL, schema string) error {
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return fmt.Errorf("connecting to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
		return fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	return nil
}

// SchemaURL returns baseURL with its search_path set to schema.
func SchemaURL(baseURL, schema string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("parsing Postgres URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Dennis",
		"Margaret", "John", "Hedy", "Linus", "Katherine", "Tim", "Sophie", "Niklaus", "Leslie", "Guido", "Anita",
		"Bjarne", "Shafi", "Yukihiro", "Jean", "Robin", "Mary", "Rob", "Carol", "Brian"}
	lastNames = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
		"Perlman", "Ritchie", "Hamilton", "McCarthy", "Lamarr", "Torvalds", "Johnson", "Berners-Lee", "Wilson",
		"Wirth", "Lamport", "van Rossum", "Borg", "Stroustrup", "Goldwasser", "Matsumoto", "Sammet", "Milner",
		"Keller", "Pike", "Shaw", "Kernighan"}
	companies = []string{"Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
		"Tyrell", "Cyberdyne", "Soylent", "Wonka Industries", "Vandelay Industries", "Massive Dynamic", "Aperture",
		"Black Mesa", "Oscorp", "Gringotts", "Monarch Solutions", "Pied Piper", "Dunder Mifflin"}
	domains = []string{"example.com", "example.org", "mail.example.net", "corp.example.io", "example.co.uk"}
)

// Person returns the generated person with the given id: a deterministic
// function of id, so that any run can say who is on the list.
func Person(id int64) (email, first, last, company string) {
	first = firstNames[id%int64(len(firstNames))]
	last = lastNames[(id/7)%int64(len(lastNames))]
	company = companies[(id/3)%int64(len(companies))]
	local := strings.ToLower(first) + "." + strings.ToLower(strings.ReplaceAll(last, " ", ""))
	if id%8 == 0 {
		// Some sources keep the capitals people typed; listsync
		// normalises keys to lower case.
		local = first + "." + strings.ReplaceAll(last, " ", "")
	}
	email = fmt.Sprintf("%s%d@%s", local, id, domains[(id/11)%int64(len(domains))])
	return email, first, last, company
}

// CreatePeople creates <schema>.<table> with the people of ids 1..rows
// through COPY, then vacuums and analyses it so that the first read is not
// also the one that sets hint bits.
func CreatePeople(ctx context.Context, baseURL, schema, table string, rows int64) (*Warehouse, error) {
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	tbl := schema + "." + table
	if _, err := conn.Exec(ctx, "CREATE TABLE "+tbl+` (
		id bigint NOT NULL,
		email text NOT NULL,
		first_name text,
		last_name text,
		company text)`); err != nil {
		return nil, fmt.Errorf("creating %s: %w", tbl, err)
	}
	var id int64
	row := make([]any, 5)
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if id >= rows {
			return nil, nil
		}
		id++
		email, first, last, company := Person(id)
		row[0], row[1], row[2], row[3], row[4] = id, email, first, last, company
		return row, nil
	})
	n, err := conn.CopyFrom(ctx, pgx.Identifier{schema, table}, []string{"id", "email", "first_name", "last_name", "company"}, src)
	if err != nil {
		return nil, fmt.Errorf("copying people into %s: %w", tbl, err)
	}
	if n != rows {
		return nil, fmt.Errorf("copying people into %s: copied %d rows, want %d", tbl, n, rows)
	}
	if _, err := conn.Exec(ctx, "VACUUM (FREEZE, ANALYZE) "+tbl); err != nil {
		return nil, fmt.Errorf("vacuuming %s: %w", tbl, err)
	}
	return &Warehouse{BaseURL: baseURL, Schema: schema, Table: table, Rows: rows}, nil
}

// ModelSQL returns the model that selects the people with ids in (lo, hi].
func (w *Warehouse) ModelSQL(lo, hi int64) string {
	return fmt.Sprintf("SELECT email, first_name, last_name, company FROM %s.%s WHERE id > %d AND id <= %d", w.Schema, w.Table, lo, hi)
}

package warehouse_test

import (
	"errors"
	"fmt"

	"github.com/listsync/listsync/internal/warehouse"
)

func ExampleCheckParams() {
	p := &warehouse.QueryParams{
		SQL:   "WITH gone AS (\n  DELETE FROM users RETURNING email\n) SELECT email FROM gone",
		Model: "models/churned.sql",
	}
	err := warehouse.CheckParams("postgres", warehouse.DialectPostgres, p)
	fmt.Println(errors.Is(err, warehouse.ErrInvalidModel))
	fmt.Println(err)
	// Output:
	// true
	// postgres: invalid model in models/churned.sql at line 2, column 3: the model modifies data with DELETE; models are read-only
}

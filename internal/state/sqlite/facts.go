package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/listsync/listsync/internal/state"
)

// ImportRate implements [state.Store].
func (s *Store) ImportRate(ctx context.Context, instance string) (state.ImportRate, bool, error) {
	var (
		r  state.ImportRate
		at int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT import_rows_per_sec, import_measured_at FROM marketo_facts WHERE instance = ?`, instance).
		Scan(&r.RowsPerSec, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return state.ImportRate{}, false, nil
	}
	if err != nil {
		return state.ImportRate{}, false, fmt.Errorf("reading import rate of %s: %w", instance, err)
	}
	r.MeasuredAt = fromMicros(at)
	return r, true, nil
}

// SetImportRate implements [state.Store].
func (s *Store) SetImportRate(ctx context.Context, instance string, r state.ImportRate) error {
	if err := state.CheckImportRate(instance, r); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO marketo_facts (instance, import_rows_per_sec, import_measured_at) VALUES (?, ?, ?)
		ON CONFLICT (instance) DO UPDATE SET import_rows_per_sec = excluded.import_rows_per_sec,
			import_measured_at = excluded.import_measured_at
		WHERE excluded.import_measured_at >= marketo_facts.import_measured_at`,
		instance, r.RowsPerSec, micros(r.MeasuredAt))
	if err != nil {
		return fmt.Errorf("recording import rate of %s: %w", instance, err)
	}
	return nil
}

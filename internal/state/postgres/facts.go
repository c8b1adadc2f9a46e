package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/listsync/listsync/internal/state"
)

// ImportRate implements [state.Store].
func (s *Store) ImportRate(ctx context.Context, instance string) (state.ImportRate, bool, error) {
	var r state.ImportRate
	err := s.pool.QueryRow(ctx, `SELECT import_rows_per_sec, import_measured_at FROM listsync_marketo_facts
		WHERE instance = $1`, instance).Scan(&r.RowsPerSec, &r.MeasuredAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return state.ImportRate{}, false, nil
	}
	if err != nil {
		return state.ImportRate{}, false, fmt.Errorf("reading import rate of %s: %w", instance, err)
	}
	r.MeasuredAt = r.MeasuredAt.UTC()
	return r, true, nil
}

// SetImportRate implements [state.Store].
func (s *Store) SetImportRate(ctx context.Context, instance string, r state.ImportRate) error {
	if err := state.CheckImportRate(instance, r); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO listsync_marketo_facts (instance, import_rows_per_sec, import_measured_at)
		VALUES ($1, $2, $3)
		ON CONFLICT (instance) DO UPDATE SET import_rows_per_sec = excluded.import_rows_per_sec,
			import_measured_at = excluded.import_measured_at
		WHERE excluded.import_measured_at >= listsync_marketo_facts.import_measured_at`,
		instance, r.RowsPerSec, r.MeasuredAt)
	if err != nil {
		return fmt.Errorf("recording import rate of %s: %w", instance, err)
	}
	return nil
}

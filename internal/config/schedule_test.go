package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/config"
)

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	from := time.Date(2025, 3, 10, 9, 7, 30, 0, time.UTC) // a Monday
	cases := []struct {
		spec string
		next time.Time
	}{
		{"*/15 * * * *", time.Date(2025, 3, 10, 9, 15, 0, 0, time.UTC)},
		{"@hourly", time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC)},
		{"@every 10m", time.Date(2025, 3, 10, 9, 10, 0, 0, time.UTC)},
		{"@every 1s", time.Date(2025, 3, 10, 9, 7, 31, 0, time.UTC)},
		{"@every 1h30m", time.Date(2025, 3, 10, 10, 30, 0, 0, time.UTC)},
		{"CRON_TZ=Europe/Berlin 0 7 * * 1-5", time.Date(2025, 3, 11, 6, 0, 0, 0, time.UTC)},
		{"TZ=America/New_York @daily", time.Date(2025, 3, 11, 4, 0, 0, 0, time.UTC)},
		{"  0 12 * * *  ", time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			t.Parallel()
			s, err := config.ParseSchedule(tc.spec)
			require.NoError(t, err)
			require.True(t, tc.next.Equal(s.Next(from)), "next %s, want %s", s.Next(from).UTC(), tc.next)
		})
	}
}

// TestEveryAligned checks that two workers started at different moments
// agree on the ticks of an @every schedule.
func TestEveryAligned(t *testing.T) {
	t.Parallel()
	s, err := config.ParseSchedule("@every 10m")
	require.NoError(t, err)
	a := s.Next(time.Date(2025, 1, 1, 0, 3, 17, 0, time.UTC))
	b := s.Next(time.Date(2025, 1, 1, 0, 8, 59, 999, time.UTC))
	require.Equal(t, a, b)
	require.Equal(t, a.Add(10*time.Minute), s.Next(a))
}

func TestParseScheduleErrors(t *testing.T) {
	t.Parallel()
	for spec, want := range map[string]string{
		"":                           "empty",
		"CRON_TZ=UTC":                "has a time zone but no expression",
		"CRON_TZ= * * * * *":         "bad time zone",
		"TZ=../../etc/passwd @daily": "time zone",
		"@every":                     "needs a duration",
		"@every -1m":                 "at least 1s",
		"@every 1.5s":                "whole number of seconds",
		"@every ten":                 "invalid duration",
		"* * * * * *":                "expected exactly 5 fields",
		"0 0 31 4 *":                 "never fires",
		"@reboot":                    "unrecognized descriptor",
	} {
		_, err := config.ParseSchedule(spec)
		require.ErrorIs(t, err, config.ErrSchedule, spec)
		require.ErrorContains(t, err, want, spec)
	}
}

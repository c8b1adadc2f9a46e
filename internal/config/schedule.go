package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// maxScheduleLen bounds a schedule expression; real ones are short.
const maxScheduleLen = 256

// cronParser accepts the standard five fields and descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ErrSchedule is wrapped by every schedule parsing error.
var ErrSchedule = errors.New("invalid schedule")

// ParseSchedule parses a sync's schedule: a five-field cron expression
// ("*/15 * * * *"), a descriptor (@yearly, @monthly, @weekly, @daily,
// @hourly, "@every 10m"), either optionally prefixed by "CRON_TZ=Zone "
// (or "TZ=Zone "). Times without a zone are UTC (the worker's location).
//
// "@every D" is aligned on multiples of D since the zero time (every 10m
// fires at :00, :10, ...), not on the moment the worker started, so that
// several workers sharing a state store agree on every tick and run it once.
func ParseSchedule(spec string) (cron.Schedule, error) {
	if len(spec) > maxScheduleLen {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrSchedule, maxScheduleLen)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("%w: empty", ErrSchedule)
	}
	loc := time.UTC
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		// cron's own parser slices out of range on "CRON_TZ=X" without a
		// following expression, so the prefix is taken apart here.
		prefix, rest, ok := strings.Cut(spec, " ")
		if !ok || strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("%w: %q has a time zone but no expression", ErrSchedule, spec)
		}
		_, zone, _ := strings.Cut(prefix, "=")
		if zone == "" || strings.ContainsAny(zone, "\\\x00") || strings.Contains(zone, "..") {
			return nil, fmt.Errorf("%w: bad time zone %q", ErrSchedule, zone)
		}
		l, err := time.LoadLocation(zone)
		if err != nil {
			return nil, fmt.Errorf("%w: unknown time zone %q", ErrSchedule, zone)
		}
		loc = l
		spec = strings.TrimSpace(rest)
	}
	if d, ok := strings.CutPrefix(spec, "@every"); ok {
		d = strings.TrimSpace(d)
		if d == "" {
			return nil, fmt.Errorf("%w: @every needs a duration, e.g. @every 10m", ErrSchedule)
		}
		every, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("%w: @every: %v", ErrSchedule, err)
		}
		if every < time.Second || every%time.Second != 0 {
			return nil, fmt.Errorf("%w: @every %s: must be a whole number of seconds, at least 1s", ErrSchedule, d)
		}
		return EverySchedule{Every: every}, nil
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrSchedule, spec, err)
	}
	if ss, ok := s.(*cron.SpecSchedule); ok {
		ss.Location = loc
		if ss.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
			return nil, fmt.Errorf("%w: %q never fires", ErrSchedule, spec)
		}
	}
	return s, nil
}

// EverySchedule fires every Every, on multiples of Every since the zero
// time.
type EverySchedule struct {
	Every time.Duration
}

// Next returns the first multiple of Every strictly after t.
func (e EverySchedule) Next(t time.Time) time.Time {
	return t.Truncate(e.Every).Add(e.Every)
}

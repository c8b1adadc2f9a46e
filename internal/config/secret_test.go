package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"github.com/listsync/listsync/internal/config"
)

const secretValue = "hunter2-very-secret"

func TestSecretRedactedEverywhere(t *testing.T) {
	t.Parallel()
	s := config.NewSecret(secretValue)
	holder := struct {
		Name   string
		Secret config.Secret
		Ptr    *config.Secret
	}{"x", s, &s}

	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, holder), fmt.Sprintf(verb, &s))
	}
	out = append(out, fmt.Sprint(s), fmt.Sprintln(s, holder), s.String(), s.GoString())

	j, err := json.Marshal(holder)
	require.NoError(t, err)
	out = append(out, string(j))

	y, err := yaml.Marshal(holder)
	require.NoError(t, err)
	out = append(out, string(y))

	var zbuf bytes.Buffer
	for _, enc := range []zapcore.Encoder{
		zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
	} {
		log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&zbuf), zap.DebugLevel))
		log.Info("msg", zap.Any("any", s), zap.Any("holder", holder), zap.Stringer("stringer", s),
			zap.Reflect("reflect", holder), zap.Any("ptr", &s))
		log.Sugar().Infow("sugared", "secret", s, "holder", holder)
		log.Sugar().Infof("formatted %v %s %+v", s, s, holder)
	}
	out = append(out, zbuf.String())

	var sbuf bytes.Buffer
	sl := slog.New(slog.NewJSONHandler(&sbuf, nil))
	sl.Info("msg", "secret", s, "holder", holder)
	slog.New(slog.NewTextHandler(&sbuf, nil)).Info("msg", "secret", s)
	out = append(out, sbuf.String())

	all := strings.Join(out, "\n")
	require.NotContains(t, all, secretValue)
	require.NotContains(t, all, fmt.Sprintf("%x", secretValue))
	require.Contains(t, all, config.Redacted)
	require.Equal(t, secretValue, s.Reveal())
}

func TestSecretEmpty(t *testing.T) {
	t.Parallel()
	var s config.Secret
	require.True(t, s.IsZero())
	require.Equal(t, "", s.String())
}

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"postgres://user:hunter2@db:5432/x?sslmode=disable": "postgres://user:xxxxx@db:5432/x?sslmode=disable",
		"postgres://db/x?password=hunter2":                  "postgres://db/x?password=xxxxx",
		"host=db user=u password=hunter2":                   config.Redacted,
		"":                                                  "",
	}
	for in, want := range cases {
		require.Equal(t, want, config.RedactDSN(in), in)
	}
}

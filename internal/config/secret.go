package config

import (
	"fmt"
	"log/slog"
	"net/url"

	"go.yaml.in/yaml/v3"
)

// Redacted is what every rendering of a non-empty [Secret] prints.
const Redacted = "[redacted]"

// Secret holds a credential: a client secret, a password, a DSN that may
// carry a password, a private key. Printing it with fmt (any verb), encoding
// it as JSON or YAML, or logging it with zap or slog shows [Redacted]; only
// [Secret.Reveal] returns the value, for the one place that hands it to a
// driver.
type Secret struct {
	value string
}

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{value: s} }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.value == "" }

// String returns [Redacted], or "" for an empty secret.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return Redacted
}

// GoString returns the redacted form for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// Format redacts the secret for every fmt verb, including those (%d, %x on
// a struct) that would otherwise print unexported fields.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%q", s.String()), nil
}

// MarshalText encodes the redacted form; zap's reflection and text
// encoders use it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML encodes the redacted form.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue renders the redacted form for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// UnmarshalYAML reads a scalar. The error for anything else names the line
// but never the value.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a string", n.Line)
	}
	if n.ShortTag() == "!!null" {
		s.value = ""
		return nil
	}
	s.value = n.Value
	return nil
}

// RedactDSN returns dsn with any password replaced, for messages: a URL's
// password becomes "xxxxx"; a string that does not parse as a URL with a
// scheme is replaced whole by [Redacted], since a key=value DSN may carry a
// password anywhere.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		if dsn == "" {
			return ""
		}
		return Redacted
	}
	q := u.Query()
	for _, k := range []string{"password", "passwd", "pwd", "sslpassword", "privateKey", "private_key", "token"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

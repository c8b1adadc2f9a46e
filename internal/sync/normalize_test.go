package sync

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	rule := newKeyRule("email")
	for _, tc := range []struct {
		in   any
		want string
		why  string
	}{
		{in: "a@x.com", want: "a@x.com"},
		{in: "  A.B+tag@Sub.Example.COM\t", want: "a.b+tag@sub.example.com"},
		{in: "zoë@exämple.de", want: "zoë@exämple.de"},
		{in: "ÉLODIE@X.FR", want: "élodie@x.fr"},
		{in: "o'hara@x.ie", want: "o'hara@x.ie"},
		{in: "a@xn--bcher-kva.example", want: "a@xn--bcher-kva.example"},
		{in: nil, why: "NULL key"},
		{in: "", why: "empty key"},
		{in: "   ", why: "empty key"},
		{in: "no-at-sign", why: "no @"},
		{in: "@x.com", why: "nothing before the @"},
		{in: "a@", why: "no domain"},
		{in: "a@localhost", why: "domain without a dot"},
		{in: "a@x..com", why: "empty label"},
		{in: "a@x.com.", why: "empty label"},
		{in: "a@-x.com", why: "starts or ends with -"},
		{in: "a@x_y.com", why: `'_' in the domain`},
		{in: "a b@x.com", why: `' ' before the @`},
		{in: "a..b@x.com", why: "misplaced dot"},
		{in: "a.@x.com", why: "misplaced dot"},
		{in: `"a"@x.com`, why: `'"' before the @`},
		{in: "a\x00@x.com", why: "before the @"},
		{in: "a@b@x.com", why: "'@' before the @"},
		{in: "Name <a@x.com>", why: "before the @"},
		{in: strings.Repeat("a", 65) + "@x.com", why: "more than 64 bytes"},
		{in: "a@" + strings.Repeat("b", 250) + ".com", why: "longer than 254 bytes"},
		{in: "a\xff@x.com", why: "not valid UTF-8"},
		{in: int64(42), why: "no @"},
	} {
		got, why := rule.normalize(tc.in)
		if tc.why != "" {
			require.Empty(t, got, "%q", tc.in)
			require.Contains(t, why, tc.why, "%q", tc.in)
			continue
		}
		require.Empty(t, why, "%q", tc.in)
		require.Equal(t, tc.want, got)
	}
}

func TestNormalizeOtherLookupField(t *testing.T) {
	t.Parallel()
	rule := newKeyRule("externalId")
	for _, tc := range []struct {
		in   any
		want string
		why  string
	}{
		{in: " Abc-1 ", want: "abc-1"},
		{in: int64(42), want: "42"},
		{in: 1234567890123.0, want: "1234567890123"},
		{in: "x\ty", why: "control character"},
		{in: nil, why: "NULL"},
		{in: strings.Repeat("x", 255), why: "longer than 254"},
	} {
		got, why := rule.normalize(tc.in)
		if tc.why != "" {
			require.Contains(t, why, tc.why, "%q", tc.in)
			continue
		}
		require.Empty(t, why)
		require.Equal(t, tc.want, got)
	}
}

func TestRenderValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"x", "x"},
		{int64(-7), "-7"},
		{0.1, "0.1"},
		{1e21, "1000000000000000000000"},
		{1.5e-7, "0.00000015"},
		{math.Copysign(0, -1), "0"},
		{math.NaN(), ""},
		{math.Inf(1), ""},
		{true, "true"},
		{false, "false"},
		{time.Date(2026, 3, 1, 12, 30, 0, 999, time.FixedZone("X", 3600)), "2026-03-01T11:30:00Z"},
		{[]byte("raw"), "raw"},
	} {
		require.Equal(t, tc.want, renderValue(tc.in), "%#v", tc.in)
	}
	require.Equal(t, "a\uFFFDb", renderField("a\xffb"))
	require.Equal(t, "nul\uFFFD esc\uFFFD del\uFFFD", renderField("nul\x00 esc\x1b del\x7f"))
	require.Equal(t, "tab\tlf\ncr\r", renderField("tab\tlf\ncr\r"), "tab, LF and CR are kept")
	require.Equal(t, "a\nb\n", renderField("a\r\nb\r\n"), "CRLF becomes LF on every path")
	require.Equal(t, "\n\n\r", renderField("\r\r\n\r\r\r\n\r"), "and no CRLF is left")
}

func TestPlanColumns(t *testing.T) {
	t.Parallel()
	p, err := planColumns("m.sql", []string{"ID", "EMAIL", "FIRST_NAME", "plan"}, "email",
		map[string]string{"firstName": "first_name", "plan": "plan"})
	require.NoError(t, err)
	require.Equal(t, 1, p.keyCol)
	require.Equal(t, []string{"firstName", "plan"}, p.fieldNames)
	require.Equal(t, []int{2, 3}, p.fieldCols)

	p, err = planColumns("m.sql", []string{"Email", "email"}, "email", nil)
	require.NoError(t, err)
	require.Equal(t, 1, p.keyCol, "an exact match wins over a case-insensitive one")

	_, err = planColumns("models/x.sql", []string{"id", "mail"}, "email", nil)
	require.EqualError(t, err, `finding the key column (the sync's lookup field): model models/x.sql returned no column "email"; it returned: "id", "mail"`)
	_, err = planColumns("models/x.sql", []string{"email", "name"}, "email", map[string]string{"firstName": "first_name"})
	require.ErrorContains(t, err, `finding the column of Marketo field "firstName": model models/x.sql returned no column "first_name"`)
	_, err = planColumns("m.sql", []string{"EMAIL", "Email"}, "email", nil)
	require.ErrorContains(t, err, "several columns")
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"a@x.com", " A@X.COM ", "A@X.COM", "Ada.Lovelace@Example.COM", "a@b", "zoë@exämple.de", "ZOË@x.com", "", "a\xff@x.com", "a@@x.com"} {
		f.Add(s)
	}
	rule := newKeyRule("email")
	f.Fuzz(func(t *testing.T, s string) {
		// The one-pass check accepts only keys the full path keeps as
		// they are.
		if plainEmailKey(s) {
			if why := checkEmailSlow(s); why != "" {
				t.Fatalf("plainEmailKey accepts %q, which checkEmailSlow rejects: %s", s, why)
			}
			if !plainKey(s) || len(s) > MaxKeyBytes {
				t.Fatalf("plainEmailKey accepts %q, which the full path would change or refuse", s)
			}
		}
		got, why := rule.normalize(s)
		// appendKey, the reader's path, agrees with normalize.
		appended, awhy := rule.appendKey([]byte("prefix"), s)
		if awhy != why || string(appended) != "prefix"+got {
			t.Fatalf("appendKey(%q) = %q, %q; normalize gives %q, %q", s, appended, awhy, got, why)
		}
		if why != "" {
			if got != "" {
				t.Fatalf("invalid %q returned key %q", s, got)
			}
			return
		}
		if !utf8.ValidString(got) || len(got) > MaxKeyBytes || got == "" {
			t.Fatalf("%q normalised to unusable key %q", s, got)
		}
		if got != strings.ToLower(strings.TrimSpace(got)) {
			t.Fatalf("%q normalised to %q, which is not trimmed and lower-case", s, got)
		}
		again, why := rule.normalize(got)
		if why != "" || again != got {
			t.Fatalf("normalising %q is not idempotent: %q then %q (%s)", s, got, again, why)
		}
		if strings.Count(got, "@") < 1 {
			t.Fatalf("%q accepted without @", got)
		}
	})
}

// FuzzNormalizeKey checks the rule of a lookup field other than email (a
// custom id): a key is valid UTF-8, trimmed, lower-case, at most
// MaxKeyBytes, free of control characters, and normalising it again gives
// it back.
func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"ABC-123", " x ", "", "a\x00b", "\xff", "Ünï", strings.Repeat("k", 300), "tab\there"} {
		f.Add(s)
	}
	rule := newKeyRule("externalId")
	f.Fuzz(func(t *testing.T, s string) {
		got, why := rule.normalize(s)
		if appended, awhy := rule.appendKey(nil, s); awhy != why || string(appended) != got {
			t.Fatalf("appendKey(%q) = %q, %q; normalize gives %q, %q", s, appended, awhy, got, why)
		}
		if why != "" {
			if got != "" {
				t.Fatalf("invalid %q returned key %q", s, got)
			}
			return
		}
		if !utf8.ValidString(got) || got == "" || len(got) > MaxKeyBytes || strings.IndexFunc(got, unicode.IsControl) >= 0 {
			t.Fatalf("%q normalised to unusable key %q", s, got)
		}
		if again, why := rule.normalize(got); why != "" || again != got {
			t.Fatalf("normalising %q is not idempotent: %q then %q (%s)", s, got, again, why)
		}
	})
}

// FuzzRenderField checks that whatever a warehouse returns, a lead field
// value is valid UTF-8 without CRLF or control characters other than tab,
// LF and CR (so that an import file and a JSON body carry it as it is), and
// that rendering is stable, which the fields hash relies on.
func FuzzRenderField(f *testing.F) {
	for _, s := range []string{"plain", "a\r\nb", "\x00\x1b\x7f", "\xff\xfe", "\r\r\n\n", "tab\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := renderField(s)
		if !utf8.ValidString(got) || strings.Contains(got, "\r\n") || strings.IndexFunc(got, badControl) >= 0 {
			t.Fatalf("%q rendered as %q", s, got)
		}
		if again := renderField(got); again != got {
			t.Fatalf("rendering %q is not stable: %q then %q", s, got, again)
		}
	})
}

// TestPlainEmailAgreesWithTheFullCheck runs the one-pass check and the full
// path over addresses valid and broken in every way the full check knows.
func TestPlainEmailAgreesWithTheFullCheck(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"a@x.com", "first.last+tag@sub.example.co.uk", "x@1.2", "a-b@a-b.c-d", "o'neil@x.io",
		"@x.com", "a@", "a@x", "a@.x.com", "a@x..com", "a@x.com.", "a@-x.com", "a@x-.com", ".a@x.com",
		"a.@x.com", "a..b@x.com", "a b@x.com", "a\"b@x.com", "a@b@x.com", "a@x_y.com", "a@x.c\u00f6m",
		"zo\u00eb@x.com", strings.Repeat("l", 64) + "@x.com", strings.Repeat("l", 65) + "@x.com",
		"a\x7f@x.com", "a\t@x.com", "a@X.com", "A@x.com", " a@x.com", "a@x.com ", "a@x.-b", "a@x.b-",
		"a@x.", "a@x.com-", "a@@x.com", "a@x.com@", strings.Repeat("l", 60) + "@" + strings.Repeat("d", 190) + ".com",
		strings.Repeat("l", 60) + "@" + strings.Repeat("d", 189) + ".com",
	} {
		slow := checkEmailSlow(s)
		plain := slow == "" && plainKey(s) && len(s) <= MaxKeyBytes
		require.Equal(t, plain, plainEmailKey(s), "plainEmailKey(%q); the full check says %q", s, slow)
		require.Equal(t, slow, checkEmail(s), "checkEmail(%q)", s)
	}
}

// TestEmailClass checks plainEmailKey's byte table against its definition.
func TestEmailClass(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		b := byte(c)
		local := b > ' ' && b < 0x7f && !badLocalASCII(b) && !('A' <= b && b <= 'Z')
		domain := 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-'
		require.Equal(t, local, emailClass[c]&emailLocal != 0, "byte %#x before the @", c)
		require.Equal(t, domain, emailClass[c]&emailDomain != 0, "byte %#x in the domain", c)
	}
}

// BenchmarkNormalizeEmail is the key check of a typical model row.
func BenchmarkNormalizeEmail(b *testing.B) {
	rule := newKeyRule("email")
	keys := []string{"ada.lamarr1000110@example.co.uk", "grace.hopper42@corp.example.io", "o'neil+news@mail.example.net"}
	for i := 0; b.Loop(); i++ {
		if _, why := rule.normalizeText(keys[i%len(keys)]); why != "" {
			b.Fatal(why)
		}
	}
}

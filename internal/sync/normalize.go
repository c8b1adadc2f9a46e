package sync

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/zeebo/xxh3"
)

// MaxKeyBytes is the longest key listsync sends: an email address is at most
// 254 bytes (RFC 5321's path limit less the brackets).
const MaxKeyBytes = 254

// hashSize is the size of a fields hash: 128 bits, ample against accidental
// collisions among billions of rows.
const hashSize = 16

// fieldsHash is the hash of a lead's mapped field values: the XXH3-128 of
// their encoding (hashFields).
type fieldsHash [hashSize]byte

// The ledger keeps a lead's fields hash (state.Member.FieldsHash) as
// fieldsHashV2 followed by the 16 bytes of the fieldsHash, 17 bytes in all.
// Ledgers written before it hold the legacy hash: the first 16 bytes of the
// SHA-256 of the same encoding, which a diff still reads (legacyFieldsHash)
// and a run rewrites in the new form (diffSink.rehash). The new hash costs a
// tenth of SHA-256's time, which was a sixth of a plan's CPU; nothing here
// needs a cryptographic hash, as the hash only tells whether a lead's values
// changed since listsync last sent them.
const fieldsHashV2 = 0x02

// stored returns the hash in the form a ledger keeps.
func (h fieldsHash) stored() []byte {
	b := make([]byte, 1+hashSize)
	b[0] = fieldsHashV2
	copy(b[1:], h[:])
	return b
}

// storedIs reports whether a ledger's stored hash is h.
func storedIs(stored []byte, h fieldsHash) bool {
	return len(stored) == 1+hashSize && stored[0] == fieldsHashV2 && string(stored[1:]) == string(h[:])
}

// isLegacyHash reports whether a ledger's stored hash is the legacy one
// (legacyFieldsHash).
func isLegacyHash(stored []byte) bool { return len(stored) == hashSize }

// keyRule normalises and validates the values of one lookup field.
type keyRule struct {
	email bool
}

func newKeyRule(lookupField string) keyRule {
	return keyRule{email: strings.EqualFold(lookupField, "email")}
}

// normalize returns the key for a model value, or a reason why it is not
// one. Keys are trimmed and lower-cased, as Marketo matches lookup values
// without regard to case (and the client deduplicates them so); emails must
// also look like an address.
func (k keyRule) normalize(v any) (key, reason string) {
	if v == nil {
		return "", "NULL key"
	}
	return k.normalizeText(renderValue(v))
}

// normalizeText is normalize of a value rendered as s. The key it returns
// may be s itself.
func (k keyRule) normalizeText(s string) (key, reason string) {
	if !plainKey(s) {
		if !utf8.ValidString(s) {
			return "", "not valid UTF-8"
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return "", "empty key"
		}
		s = strings.ToLower(s)
	}
	if len(s) > MaxKeyBytes {
		return "", fmt.Sprintf("longer than %d bytes", MaxKeyBytes)
	}
	if k.email {
		if why := checkEmail(s); why != "" {
			return "", why
		}
		return s, ""
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", "contains a control character"
		}
	}
	return s, ""
}

// appendKey appends the key of a model value rendered as s to dst, or
// returns why it is not one (and dst as it was). It is normalizeText that
// writes the key where the caller keeps it: an email key that only needs
// lower-casing (a common shape: capitals as people typed them) is lowered
// straight into dst, without the allocation of strings.ToLower.
func (k keyRule) appendKey(dst []byte, s string) ([]byte, string) {
	if k.email {
		if plainEmailKey(s) {
			return append(dst, s...), ""
		}
		n := len(dst)
		dst = appendLowerASCII(dst, s)
		if plainEmailKey(unsafe.String(unsafe.SliceData(dst[n:]), len(dst)-n)) {
			// s was ASCII and trimmed, so normalizeText would also
			// have lowered it, then found it plain.
			return dst, ""
		}
		dst = dst[:n]
	}
	key, why := k.normalizeText(s)
	if why != "" {
		return dst, why
	}
	return append(dst, key...), ""
}

// appendLowerASCII appends s to dst with A-Z lowered, other bytes as they
// are.
func appendLowerASCII(dst []byte, s string) []byte {
	dst = slices.Grow(dst, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// plainKey reports whether s is already trimmed and lower-cased ASCII, as
// most keys are, so that normalizing it has nothing to change.
func plainKey(s string) bool {
	if s == "" || s[0] <= ' ' || s[len(s)-1] <= ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// checkEmail returns why s (trimmed, lower-cased) is not a plausible email
// address, or "" when it is one. It is deliberately permissive within the
// shape local@domain.tld: Marketo, not listsync, is the judge of deliverable
// addresses, but values that cannot be an address at all are never sent.
// The common address takes plainEmailKey's one pass.
func checkEmail(s string) string {
	if plainEmailKey(s) {
		return ""
	}
	return checkEmailSlow(s)
}

// Byte classes of plainEmailKey.
const (
	emailLocal  = 1 << iota // may stand before the @ (lower-case ASCII)
	emailDomain             // may stand in a domain label: a-z, 0-9, -
)

// emailClass classifies bytes for plainEmailKey, a table lookup a byte
// instead of a chain of comparisons: emailLocal for the bytes an address
// may hold before the @ in plainEmailKey's pass (printable ASCII but for
// upper case and badLocalASCII's specials), and emailDomain for a-z, 0-9
// and -. TestEmailClass checks it against those definitions.
const emailClass = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x01\x00\x01\x01\x01\x01\x01\x00\x00\x01\x01\x00\x03\x01\x01\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x00\x00\x00\x01\x00\x01" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01" +
	"\x01\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x01\x01\x01\x01\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// plainEmailKey reports, in one pass, that s is an email key that
// normalizeText would return unchanged: lower-case ASCII, trimmed, at most
// MaxKeyBytes, and an address checkEmail accepts. It returns false for
// anything else (upper case, spaces and non-ASCII addresses included), which
// the full path then normalises, judges and explains. Most keys of a model
// take only this pass, which is most of the per-row cost of reading one.
func plainEmailKey(s string) bool {
	n := len(s)
	if n == 0 || n > MaxKeyBytes {
		return false
	}
	at := 0
	prev := byte('.') // a dot first, last or doubled is misplaced
	for ; at < n; at++ {
		c := s[at]
		if c == '@' {
			break
		}
		if c == '.' {
			if prev == '.' {
				return false
			}
		} else if emailClass[c]&emailLocal == 0 {
			return false
		}
		prev = c
	}
	if at == 0 || at > 64 || at >= n-1 || prev == '.' {
		return false
	}
	dots, label := 0, at+1
	for i := at + 1; i < n; i++ {
		c := s[i]
		if c == '.' {
			if i == label || s[i-1] == '-' {
				return false // an empty label, or one that ends with -
			}
			dots++
			label = i + 1
			continue
		}
		if emailClass[c]&emailDomain == 0 || c == '-' && i == label {
			return false
		}
	}
	return dots > 0 && label < n && s[n-1] != '-'
}

// checkEmailSlow is checkEmail for any input, with the reason.
func checkEmailSlow(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "not an email address (no @)"
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case local == "":
		return "not an email address (nothing before the @)"
	case len(local) > 64:
		return "not an email address (more than 64 bytes before the @)"
	case domain == "":
		return "not an email address (no domain)"
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return "not an email address (misplaced dot before the @)"
	}
	// Bytes below utf8.RuneSelf are checked without decoding a rune (the
	// common case); any other byte starts a rune decoded as range would.
	for i := 0; i < len(local); {
		if c := local[i]; c < utf8.RuneSelf {
			if badLocalASCII(c) {
				return fmt.Sprintf("not an email address (%q before the @)", rune(c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(local[i:])
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("not an email address (%q before the @)", r)
		}
		i += size
	}
	if strings.IndexByte(domain, '.') < 0 {
		return "not an email address (domain without a dot)"
	}
	for rest, more := domain, true; more; {
		var l string
		l, rest, more = strings.Cut(rest, ".")
		if why := checkDomainLabel(l); why != "" {
			return why
		}
	}
	return ""
}

// badLocalASCII reports the ASCII bytes an email's local part may not hold:
// space and the C0 controls, DEL, and the specials @()<>[]\,;:".
func badLocalASCII(c byte) bool {
	switch c {
	case 0x7f, '@', '(', ')', '<', '>', '[', ']', '\\', ',', ';', ':', '"':
		return true
	}
	return c <= ' '
}

// checkDomainLabel returns why l is not a label of an email's domain, or ""
// when it is one.
func checkDomainLabel(l string) string {
	if l == "" {
		return "not an email address (empty label in the domain)"
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return "not an email address (domain label starts or ends with -)"
	}
	for i := 0; i < len(l); {
		if c := l[i]; c < utf8.RuneSelf {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("not an email address (%q in the domain)", rune(c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(l[i:])
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Mn, r) {
			return fmt.Sprintf("not an email address (%q in the domain)", r)
		}
		i += size
	}
	return ""
}

// renderValue renders a model value as the string sent to Marketo: NULL as
// "", times in RFC 3339 (UTC), floats in plain decimal without exponent
// noise, booleans as true/false.
func renderValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return ""
		}
		if x == 0 {
			return "0" // not "-0"
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case []byte:
		return string(x)
	case int:
		return strconv.Itoa(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case float32:
		return renderValue(float64(x))
	default:
		return fmt.Sprint(x)
	}
}

// renderField renders a value for a lead field: like renderValue, with
// invalid UTF-8 repaired, as a CSV file or a JSON body could not carry it;
// control characters other than tab, line feed and carriage return replaced
// by U+FFFD, as a NUL or an escape from a binary column has no place in a
// lead field, and a NUL in an import file is one many CSV readers stop at;
// and CRLF line ends made LF (carriage returns before a line feed are
// dropped), as a bulk import's CSV reader makes them, so that a lead gets
// the same value whether it goes in a bulk import or a REST call.
func renderField(v any) string {
	return sanitizeField(renderValue(v))
}

// sanitizeField is renderField of a value rendered as s; it returns s
// itself when s needs no change.
func sanitizeField(s string) string {
	if cleanASCII(s) {
		return s
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.Contains(s, "\r\n") {
		s = dropCRBeforeLF(s)
	}
	if strings.IndexFunc(s, badControl) >= 0 {
		s = strings.Map(func(r rune) rune {
			if badControl(r) {
				return '\uFFFD'
			}
			return r
		}, s)
	}
	return s
}

// cleanASCII reports whether s holds only printable ASCII, tabs and line
// feeds: the common field value, which sanitizeField keeps as it is, found
// in one pass instead of three.
func cleanASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' || c >= 0x7f {
			return false
		}
	}
	return true
}

// dropCRBeforeLF removes every run of carriage returns that ends in a line
// feed, so that no CRLF is left (a single pass of ReplaceAll would make one
// of "\r\r\n").
func dropCRBeforeLF(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\r' {
			b.WriteByte(s[i])
			continue
		}
		j := i
		for j < len(s) && s[j] == '\r' {
			j++
		}
		if j == len(s) || s[j] != '\n' {
			b.WriteString(s[i:j])
		}
		i = j - 1
	}
	return b.String()
}

// badControl reports the C0 control characters (and DEL) that a field
// value does not keep.
func badControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f
}

// hashFields hashes field values given in the order of names (sorted): the
// XXH3-128 of the values, each as a uvarint length and its bytes (as the
// arena holds them), seeded with the names' hash (fieldsSeed), so that
// mapping another field re-sends every lead's fields.
func hashFields(names, values []string) fieldsHash {
	var enc []byte
	for _, v := range values {
		enc = appendString(enc, v)
	}
	return hashFieldValues(fieldsSeed(names), enc)
}

// fieldsSeed is the seed of the fields hash of a sync's mapped fields:
// the XXH3-64 of the names, each as a uvarint length and its bytes.
func fieldsSeed(names []string) uint64 {
	var enc []byte
	for _, n := range names {
		enc = appendString(enc, n)
	}
	return xxh3.Hash(enc)
}

// hashFieldValues is hashFields of values already encoded, with the seed
// of their names: staging hashes the encoding it writes to the arena.
func hashFieldValues(seed uint64, enc []byte) fieldsHash {
	return fieldsHash(xxh3.Hash128Seed(enc, seed).Bytes())
}

// legacyFieldsHash is the fields hash of ledgers written before
// fieldsHashV2: the first 16 bytes of the SHA-256 of the same encoding.
func legacyFieldsHash(names, values []string) []byte {
	var stack [512]byte
	sum := sha256.Sum256(encodeFields(stack[:0], names, values))
	return sum[:hashSize]
}

// encodeFields appends the length-prefixed names and values to b, each
// name before its value: what the legacy hash hashes.
func encodeFields(b []byte, names, values []string) []byte {
	for i, name := range names {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, uint64(len(values[i])))
		b = append(b, values[i]...)
	}
	return b
}

// columnPlan says which model columns hold the key and the mapped fields.
type columnPlan struct {
	keyCol int
	// fieldNames are the Marketo field names, sorted; fieldCols the model
	// column of each.
	fieldNames []string
	fieldCols  []int
}

// planColumns finds the key column and the mapped fields' columns among the
// model's columns. Names match exactly, or else case-insensitively when that
// is unambiguous (Snowflake upper-cases unquoted identifiers).
func planColumns(model string, cols []string, lookupField string, fields map[string]string) (columnPlan, error) {
	find := func(name string) (int, error) {
		for i, c := range cols {
			if c == name {
				return i, nil
			}
		}
		idx := -1
		for i, c := range cols {
			if strings.EqualFold(c, name) {
				if idx >= 0 {
					return -1, fmt.Errorf("model %s returned several columns matching %q (%q and %q); alias them apart",
						model, name, cols[idx], c)
				}
				idx = i
			}
		}
		if idx < 0 {
			return -1, fmt.Errorf("model %s returned no column %q; it returned: %s", model, name, quoteList(cols))
		}
		return idx, nil
	}
	var p columnPlan
	var err error
	if p.keyCol, err = find(lookupField); err != nil {
		return p, fmt.Errorf("finding the key column (the sync's lookup field): %w", err)
	}
	p.fieldNames = make([]string, 0, len(fields))
	for name := range fields {
		p.fieldNames = append(p.fieldNames, name)
	}
	slices.Sort(p.fieldNames)
	for _, name := range p.fieldNames {
		col := fields[name]
		i, err := find(col)
		if err != nil {
			return p, fmt.Errorf("finding the column of Marketo field %q: %w", name, err)
		}
		p.fieldCols = append(p.fieldCols, i)
	}
	return p, nil
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "(no columns)"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// sampleText shortens s for a message.
func sampleText(s string) string {
	const limit = 80
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

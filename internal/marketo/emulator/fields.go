package emulator

import (
	"strconv"
	"strings"
)

// fieldDef is one lead field of the schema.
type fieldDef struct {
	name string // REST API name, e.g. "firstName"
	typ  string // Marketo data type: string, email, integer, boolean, float, currency, date, datetime, phone, url, text
	// searchable fields may be a filterType or a lookupField.
	searchable bool
	// readOnly fields (id, createdAt, updatedAt) cannot be written.
	readOnly bool
	custom   bool
}

// standardFields returns Marketo's standard lead fields that the emulator
// knows, in describe order.
func standardFields() []fieldDef {
	str := func(n string) fieldDef { return fieldDef{name: n, typ: "string"} }
	search := func(n, typ string) fieldDef { return fieldDef{name: n, typ: typ, searchable: true} }
	return []fieldDef{
		{name: "id", typ: "integer", searchable: true, readOnly: true},
		search("email", "email"),
		str("firstName"), str("middleName"), str("lastName"), str("salutation"), str("title"),
		str("company"), str("address"), str("city"), str("state"), str("postalCode"), str("country"),
		{name: "phone", typ: "phone"}, {name: "mobilePhone", typ: "phone"}, {name: "fax", typ: "phone"},
		{name: "website", typ: "url"}, str("industry"), str("leadSource"), str("leadStatus"), str("leadRole"),
		str("rating"), str("department"),
		{name: "annualRevenue", typ: "currency"}, {name: "numberOfEmployees", typ: "integer"},
		{name: "leadScore", typ: "integer"}, {name: "dateOfBirth", typ: "date"},
		{name: "unsubscribed", typ: "boolean"}, {name: "emailInvalid", typ: "boolean"},
		{name: "doNotCall", typ: "boolean"}, {name: "marketingSuspended", typ: "boolean"},
		str("externalCompanyId"), str("externalSalesPersonId"),
		{name: "leadPartitionId", typ: "integer", searchable: true},
		search("cookies", "string"), search("facebookId", "string"), search("linkedInId", "string"),
		search("twitterId", "string"), search("sfdcAccountId", "string"), search("sfdcContactId", "string"),
		search("sfdcLeadId", "string"), search("sfdcLeadOwnerId", "string"), search("sfdcOpptyId", "string"),
		{name: "createdAt", typ: "datetime", readOnly: true},
		{name: "updatedAt", typ: "datetime", readOnly: true},
	}
}

// defaultLeadFields are the fields returned when a call names none.
func defaultLeadFields() []string {
	return []string{"id", "email", "updatedAt", "createdAt", "firstName", "lastName"}
}

// schema is the set of lead fields, matched case-insensitively.
type schema struct {
	defs    []fieldDef
	byLower map[string]int
}

func newSchema(custom []string) *schema {
	s := &schema{byLower: make(map[string]int)}
	for _, f := range standardFields() {
		s.add(f)
	}
	for _, n := range custom {
		s.addCustom(n)
	}
	return s
}

func (s *schema) add(f fieldDef) {
	if _, ok := s.byLower[strings.ToLower(f.name)]; ok {
		return
	}
	s.byLower[strings.ToLower(f.name)] = len(s.defs)
	s.defs = append(s.defs, f)
}

// addCustom declares a custom string field (searchable) unless a field of
// that name exists, and returns the field.
func (s *schema) addCustom(name string) fieldDef {
	name = strings.TrimSpace(name)
	if f, ok := s.lookup(name); ok {
		return f
	}
	s.add(fieldDef{name: name, typ: "string", searchable: true, custom: true})
	return s.defs[len(s.defs)-1]
}

// lookup finds a field by name, ignoring case.
func (s *schema) lookup(name string) (fieldDef, bool) {
	i, ok := s.byLower[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return fieldDef{}, false
	}
	return s.defs[i], true
}

// checkValue validates a value for a field; it returns the Marketo type
// name the value fails to be, or "".
func checkValue(f fieldDef, v string) string {
	switch f.typ {
	case "email":
		if !validEmail(v) {
			return "email"
		}
	case "integer":
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "integer"
		}
	case "float", "currency":
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return f.typ
		}
	case "boolean":
		if _, ok := parseBool(v); !ok {
			return "boolean"
		}
	}
	return ""
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "1", "yes":
		return true, true
	case "false", "0", "no":
		return false, true
	}
	return false, false
}

// validEmail reports whether s is an email address Marketo would store:
// one local part of at most 64 characters, "@", a dotted domain of letters,
// digits and hyphens; no spaces or list separators.
func validEmail(s string) bool {
	if len(s) == 0 || len(s) > 254 || strings.ContainsAny(s, " \t\r\n,;<>()[]\\\":") {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at > 64 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127) {
				return false
			}
		}
	}
	return true
}

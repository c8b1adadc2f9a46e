package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LookupEnvFunc returns the value of an environment variable and whether it
// is set, as os.LookupEnv does.
type LookupEnvFunc func(name string) (string, bool)

// expandNode replaces ${NAME} references in every scalar value below n (not
// in keys) through lookup. "$$" stands for a literal "$"; a "$" followed by
// anything else is kept as is, so passwords containing "$" need no escaping.
// An alias is not followed: the node it points at is expanded where it is
// defined, exactly once.
func expandNode(n *yaml.Node, lookup LookupEnvFunc) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if err := expandNode(c, lookup); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := expandNode(n.Content[i], lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return nil
		}
		v, changed, err := expand(n.Value, lookup)
		if err != nil {
			return &FieldError{Line: n.Line, Err: err}
		}
		if changed {
			n.Value = v
			// Let the expanded text resolve as if it had been written
			// plainly, so that list_id: "${LIST_ID}" decodes as a number,
			// unless the author forced a tag.
			if n.Style&yaml.TaggedStyle == 0 {
				n.Tag = ""
				n.Style = 0
			}
		}
	}
	return nil
}

// expand expands one scalar. It reports whether anything was replaced.
func expand(s string, lookup LookupEnvFunc) (string, bool, error) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			changed = true
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", false, fmt.Errorf("%w: unterminated ${ in value", ErrEnv)
			}
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				return "", false, fmt.Errorf("%w: invalid variable name %q in ${...}", ErrEnv, name)
			}
			v, ok := "", false
			if lookup != nil {
				v, ok = lookup(name)
			}
			if !ok {
				return "", false, fmt.Errorf("%w: environment variable %s is not set", ErrEnv, name)
			}
			b.WriteString(v)
			i += 2 + end
			changed = true
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), changed, nil
}

func validEnvName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

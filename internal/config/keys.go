package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// checkKeys walks the document against the Go type it decodes into and
// reports every key that type does not know, with its line, and integers
// written as anything but an integer. It does what the decoder's
// KnownFields(true) does for text, for the expanded node tree (yaml.Node.Decode
// has no strict mode), and names the valid keys in its message.
func checkKeys(n *yaml.Node, t reflect.Type, path string) []error {
	w := keyWalker{seen: map[walkKey]bool{}}
	w.walk(n, t, path)
	return w.errs
}

type walkKey struct {
	n *yaml.Node
	t reflect.Type
}

type keyWalker struct {
	seen map[walkKey]bool
	errs []error
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[Secret]()
)

func (w *keyWalker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n == nil || len(w.errs) >= 20 {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// Aliases may make a DAG of the tree; visiting each (node, type) once
	// keeps the walk linear whatever the document.
	k := walkKey{n, t}
	if w.seen[k] {
		return
	}
	w.seen[k] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.walk(c, t, path)
		}
		return
	case yaml.AliasNode:
		w.walk(n.Alias, t, path)
		return
	}
	if t == secretType {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.ShortTag() != "!!null" {
				w.errs = append(w.errs, &FieldError{Line: n.Line, Key: path, Err: invalidError{errors.New("expected a mapping")}})
			}
			return
		}
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Value == "<<" && kn.ShortTag() == "!!merge" {
				w.walkMerge(vn, t, path)
				continue
			}
			f, ok := fields[kn.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				slices.Sort(names)
				w.errs = append(w.errs, &FieldError{Line: kn.Line, Key: join(path, kn.Value),
					Err: fmt.Errorf("%w (valid keys here: %s)", ErrUnknownKey, strings.Join(names, ", "))})
				continue
			}
			w.walk(vn, f, join(path, kn.Value))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type error with its line
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t == durationType || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
			return
		}
		if _, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err != nil {
			w.errs = append(w.errs, &FieldError{Line: n.Line, Key: path, Err: invalidError{fmt.Errorf("%q is not an integer", n.Value)}})
		}
	}
}

func (w *keyWalker) walkMerge(n *yaml.Node, t reflect.Type, path string) {
	switch n.Kind {
	case yaml.AliasNode:
		w.walkMerge(n.Alias, t, path)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			w.walkMerge(c, t, path)
		}
	default:
		w.walk(n, t, path)
	}
}

// structFields maps the yaml keys of t to their field types.
func structFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

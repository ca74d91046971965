package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a configuration file.
type Pos struct {
	Line, Col int
}

// Error is one problem in a configuration file. Its message has the shape
// FILE:LINE:COL: what is wrong, which editors and CI logs turn into links.
type Error struct {
	File string
	Pos  Pos
	// Path is the key path of the offending value, such as
	// "rules[2].limit.rate"; empty for syntax errors.
	Path string
	Msg  string
}

func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "<config>"
	}
	where := e.Path
	if where != "" {
		where += ": "
	}
	if e.Pos.Line == 0 {
		return fmt.Sprintf("%s: %s%s", file, where, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s%s", file, e.Pos.Line, e.Pos.Col, where, e.Msg)
}

// ErrorList is every problem found in one configuration file, in file order.
// A configuration with any error is never used.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Pos.Line != l[j].Pos.Line {
			return l[i].Pos.Line < l[j].Pos.Line
		}
		return l[i].Pos.Col < l[j].Pos.Col
	})
	return l
}

// scalarDecoder is implemented by configuration value types that are written
// as one YAML scalar (durations, sizes, rates, CIDRs, patterns).
type scalarDecoder interface {
	decodeScalar(s string) error
}

// decoder turns a yaml.Node tree into configuration structs, strictly: unknown
// and duplicate keys are errors, every error carries its position, and
// decoding goes on after an error so that one run reports all of them.
type decoder struct {
	file string
	errs ErrorList
	// src records where each key path was set, for validation errors.
	src *source
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Pos = Pos{n.Line, n.Column}
	}
	d.errs = append(d.errs, e)
	d.src.bad[path] = true
}

var scalarDecoderType = reflect.TypeFor[scalarDecoder]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.src.pos[path] = Pos{n.Line, n.Column}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// An explicit null leaves the default in place.
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(scalarDecoderType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, found %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(scalarDecoder).decodeScalar(n.Value); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, found %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected true or false, found %s", kindName(n))
			return
		}
		switch n.Value {
		case "true", "True", "TRUE", "yes", "on":
			v.SetBool(true)
		case "false", "False", "FALSE", "no", "off":
			v.SetBool(false)
		default:
			d.fail(n, path, "expected true or false, found %q", n.Value)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a whole number, found %s", kindName(n))
			return
		}
		x, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowInt(x) {
			d.fail(n, path, "expected a whole number, found %q", n.Value)
			return
		}
		v.SetInt(x)
	case reflect.Uint32, reflect.Uint64, reflect.Uint:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a whole number, found %s", kindName(n))
			return
		}
		x, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowUint(x) {
			d.fail(n, path, "expected a non-negative whole number, found %q", n.Value)
			return
		}
		v.SetUint(x)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a number, found %s", kindName(n))
			return
		}
		x, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			d.fail(n, path, "expected a number, found %q", n.Value)
			return
		}
		v.SetFloat(x)
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of keys, found %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		kp := joinPath(path, key)
		if seen[key] {
			d.fail(k, kp, "duplicate key %q", key)
			continue
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			d.fail(k, kp, "unknown key %q%s", key, suggest(key, fields))
			continue
		}
		d.decode(val, v.Field(idx), kp)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, found %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(out)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, found %s", kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("config: only string-keyed maps are supported")
	}
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := joinPath(path, k.Value)
		if out.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.fail(k, kp, "duplicate key %q", k.Value)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, kp)
		out.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(out)
}

// structFields maps the YAML key of each field of t to its index.
func structFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// suggest names the known key closest to an unknown one, or lists them all
// when nothing is close.
func suggest(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	best, bestD := "", 1<<30
	for k := range fields {
		names = append(names, k)
		if dd := editDistance(key, k); dd < bestD {
			best, bestD = k, dd
		}
	}
	if bestD <= 2 || (bestD <= 4 && len(key) > 8) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sort.Strings(names)
	return fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

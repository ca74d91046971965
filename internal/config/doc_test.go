package config

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated part of docs/configuration.md")

const (
	beginMarker = "<!-- BEGIN GENERATED REFERENCE: go test ./internal/config -run TestConfigReference -update -->"
	endMarker   = "<!-- END GENERATED REFERENCE -->"
)

// TestConfigReference keeps the key reference in docs/configuration.md equal
// to the doc comments and defaults in this package: the comments are the
// reference.
func TestConfigReference(t *testing.T) {
	got := generateReference(t)
	path := filepath.Join("..", "..", "docs", "configuration.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(beginMarker)), bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated-reference markers", path)
	}
	cur := doc[i+len(beginMarker) : j]
	if string(cur) == got {
		return
	}
	if !*update {
		t.Fatalf("%s is out of date with internal/config; run: go test ./internal/config -run TestConfigReference -update", path)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(beginMarker)])
	out.WriteString(got)
	out.Write(doc[j:])
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func generateReference(t *testing.T) string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]string{} // type -> field -> doc
	typeDocs := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			typeDocs[ts.Name.Name] = oneLine(gd.Doc.Text())
			m := map[string]string{}
			for _, fl := range st.Fields.List {
				for _, n := range fl.Names {
					m[n.Name] = oneLine(fl.Doc.Text())
				}
			}
			docs[ts.Name.Name] = m
		}
	}
	var b strings.Builder
	b.WriteString("\n")
	var walk func(t reflect.Type, v reflect.Value, path string)
	walk = func(typ reflect.Type, v reflect.Value, path string) {
		var nested []func()
		title := path
		if title == "" {
			title = "top level"
		}
		fmt.Fprintf(&b, "\n### `%s`\n\n%s\n\n| key | type | default | what it is for |\n|---|---|---|---|\n", title, typeDocs[typ.Name()])
		for i := range typ.NumField() {
			fld := typ.Field(i)
			if !fld.IsExported() {
				continue
			}
			key, _, _ := strings.Cut(fld.Tag.Get("yaml"), ",")
			full := key
			if path != "" {
				full = path + "." + key
			}
			ft := fld.Type
			fv := v.Field(i)
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", key, typeName(ft), defaultString(fv), strings.ReplaceAll(docs[typ.Name()][fld.Name], "|", `\|`))
			et := ft
			ev := fv
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
				ev = reflect.New(et).Elem()
			}
			if et.Kind() == reflect.Slice && et.Elem().Kind() == reflect.Struct && et.Elem().Name() != "Pattern" {
				et = et.Elem()
				ev = reflect.New(et).Elem()
				full += "[]"
			}
			if et.Kind() == reflect.Struct && docs[et.Name()] != nil && !isScalarStruct(et) {
				nested = append(nested, func() { walk(et, ev, full) })
			}
		}
		for _, n := range nested {
			n()
		}
	}
	walk(reflect.TypeFor[Config](), reflect.ValueOf(Default()).Elem(), "")
	b.WriteString("\n")
	return b.String()
}

func isScalarStruct(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(scalarDecoderType)
}

func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return "duration"
	case reflect.TypeFor[ByteSize]():
		return "size"
	case reflect.TypeFor[Rate]():
		return "rate"
	case reflect.TypeFor[CIDR]():
		return "CIDR"
	case reflect.TypeFor[Pattern]():
		return "pattern"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Struct:
		return "mapping"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	}
	return t.Kind().String()
}

func defaultString(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case Duration:
		if x == 0 {
			return "0"
		}
		return "`" + x.String() + "`"
	case ByteSize:
		return "`" + x.String() + "`"
	case Rate:
		if x == 0 {
			return "unset"
		}
		return "`" + x.String() + "`"
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "unset"
		}
		return defaultString(v.Elem())
	case reflect.Struct:
		return "see below"
	case reflect.Slice:
		if v.Len() == 0 {
			return "empty"
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
			if s, ok := v.Index(i).Interface().(fmt.Stringer); ok {
				parts[i] = s.String()
			}
			if v.Index(i).Kind() == reflect.Struct && v.Type().Elem().Name() != "Pattern" {
				return entries(v.Len())
			}
		}
		return "`" + strings.Join(parts, "`, `") + "`"
	case reflect.Map:
		if v.Len() == 0 {
			return "empty"
		}
		return entries(v.Len())
	case reflect.String:
		if v.String() == "" {
			return "empty"
		}
		return "`" + v.String() + "`"
	}
	return fmt.Sprintf("`%v`", v.Interface())
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// source remembers where a configuration came from, so that validation
// errors found after flags were applied still name the file, line and column.
type source struct {
	file string
	pos  map[string]Pos
	// bad holds the key paths that failed to decode, so validation does
	// not report them a second time.
	bad map[string]bool
}

// Load reads and validates the file at path over the defaults. On any error
// it returns nil and an ErrorList naming file, line and column of each
// problem; the caller keeps whatever configuration it was running.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes YAML data over the defaults and validates the result. name is
// used in error messages.
func Parse(data []byte, name string) (*Config, error) {
	cfg := Default()
	cfg.src = &source{file: name, pos: map[string]Pos{}, bad: map[string]bool{}}
	d := &decoder{file: name, src: cfg.src}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// An empty file means all defaults.
	case err != nil:
		return nil, ErrorList{syntaxError(name, err)}
	default:
		var extra yaml.Node
		if err := dec.Decode(&extra); err == nil {
			return nil, ErrorList{{File: name, Pos: Pos{extra.Line, extra.Column}, Msg: "a config file holds one YAML document; found a second one"}}
		}
		root := &doc
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		if !(root.Kind == yaml.ScalarNode && root.Tag == "!!null") {
			d.decode(root, reflect.ValueOf(cfg).Elem(), "")
		}
	}
	d.errs = append(d.errs, cfg.validate(false)...)
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: (.*)`)

func syntaxError(name string, err error) *Error {
	msg := err.Error()
	e := &Error{File: name, Msg: "YAML syntax: " + msg, Pos: Pos{1, 1}}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col := 1
		if m[2] != "" {
			col, _ = strconv.Atoi(m[2])
		}
		e.Pos = Pos{line, col}
		e.Msg = "YAML syntax: " + m[3]
	}
	return e
}

// Validate checks a complete configuration, after command-line flags were
// applied: on top of what Load checks, it requires what a running shield
// needs (at least one upstream target). Errors name the file position of the
// offending key when it came from a file.
func (c *Config) Validate() error {
	if errs := c.validate(true); len(errs) > 0 {
		return errs.sorted()
	}
	return nil
}

// File returns the path the configuration was loaded from, or "".
func (c *Config) File() string {
	if c.src == nil {
		return ""
	}
	return c.src.file
}

/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Package manifest reads llm-gateway custom resources and Secrets from YAML or JSON files, as
// kubectl would apply them, for compiling with no cluster (`operator compile -f`).
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
)

// Load reads every file named (directories recursively: *.yaml, *.yml, *.json) and returns the
// llm-gateway objects and Secrets found, as a compile input without options. Objects with no
// namespace get defaultNamespace. Documents of other kinds are skipped; a malformed document,
// an unknown field or the same object twice is an error.
func Load(defaultNamespace string, paths ...string) (compile.Input, error) {
	l := &loader{ns: defaultNamespace, seen: map[string]string{}}
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			return compile.Input{}, err
		}
		for _, f := range files {
			if err := l.file(f); err != nil {
				return compile.Input{}, err
			}
		}
	}
	return l.in, nil
}

// expand returns the file itself, or the manifest files under a directory in lexical order.
func expand(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", path, err)
	}
	slices.Sort(files)
	return files, nil
}

type loader struct {
	ns   string
	in   compile.Input
	seen map[string]string // kind/namespace/name -> where it was first read
}

func (l *loader) file(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read manifests: %w", err)
	}
	defer f.Close()
	r := yaml.NewYAMLReader(bufio.NewReader(f))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		if err := l.document(raw, fmt.Sprintf("%s: document %d", path, doc)); err != nil {
			return err
		}
	}
}

type typeMeta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

func (l *loader) document(raw []byte, where string) error {
	data, err := sigsyaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil // empty document
	}
	var tm typeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if tm.Kind == "List" || strings.HasSuffix(tm.Kind, "List") && tm.Items != nil {
		for i, item := range tm.Items {
			if err := l.document(item, fmt.Sprintf("%s: item %d", where, i)); err != nil {
				return err
			}
		}
		return nil
	}
	switch {
	case tm.APIVersion == v1alpha1.GroupVersion.String():
		switch tm.Kind {
		case "LLMRoute":
			return decodeInto(l, data, where, tm.Kind, &l.in.Routes)
		case "ProviderBackend":
			return decodeInto(l, data, where, tm.Kind, &l.in.Backends)
		case "TeamBudget":
			return decodeInto(l, data, where, tm.Kind, &l.in.Budgets)
		case "TeamRollout":
			return decodeInto(l, data, where, tm.Kind, &l.in.Rollouts)
		}
		return fmt.Errorf("%s: unknown kind %s in %s", where, tm.Kind, tm.APIVersion)
	case tm.APIVersion == "v1" && tm.Kind == "Secret":
		if err := decodeInto(l, data, where, tm.Kind, &l.in.Secrets); err != nil {
			return err
		}
		s := &l.in.Secrets[len(l.in.Secrets)-1]
		// As the API server does: stringData is merged into data and wins.
		for k, v := range s.StringData {
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
		return nil
	}
	return nil // another kind: not ours
}

// decodeInto decodes one object strictly (unknown fields are errors, as with kubectl's strict
// field validation), defaults its namespace and appends it to list.
func decodeInto[T any, PT interface {
	*T
	GetNamespace() string
	SetNamespace(string)
	GetName() string
}](l *loader, data []byte, where, kind string, list *[]T) error {
	var obj T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	p := PT(&obj)
	if p.GetName() == "" {
		return fmt.Errorf("%s: metadata.name is required", where)
	}
	if p.GetNamespace() == "" {
		p.SetNamespace(l.ns)
	}
	id := kind + " " + p.GetNamespace() + "/" + p.GetName()
	if first, ok := l.seen[id]; ok {
		return fmt.Errorf("%s: %s is also defined at %s", where, id, first)
	}
	l.seen[id] = where
	*list = append(*list, obj)
	return nil
}

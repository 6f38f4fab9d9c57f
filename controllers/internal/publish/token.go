/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package publish

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"
)

// TokenSource returns the bearer token pods must present.
type TokenSource interface {
	Token() ([]byte, error)
}

// StaticToken is a fixed token.
type StaticToken []byte

// Token implements TokenSource.
func (t StaticToken) Token() ([]byte, error) { return bytes.TrimSpace(t), nil }

// FileToken reads the token from a file (a mounted Secret) and re-reads it when the file
// changes, so a rotated Secret takes effect without a restart. Surrounding whitespace is
// ignored.
type FileToken struct {
	Path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	token []byte
}

// Token implements TokenSource.
func (f *FileToken) Token() ([]byte, error) {
	st, err := os.Stat(f.Path)
	if err != nil {
		return nil, fmt.Errorf("snapshot token file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token != nil && st.ModTime().Equal(f.mod) && st.Size() == f.size {
		return f.token, nil
	}
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("snapshot token file: %w", err)
	}
	f.token, f.mod, f.size = bytes.TrimSpace(b), st.ModTime(), st.Size()
	return f.token, nil
}

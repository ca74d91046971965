package challenge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// keyFileName is the file in Options.StateDir that holds the signing keys.
const keyFileName = "keys.json"

// maxKeyFile bounds what loadKeys reads.
const maxKeyFile = 64 << 10

// key is one HMAC-SHA256 signing key. The pool holds HMAC states keyed with
// it, so that signing and verifying allocate nothing once warm.
type key struct {
	id      uint32
	secret  [32]byte
	created time.Time
	pool    sync.Pool // *macState
}

// macState is a reusable HMAC with scratch buffers; it lives on the heap
// (pooled), so passing its buffers through the hash.Hash interface does not
// make callers allocate.
type macState struct {
	mac hash.Hash
	sha hash.Hash
	in  [160]byte
	sum [sha256.Size]byte
}

func newKey(id uint32, secret [32]byte, created time.Time) *key {
	k := &key{id: id, secret: secret, created: created}
	k.pool.New = func() any {
		return &macState{mac: hmac.New(sha256.New, k.secret[:]), sha: sha256.New()}
	}
	return k
}

func (k *key) get() *macState   { return k.pool.Get().(*macState) }
func (k *key) put(st *macState) { k.pool.Put(st) }

// sum computes HMAC-SHA256 over st.in[:n] into st.sum.
func (st *macState) sumIn(n int) {
	st.mac.Reset()
	st.mac.Write(st.in[:n])
	st.mac.Sum(st.sum[:0])
}

// hashString returns the first 8 bytes of SHA-256(s), using st.in as a
// staging buffer so that no conversion allocates.
func (st *macState) hashString(s string) (out [8]byte) {
	st.sha.Reset()
	for len(s) > 0 {
		n := copy(st.in[:], s)
		st.sha.Write(st.in[:n])
		s = s[n:]
	}
	st.sha.Sum(st.sum[:0])
	copy(out[:], st.sum[:8])
	return out
}

// keyRing is the current signing key and the previous one, whose tokens
// stay valid until they expire. It is immutable; rotation swaps a new ring.
type keyRing struct {
	cur, prev *key
}

// find returns the key with the given id, or nil.
func (r *keyRing) find(id uint32) *key {
	if r.cur.id == id {
		return r.cur
	}
	if r.prev != nil && r.prev.id == id {
		return r.prev
	}
	return nil
}

// keyFile is the on-disk form of a keyRing.
type keyFile struct {
	Version int           `json:"version"`
	Keys    []keyFileItem `json:"keys"`
}

type keyFileItem struct {
	ID      uint32    `json:"id"`
	Created time.Time `json:"created"`
	Secret  []byte    `json:"secret"` // base64 in JSON
}

// errKeyFile marks a key file that exists but cannot be used.
var errKeyFile = errors.New("challenge: unusable key file")

// parseKeyFile decodes a key file: version 1, one or two keys (current
// first), 32-byte secrets.
func parseKeyFile(b []byte) (*keyRing, error) {
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", errKeyFile, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%w: version %d, want 1", errKeyFile, f.Version)
	}
	if len(f.Keys) < 1 || len(f.Keys) > 2 {
		return nil, fmt.Errorf("%w: %d keys, want 1 or 2", errKeyFile, len(f.Keys))
	}
	var ks [2]*key
	for i, it := range f.Keys {
		if len(it.Secret) != 32 {
			return nil, fmt.Errorf("%w: key %d has a %d-byte secret, want 32", errKeyFile, it.ID, len(it.Secret))
		}
		ks[i] = newKey(it.ID, [32]byte(it.Secret), it.Created)
	}
	if ks[1] != nil && ks[1].id == ks[0].id {
		return nil, fmt.Errorf("%w: both keys have id %d", errKeyFile, ks[0].id)
	}
	return &keyRing{cur: ks[0], prev: ks[1]}, nil
}

func marshalKeyFile(r *keyRing) []byte {
	f := keyFile{Version: 1}
	for _, k := range []*key{r.cur, r.prev} {
		if k != nil {
			f.Keys = append(f.Keys, keyFileItem{ID: k.id, Created: k.created.UTC(), Secret: k.secret[:]})
		}
	}
	b, _ := json.MarshalIndent(f, "", "  ") // cannot fail: plain types
	return append(b, '\n')
}

// keyStore persists key rings in a directory; the zero dir keeps nothing.
type keyStore struct {
	dir string
}

func (ks keyStore) path() string { return filepath.Join(ks.dir, keyFileName) }

// load reads the key ring; it returns (nil, nil) when there is none yet.
func (ks keyStore) load() (*keyRing, error) {
	if ks.dir == "" {
		return nil, nil
	}
	f, err := os.Open(ks.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("challenge: opening key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("challenge: stat key file: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has permissions %04o; it holds signing keys and must be 0600 (chmod 600 it, and rotate the keys if others could read it)",
			errKeyFile, ks.path(), perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("challenge: reading key file: %w", err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", errKeyFile, ks.path(), maxKeyFile)
	}
	r, err := parseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ks.path(), err)
	}
	return r, nil
}

// save writes the ring atomically (temporary file, fsync, rename) with 0600
// permissions.
func (ks keyStore) save(r *keyRing) error {
	if ks.dir == "" {
		return nil
	}
	if err := os.MkdirAll(ks.dir, 0o700); err != nil {
		return fmt.Errorf("challenge: creating state directory: %w", err)
	}
	tmp, err := os.CreateTemp(ks.dir, keyFileName+".*.tmp")
	if err != nil {
		return fmt.Errorf("challenge: creating key file: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("challenge: chmod key file: %w", err)
	}
	if _, err := tmp.Write(marshalKeyFile(r)); err != nil {
		tmp.Close()
		return fmt.Errorf("challenge: writing key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("challenge: syncing key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("challenge: closing key file: %w", err)
	}
	if err := os.Rename(name, ks.path()); err != nil {
		return fmt.Errorf("challenge: replacing key file: %w", err)
	}
	return nil
}

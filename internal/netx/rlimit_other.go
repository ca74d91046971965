//go:build !unix

package netx

// defaultMaxConns returns DefaultMaxConnsCeiling where the descriptor limit
// cannot be read.
func defaultMaxConns() int { return DefaultMaxConnsCeiling }

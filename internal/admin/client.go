package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the admin API; the CLI's block, unblock, blocks, purge and
// rotate-keys commands use it.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the admin API at addr (host:port or a URL).
func NewClient(addr, token string) *Client {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{base: strings.TrimSuffix(base, "/"), token: token, hc: &http.Client{Timeout: 10 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("calling the admin API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin API: %s (%s)", e.Error, resp.Status)
		}
		return fmt.Errorf("admin API: %s", resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("admin API: bad answer: %w", err)
		}
	}
	return nil
}

// Block blocks cidr (a network or a bare address) for ttl.
func (c *Client) Block(ctx context.Context, cidr string, ttl time.Duration, reason string) (Block, error) {
	var b Block
	err := c.do(ctx, http.MethodPost, "/api/v1/blocks", blockRequest{CIDR: cidr, TTL: ttl.String(), Reason: reason}, &b)
	return b, err
}

// Unblock removes the block of cidr.
func (c *Client) Unblock(ctx context.Context, cidr string) error {
	p, err := ParseCIDR(cidr)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/blocks/"+p.String(), nil, nil)
}

// Blocks lists the current blocks.
func (c *Client) Blocks(ctx context.Context) ([]Block, error) {
	var out struct {
		Blocks []Block `json:"blocks"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/blocks", nil, &out)
	return out.Blocks, err
}

// Purge removes cached entries under prefix ("" for all).
func (c *Client) Purge(ctx context.Context, prefix string) (int, error) {
	var out struct {
		Purged int `json:"purged"`
	}
	err := c.do(ctx, http.MethodDelete, "/api/v1/cache?prefix="+url.QueryEscape(prefix), nil, &out)
	return out.Purged, err
}

// RotateKeys rotates the challenge signing keys; with revokeAll every
// clearance issued so far stops working at once.
func (c *Client) RotateKeys(ctx context.Context, revokeAll bool) error {
	q := ""
	if revokeAll {
		q = "?revoke_all=true"
	}
	return c.do(ctx, http.MethodPost, "/api/v1/challenge/rotate"+q, nil, nil)
}

// RevokePrefix invalidates the clearances issued to one network.
func (c *Client) RevokePrefix(ctx context.Context, cidr string) error {
	p, err := ParseCIDR(cidr)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "/api/v1/challenge/revoke?prefix="+url.QueryEscape(p.String()), nil, nil)
}

// Status fetches the status document into out.
func (c *Client) Status(ctx context.Context, out any) error {
	return c.do(ctx, http.MethodGet, "/api/v1/status", nil, out)
}

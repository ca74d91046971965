package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxHeadBytes bounds a response head (status line and headers) and
// maxChunkLine a chunk-size line, so a broken server cannot make the reader
// buffer without end.
const (
	maxHeadBytes  = 64 << 10
	maxChunkLine  = 1 << 10
	maxBodyLength = 1 << 40
)

// errMalformed is wrapped by every error about a response that is not
// HTTP/1.x as RFC 9112 frames it.
var errMalformed = errors.New("malformed response")

// respInfo is what the load generator keeps of one response.
type respInfo struct {
	status int
	// close reports that the server will close the connection after this
	// response (Connection: close, or HTTP/1.0 without keep-alive).
	close bool
}

// readResponse reads one HTTP/1.x response to a request of method (HEAD
// answers have no body) from br and discards its body: Content-Length,
// chunked (trailers skipped) or, without either, until the connection
// closes. It allocates nothing for an ordinary response.
func readResponse(br *bufio.Reader, head bool) (respInfo, error) {
	var ri respInfo
	line, err := readLine(br)
	if err != nil {
		return ri, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return ri, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
	}
	minor := line[7]
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' || (len(line) > 12 && line[12] != ' ') {
		return ri, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
	}
	ri.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	ri.close = minor == '0'

	length := int64(-1)
	chunked := false
	headBytes := len(line)
	for {
		line, err = readLine(br)
		if err != nil {
			return ri, err
		}
		headBytes += len(line)
		if headBytes > maxHeadBytes {
			return ri, fmt.Errorf("%w: head longer than %d bytes", errMalformed, maxHeadBytes)
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return ri, fmt.Errorf("%w: header line %q", errMalformed, truncate(line))
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			n, perr := strconv.ParseInt(string(value), 10, 64)
			if perr != nil || n < 0 || n > maxBodyLength || (length >= 0 && n != length) {
				return ri, fmt.Errorf("%w: Content-Length %q", errMalformed, truncate(value))
			}
			length = n
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = containsFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if containsFold(value, "close") {
				ri.close = true
			} else if containsFold(value, "keep-alive") {
				ri.close = false
			}
		}
	}
	switch {
	case head || ri.status == 204 || ri.status == 304 || ri.status < 200:
		return ri, nil
	case chunked:
		return ri, discardChunked(br)
	case length >= 0:
		if _, err := br.Discard(int(length)); err != nil {
			return ri, fmt.Errorf("reading the body: %w", err)
		}
		return ri, nil
	default:
		// No length: the body runs to the end of the connection.
		ri.close = true
		if _, err := io.Copy(io.Discard, br); err != nil {
			return ri, fmt.Errorf("reading the body: %w", err)
		}
		return ri, nil
	}
}

// discardChunked skips a chunked body and its trailers.
func discardChunked(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if len(line) > maxChunkLine {
			return fmt.Errorf("%w: chunk-size line too long", errMalformed)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 || size > maxBodyLength {
			return fmt.Errorf("%w: chunk size %q", errMalformed, truncate(line))
		}
		if size == 0 {
			for n := 0; ; n++ { // trailers, then the empty line
				l, err := readLine(br)
				if err != nil {
					return err
				}
				if len(l) == 0 {
					return nil
				}
				if n > 100 {
					return fmt.Errorf("%w: too many trailers", errMalformed)
				}
			}
		}
		if _, err := br.Discard(int(size)); err != nil {
			return fmt.Errorf("reading a chunk: %w", err)
		}
		l, err := readLine(br)
		if err != nil {
			return err
		}
		if len(l) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
}

// readLine returns the next line without its CRLF (or bare LF). The slice
// is valid until the next read from br. A line longer than the reader's
// buffer is an error.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, br.Size())
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring
// case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether b contains the lower-case ASCII s, ignoring
// case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if asciiEqualFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

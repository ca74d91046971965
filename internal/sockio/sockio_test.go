package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// pair returns a wrapped server-side connection and the plain client side
// of a loopback TCP connection.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	w := Wrap(server)
	t.Cleanup(func() { w.Close(); client.Close() })
	return w, client
}

func TestWrapIsRawOnLinux(t *testing.T) {
	s, _ := pair(t)
	_, raw := s.(*Conn)
	if raw != (runtime.GOOS == "linux") {
		t.Fatalf("Wrap gave %T on %s", s, runtime.GOOS)
	}
	if Unwrap(s) == nil {
		t.Fatal("Unwrap lost the TCPConn")
	}
	if c := (&net.UnixConn{}); Wrap(c) != net.Conn(c) {
		t.Fatal("a non-TCP conn was wrapped")
	}
}

func TestReadWrite(t *testing.T) {
	s, c := pair(t)
	msg := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := io.ReadAtLeast(s, buf, len(msg))
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// A write far larger than the socket buffers: the raw write returns
	// EAGAIN part-way and the poller resumes it as the client reads.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	done := make(chan error, 1)
	go func() {
		n, err := s.Write(big)
		if err == nil && n != len(big) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got, err := io.ReadAll(io.LimitReader(c, int64(len(big))))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big write arrived as %d bytes, %v", len(got), err)
	}
	if err := <-done; err != nil {
		t.Fatalf("big write: %v", err)
	}
	// The end of the stream is io.EOF.
	c.Close()
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after close: %d, %v", n, err)
	}
}

func TestDeadlinesAndErrors(t *testing.T) {
	s, c := pair(t)
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := s.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Fatalf("deadline honoured after %v", d)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error %#v is not a read OpError", err)
	}
	// Clearing the deadline lets a read wait for data again.
	s.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.Write([]byte("x"))
	}()
	if n, err := s.Read(make([]byte, 10)); n != 1 || err != nil {
		t.Fatalf("read after clearing the deadline: %d, %v", n, err)
	}
	// A write to a peer that reset the connection fails with ECONNRESET
	// or EPIPE, as a syscall error inside an OpError.
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	time.Sleep(20 * time.Millisecond)
	var werr error
	for i := 0; i < 10 && werr == nil; i++ {
		_, werr = s.Write([]byte("data"))
	}
	var se *os.SyscallError
	if !errors.As(werr, &oe) || oe.Op != "write" || !errors.As(werr, &se) {
		t.Fatalf("write to a reset peer: %#v", werr)
	}
	// Use after Close is net.ErrClosed.
	s.Close()
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

// TestConcurrentReadWrite: one reader and one writer at a time, as a
// TCPConn allows.
func TestConcurrentReadWrite(t *testing.T) {
	s, c := pair(t)
	const rounds = 2000
	var wg sync.WaitGroup
	wg.Go(func() { // echo client
		buf := make([]byte, 64)
		for i := 0; i < rounds; i++ {
			n, err := io.ReadFull(c, buf[:8])
			if err != nil || n != 8 {
				t.Errorf("client read: %v", err)
				return
			}
			if _, err := c.Write(buf[:8]); err != nil {
				t.Errorf("client write: %v", err)
				return
			}
		}
	})
	errs := make(chan error, 1)
	go func() {
		for i := 0; i < rounds; i++ {
			if _, err := s.Write([]byte("ping1234")); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	buf := make([]byte, 8*rounds)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !bytes.Equal(buf, bytes.Repeat([]byte("ping1234"), rounds)) {
		t.Fatal("echo corrupted")
	}
}

func BenchmarkEcho(b *testing.B) {
	for _, raw := range []bool{true, false} {
		name := "raw"
		if !raw {
			name = "net"
		}
		b.Run(name, func(b *testing.B) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if raw {
					c = Wrap(c)
				}
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if err != nil {
						c.Close()
						return
					}
					c.Write(buf[:n])
				}
			}()
			c, _ := net.Dial("tcp", ln.Addr().String())
			defer c.Close()
			msg := make([]byte, 256)
			buf := make([]byte, 256)
			b.ReportAllocs()
			for b.Loop() {
				c.Write(msg)
				io.ReadFull(c, buf)
			}
		})
	}
}

package testenv

import (
	"bytes"
	"sync"
)

// SyncBuffer collects a child process's output, which exec writes from its
// own goroutine, while the test reads it for a check or a failure message.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

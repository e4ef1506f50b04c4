package risk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// List is a set of addresses and CIDR ranges read from a plain-text file (one per line, '#'
// starts a comment). It reloads the file when its modification time or size changes; a file
// that fails to parse keeps the previous contents and logs why.
type List struct {
	path string
	log  *slog.Logger

	mu       sync.RWMutex
	prefixes []netip.Prefix
	modTime  time.Time
	size     int64
}

// OpenList loads the list at path. An empty path is an empty list that never reloads.
func OpenList(path string, log *slog.Logger) (*List, error) {
	if log == nil {
		log = slog.Default()
	}
	l := &List{path: path, log: log}
	if path == "" {
		return l, nil
	}
	if _, err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Contains reports whether ip is in the list.
func (l *List) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, p := range l.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Len is the number of entries.
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.prefixes)
}

// Reload re-reads the file if it changed; it reports whether it did.
func (l *List) Reload() (bool, error) {
	if l.path == "" {
		return false, nil
	}
	st, err := os.Stat(l.path)
	if err != nil {
		return false, fmt.Errorf("risk list %s: %w", l.path, err)
	}
	l.mu.RLock()
	same := st.ModTime().Equal(l.modTime) && st.Size() == l.size
	l.mu.RUnlock()
	if same {
		return false, nil
	}
	prefixes, err := parseList(l.path)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	l.prefixes, l.modTime, l.size = prefixes, st.ModTime(), st.Size()
	l.mu.Unlock()
	return true, nil
}

// Watch reloads the list every interval until ctx ends.
func (l *List) Watch(ctx context.Context, interval time.Duration) {
	if l.path == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := l.Reload()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				l.log.Warn("risk list reload failed; keeping the previous list", "path", l.path, "err", err)
			} else if err != nil {
				l.log.Warn("risk list missing; keeping the previous list", "path", l.path)
			} else if changed {
				l.log.Info("risk list reloaded", "path", l.path, "entries", l.Len())
			}
		}
	}
}

func parseList(path string) ([]netip.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("risk list: %w", err)
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(line, "/") {
			p, err = netip.ParsePrefix(line)
			p = p.Masked()
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(line)
			if err == nil {
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("risk list %s line %d: %q is not an address or CIDR", path, n, line)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("risk list %s: %w", path, err)
	}
	return out, nil
}

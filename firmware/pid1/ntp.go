package pid1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/beevik/ntp"
	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// stepThreshold is the offset above which the clock is stepped; smaller
// ones are slewed so time never jumps under the node for a few ms.
const stepThreshold = 128 * time.Millisecond

// clockSync keeps the clock right with NTP (github.com/beevik/ntp, an
// SNTP client: one query per check, to the first server that answers).
type clockSync struct {
	servers  []string
	interval time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	state  api.ClockInfo
	fails  int                       // consecutive failed checks
	stepFn func(time.Duration) error // the clock adjustment, replaced in tests
}

func newClockSync(servers []string, interval time.Duration, log *slog.Logger) *clockSync {
	return &clockSync{servers: servers, interval: interval, log: log, stepFn: adjustClock}
}

func (c *clockSync) status() api.ClockInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// run checks the clock every interval; until the first success it
// retries sooner (the network may come up after us).
func (c *clockSync) run(ctx context.Context) error {
	if len(c.servers) == 0 {
		return nil
	}
	retry := 5 * time.Second
	for {
		err := c.syncOnce(ctx)
		wait := c.interval
		if err != nil && !c.status().Synced {
			wait, retry = retry, min(2*retry, c.interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// syncOnce queries the servers in order and adjusts the clock by the
// first valid answer.
func (c *clockSync) syncOnce(ctx context.Context) error {
	var errs []error
	for _, s := range c.servers {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		resp, err := ntp.QueryWithOptions(s, ntp.QueryOptions{Timeout: 5 * time.Second})
		if err == nil {
			err = resp.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		if err := c.stepFn(resp.ClockOffset); err != nil {
			errs = append(errs, fmt.Errorf("adjusting the clock: %w", err))
			break
		}
		c.mu.Lock()
		first := !c.state.Synced
		c.fails = 0
		c.state = api.ClockInfo{Synced: true, Server: s, LastSync: time.Now(), LastOffset: resp.ClockOffset.String()}
		c.mu.Unlock()
		if first || resp.ClockOffset.Abs() >= stepThreshold {
			c.log.Info("clock synchronised", "server", s, "offset", resp.ClockOffset.Round(time.Microsecond), "stratum", resp.Stratum)
		}
		if err := saveClock(clockFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("clock: saving", "err", err)
		}
		setRTC()
		return nil
	}
	err := errors.Join(errs...)
	c.mu.Lock()
	c.state.LastError = err.Error()
	c.fails++
	// The first failure, then every tenth: at boot the network often
	// comes up after the first tries, and a dead server must not fill
	// the log.
	report := c.fails == 1 || c.fails%10 == 0
	c.mu.Unlock()
	if report {
		c.log.Warn("clock: no NTP server answered", "err", err, "failures", c.fails)
	}
	return err
}

// adjustClock steps the clock for large offsets and slews it (adjtime's
// single-shot offset) for small ones.
func adjustClock(off time.Duration) error {
	if off.Abs() >= stepThreshold {
		tv := unix.NsecToTimeval(time.Now().Add(off).UnixNano())
		return unix.Settimeofday(&tv)
	}
	tx := unix.Timex{Modes: unix.ADJ_OFFSET_SINGLESHOT}
	// Offset is int32 on 386 and int64 elsewhere.
	reflect.ValueOf(&tx.Offset).Elem().SetInt(off.Microseconds())
	_, err := unix.Adjtimex(&tx)
	return err
}

// setRTC writes the time to the hardware clock when there is one, so a
// PC with a battery boots with the right time even without the network.
func setRTC() {
	f, err := os.OpenFile("/dev/rtc0", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	t := time.Now().UTC()
	unix.IoctlSetRTCTime(int(f.Fd()), &unix.RTCTime{
		Sec: int32(t.Second()), Min: int32(t.Minute()), Hour: int32(t.Hour()),
		Mday: int32(t.Day()), Mon: int32(t.Month()) - 1, Year: int32(t.Year()) - 1900,
	})
}

// clockSynced reports whether the clock can be trusted to stamp DNS
// cookies other nodes verify: NTP answered, or the operator turned NTP off
// (a box with a battery-backed RTC, or one kept right some other way).
func (b *box) clockSynced() bool {
	if b.cfg.System.NTP.Disabled || len(b.cfg.System.NTP.Servers) == 0 {
		return true
	}
	return b.clock != nil && b.clock.status().Synced
}

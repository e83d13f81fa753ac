package qemu

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// ntpServer answers SNTP requests with the host's clock, so a guest booted
// with its RTC in 2001 can be seen to set its clock from NTP.
func ntpServer(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 || buf[0]&7 != 3 { // client mode
				continue
			}
			recv := time.Now()
			resp := make([]byte, 48)
			resp[0] = 0<<6 | 4<<3 | 4 // no leap warning, version 4, server
			resp[1] = 2               // stratum
			resp[2] = buf[2]          // poll
			resp[3] = 0xec            // precision 2^-20
			copy(resp[12:16], "TEST")
			putNTPTime(resp[16:], recv.Add(-time.Minute)) // reference
			copy(resp[24:32], buf[40:48])                 // origin: the client's transmit time
			putNTPTime(resp[32:], recv)
			putNTPTime(resp[40:], time.Now())
			c.WriteTo(resp, addr)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func putNTPTime(b []byte, t time.Time) {
	const ntpEpochOffset = 2208988800
	binary.BigEndian.PutUint32(b, uint32(t.Unix()+ntpEpochOffset))
	binary.BigEndian.PutUint32(b[4:], uint32((uint64(t.Nanosecond())<<32)/1e9))
}

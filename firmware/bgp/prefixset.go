package bgp

// prefixSet is a hash set of packed prefixes (see packPrefix): open
// addressing with linear probing and backward-shift deletion, so a key
// costs its 8 bytes plus the free slots (8 to 16 bytes a key with the load
// kept between 3/8 and 3/4) instead of the ~32 bytes of a Go map. A full
// IPv4+IPv6 table, 1.2M prefixes, fits in 16 MiB. 0 marks a free slot;
// packPrefix never returns 0.
type prefixSet struct {
	slots []uint64
	shift uint // 64 - log2(len(slots))
	n     int
}

const minSetSlots = 64

func (s *prefixSet) len() int { return s.n }

// home is k's preferred slot: Fibonacci hashing spreads keys whose
// differences sit in the high bits, as addresses' do.
func (s *prefixSet) home(k uint64) int {
	return int((k * 0x9e3779b97f4a7c15) >> s.shift)
}

func (s *prefixSet) add(k uint64) {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.resize(max(2*len(s.slots), minSetSlots))
	}
	mask := len(s.slots) - 1
	for i := s.home(k); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return
		case 0:
			s.slots[i] = k
			s.n++
			return
		}
	}
}

func (s *prefixSet) remove(k uint64) {
	if s.n == 0 {
		return
	}
	mask := len(s.slots) - 1
	i := s.home(k)
	for ; s.slots[i] != k; i = (i + 1) & mask {
		if s.slots[i] == 0 {
			return
		}
	}
	// Pull later keys of the probe run back over the gap, so that lookups
	// never stop early at it.
	for j := (i + 1) & mask; s.slots[j] != 0; j = (j + 1) & mask {
		h := s.home(s.slots[j])
		// Move slots[j] to i unless its home lies cyclically in (i, j].
		if (i < j && (h <= i || h > j)) || (i > j && h <= i && h > j) {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = 0
	s.n--
	if len(s.slots) > minSetSlots && s.n*8 < len(s.slots)*3/2 {
		// Give memory back when a big table is mostly withdrawn.
		s.resize(len(s.slots) / 2)
	}
}

func (s *prefixSet) resize(size int) {
	old := s.slots
	s.slots = make([]uint64, size)
	s.shift = 64
	for size > 1 {
		size >>= 1
		s.shift--
	}
	s.n = 0
	for _, k := range old {
		if k != 0 {
			s.add(k)
		}
	}
}

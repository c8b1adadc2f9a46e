package emulator

import "slices"

// memberSet is the membership of one static list. The map answers
// membership in O(1); the sorted slice serves pages in ID order without
// sorting per page. Removals leave stale IDs in the slice (skipped while
// paging, compacted once they are half of it); adds past the end append,
// other adds wait in pending and are merged in before the next page.
type memberSet struct {
	set     map[int64]struct{}
	sorted  []int64 // ascending, unique; may hold stale IDs
	pending []int64 // members not yet in sorted, unordered
	stale   int     // IDs in sorted that are no longer members
}

func newMemberSet() *memberSet {
	return &memberSet{set: make(map[int64]struct{})}
}

// len returns the number of members.
func (m *memberSet) len() int { return len(m.set) }

// has reports whether id is a member.
func (m *memberSet) has(id int64) bool {
	_, ok := m.set[id]
	return ok
}

// add makes id a member; it reports whether it was not one already.
func (m *memberSet) add(id int64) bool {
	if m.has(id) {
		return false
	}
	m.set[id] = struct{}{}
	if len(m.pending) == 0 && (len(m.sorted) == 0 || id > m.sorted[len(m.sorted)-1]) {
		m.sorted = append(m.sorted, id)
	} else {
		m.pending = append(m.pending, id)
		// Merge before pending outgrows the list, so add/remove cycles
		// without reads cannot grow it without bound.
		if len(m.pending) > 1024 && len(m.pending) > len(m.set)/2 {
			m.normalize()
		}
	}
	return true
}

// remove ends id's membership; it reports whether it was a member.
func (m *memberSet) remove(id int64) bool {
	if !m.has(id) {
		return false
	}
	delete(m.set, id)
	m.stale++
	return true
}

// normalize merges pending members into sorted order and, when stale IDs
// make up half the slice, drops them.
func (m *memberSet) normalize() {
	if len(m.pending) == 0 && m.stale*2 <= len(m.sorted) {
		return
	}
	slices.Sort(m.pending)
	merged := make([]int64, 0, len(m.set))
	i, j := 0, 0
	for i < len(m.sorted) || j < len(m.pending) {
		var id int64
		switch {
		case j == len(m.pending) || i < len(m.sorted) && m.sorted[i] < m.pending[j]:
			id = m.sorted[i]
			i++
		case i == len(m.sorted) || m.pending[j] < m.sorted[i]:
			id = m.pending[j]
			j++
		default: // equal: a re-added member still present as stale
			id = m.sorted[i]
			i++
			j++
		}
		if m.has(id) && (len(merged) == 0 || merged[len(merged)-1] != id) {
			merged = append(merged, id)
		}
	}
	m.sorted, m.pending, m.stale = merged, nil, 0
}

// page returns up to n members with IDs greater than after, in ID order,
// and whether more follow.
func (m *memberSet) page(after int64, n int) ([]int64, bool) {
	m.normalize()
	i, _ := slices.BinarySearch(m.sorted, after+1)
	out := make([]int64, 0, min(n, len(m.set)))
	for ; i < len(m.sorted); i++ {
		id := m.sorted[i]
		if !m.has(id) {
			continue
		}
		if len(out) == n {
			return out, true
		}
		out = append(out, id)
	}
	return out, false
}

// all returns every member in ID order.
func (m *memberSet) all() []int64 {
	ids, _ := m.page(0, len(m.set))
	return ids
}

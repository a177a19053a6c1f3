// Package ringtest is the oracle of the recovery tests of durable queues,
// shared by the ring's own tests and the mpq package's: an account of where
// the records put into a ring lie, and what recovery must deliver, and
// count, given which of them are damaged. It does not import package ring
// (whose tests import it): the ring's sizes come in as fields.
package ringtest

import "slices"

// A Rec is where a record lies: a message (Seq >= 0) or a padding record
// that fills the end of the ring (Seq -1).
type Rec struct {
	Pos uint64
	N   int // payload bytes; for padding, the record's size less its header
	Seq int
}

// Pad reports whether c is a padding record.
func (c Rec) Pad() bool { return c.Seq < 0 }

// A Layout is an account of the records put into a ring, in position
// order: tests check it against the tail the ring records, then damage the
// records it names.
type Layout struct {
	Cap    uint64             // ring bytes
	Header uint64             // bytes of a record header (ring.DurableHeaderBytes)
	Size   func(n int) uint64 // ring bytes of a record of n bytes (ring.DurableRecordSize)
	Recs   []Rec              // every record put, padding included
	Tail   uint64             // the position after the last record
}

// Put accounts for message seq, of n bytes, written at the tail: after a
// padding record if it would cross the end of the ring.
func (l *Layout) Put(seq, n int) {
	size := l.Size(n)
	if idx := l.Tail & (l.Cap - 1); idx+size > l.Cap {
		l.Recs = append(l.Recs, Rec{Pos: l.Tail, N: int(l.Cap - idx - l.Header), Seq: -1})
		l.Tail += l.Cap - idx
	}
	l.Recs = append(l.Recs, Rec{Pos: l.Tail, N: n, Seq: seq})
	l.Tail += size
}

// From returns the records at or above pos.
func (l *Layout) From(pos uint64) []Rec {
	for i, c := range l.Recs {
		if c.Pos >= pos {
			return l.Recs[i:]
		}
	}
	return nil
}

// Expect returns the messages recovery must deliver, in order, and the
// number of damaged stretches it must count, given which of recs are
// damaged: every run of damaged records (padding included) is one stretch.
func Expect(recs []Rec, damaged func(Rec) bool) (seqs []int, torn uint64) {
	seqs = []int{}
	inRun := false
	for _, c := range recs {
		if damaged(c) {
			if !inRun {
				torn++
			}
			inRun = true
			continue
		}
		inRun = false
		if !c.Pad() {
			seqs = append(seqs, c.Seq)
		}
	}
	return seqs, torn
}

// Seqs returns the sequence numbers of the messages among recs, in order:
// what recovery delivers when nothing is damaged.
func Seqs(recs []Rec) []int {
	s := []int{}
	for _, c := range recs {
		if !c.Pad() {
			s = append(s, c.Seq)
		}
	}
	return s
}

// Cuts returns the ring indexes to truncate the ring at, for a test that
// zeroes it from there on, as the extension of a truncated file does:
// around each of recs, its start, points in its header (its header word,
// its checksum word), just after its header, in the middle and at the last
// byte of its payload, and its end (where only alignment padding follows);
// and the tail's index and the end of the ring.
func (l *Layout) Cuts(recs []Rec) []uint64 {
	var cs []uint64
	for _, c := range recs {
		idx := c.Pos & (l.Cap - 1)
		cs = append(cs, idx, idx+4, idx+8, idx+12, idx+l.Header)
		if c.N > 0 {
			cs = append(cs, idx+l.Header+uint64(c.N)/2, idx+l.Header+uint64(c.N)-1)
		}
		cs = append(cs, idx+l.Header+uint64(c.N))
	}
	cs = append(cs, l.Tail&(l.Cap-1), l.Cap)
	slices.Sort(cs)
	return slices.Compact(cs)
}

// padCovered is how many bytes of a padding record its checksum covers:
// the header word and the low half of the checksum word (the high half is
// zero).
const padCovered = 12

// TruncatedAt returns the damage, for Expect, of zeroing the ring from
// index cut on: a record is damaged if its header or payload reaches the
// zeros.
func (l *Layout) TruncatedAt(cut uint64) func(Rec) bool {
	return func(c Rec) bool {
		end := c.Pos&(l.Cap-1) + l.Header + uint64(c.N)
		if c.Pad() {
			end = c.Pos&(l.Cap-1) + padCovered
		}
		return end > cut
	}
}

// Pads returns the number of padding records among recs: how many times
// the ring wrapped while they were put.
func Pads(recs []Rec) int {
	n := 0
	for _, c := range recs {
		if c.Pad() {
			n++
		}
	}
	return n
}

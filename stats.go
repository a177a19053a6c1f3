package mpq

import (
	"fmt"
	"time"

	"mpq/internal/ring"
)

// Stats is a snapshot of a queue's state, read from its header.
type Stats struct {
	Name           string    // queue name; "" if anonymous
	Capacity       int       // ring size in bytes
	MaxMessageSize int       // largest message accepted
	Created        time.Time // when the queue file was created
	Len            int       // messages waiting, given back ones included
	Used           int       // ring bytes not yet reclaimed (waiting, held or given back)
	Puts           uint64    // messages put since creation
	Gets           uint64    // messages taken since creation, by Get or a first Receive
	Waits          uint64    // times a Put or Get slept waiting
	Recovered      uint64    // locks taken over from processes that died holding them
	InFlight       int       // deliveries held by consumers or given back, not yet done
	Acks           uint64    // deliveries acknowledged
	Redelivered    uint64    // deliveries given back by Nack, an expired lease or a dead consumer
	DeadLettered   uint64    // messages that reached MaxDeliveries (moved to DeadLetter, or dropped)
	Torn           uint64    // damaged records dropped by crash recovery (durable queues)
	Sealed         bool      // Seal was called
	Procs          []Proc    // processes attached now
}

// Proc describes a process attached to a queue.
type Proc struct {
	PID      int       // process ID (in the PID namespace of the process that attached)
	Slot     int       // process-table slot
	Since    time.Time // when it attached
	Producer bool      // it has put
	Consumer bool      // it has got
}

// Stats returns a snapshot of the queue's counters and attached processes.
// It returns the zero Stats on a closed handle.
func (q *Queue) Stats() Stats {
	if !q.enter() {
		return Stats{}
	}
	defer q.leave()
	c, err := q.r.Counts()
	if err != nil {
		return Stats{}
	}
	s := Stats{
		Name: q.name, Capacity: int(q.r.Capacity()), MaxMessageSize: int(q.r.MaxMessage()),
		Created: q.r.Created(), Len: int(min(c.Len, 1<<62)), Used: int(c.Used), Puts: c.Puts, Gets: c.Gets,
		Waits: c.Waits, Recovered: c.Recovered, Sealed: c.Sealed,
		InFlight: int(c.InFlight), Acks: c.Acks, Redelivered: c.Redelivered, DeadLettered: c.Dead, Torn: c.Torn,
	}
	for _, p := range q.r.Procs() {
		s.Procs = append(s.Procs, Proc{
			PID: p.PID, Slot: p.Slot, Since: p.Since,
			Producer: p.Role&ring.RoleProducer != 0, Consumer: p.Role&ring.RoleConsumer != 0,
		})
	}
	return s
}

// String summarizes the stats on one line.
func (s Stats) String() string {
	name := s.Name
	if name == "" {
		name = "(anonymous)"
	}
	sealed := ""
	if s.Sealed {
		sealed = " sealed"
	}
	return fmt.Sprintf("%s: %d msgs, %d/%d bytes, %d puts, %d gets, %d waits, %d procs%s",
		name, s.Len, s.Used, s.Capacity, s.Puts, s.Gets, s.Waits, len(s.Procs), sealed)
}

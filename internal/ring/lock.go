package ring

import (
	"sync/atomic"
	"time"
)

// Wait says how long an operation waits for a shared lock that a live
// process holds: [Try] gives up soon, [Block] until a channel closes.
// Either way the operation returns ErrClosed once Close has begun, and
// takes the lock over at once if its holder has died.
type Wait struct {
	try  bool
	done <-chan struct{}
}

// Try is the Wait of a try-operation: it gives up with ErrBusy after about
// a millisecond.
var Try = Wait{try: true}

// Block is the Wait of a blocking operation: it gives up with ErrCanceled
// once done closes. A nil done never closes: the operation waits for the
// holder to release the lock or die.
func Block(done <-chan struct{}) Wait { return Wait{done: done} }

// Lock spinning: a few hundred loads, then rounds of a liveness check of the
// holder followed by a yield (the first rounds) or a short sleep. Critical
// sections are a copy and a few stores long, so a holder that stays longer
// was descheduled, stopped or killed.
const (
	spinLoads  = 256
	spinYields = 4
	tryRounds  = 14 // rounds a try-operation waits on a live holder (~1 ms)
	lockSleep  = 100 * time.Microsecond
)

// lock takes the shared lock word w, waiting as wait says.
func (r *Ring) lock(w *uint32, wait Wait) error {
	if atomic.CompareAndSwapUint32(w, 0, r.self) {
		return nil
	}
	return r.lockSlow(w, wait)
}

func (r *Ring) lockSlow(w *uint32, wait Wait) error {
	rounds := 0
	for i := 0; ; i++ {
		v := atomic.LoadUint32(w)
		if v == 0 {
			if atomic.CompareAndSwapUint32(w, 0, r.self) {
				return nil
			}
			continue
		}
		// The caller holds this process's local mutex for the lock, so no
		// goroutine of ours can be the holder.
		if v == r.self || refGen(v) == 0 {
			return corrupt("lock word holds %#x", v)
		}
		if i < spinLoads {
			continue
		}
		// Test the holder before every yield or sleep: on a busy machine
		// one yield can last a whole time slice, and a dead holder must be
		// found within milliseconds whatever the load.
		if !r.alive(v) {
			if atomic.CompareAndSwapUint32(w, v, r.self) {
				atomic.StoreUint32(r.w.recount, 1)
				if w == r.w.consLock {
					atomic.OrUint32(r.w.repair, repairNeeded)
				}
				atomic.AddUint64(r.w.recovered, 1)
				return nil
			}
			continue
		}
		// A live holder keeps us waiting: unless the queue was found
		// corrupt meanwhile, when nothing is worth waiting for.
		if err := r.Corrupted(); err != nil {
			return err
		}
		if wait.try && rounds >= tryRounds {
			return ErrBusy
		}
		if r.closing.Load() {
			return ErrClosed
		}
		if wait.done != nil {
			select {
			case <-wait.done:
				return ErrCanceled
			default:
			}
		}
		if rounds < spinYields {
			r.env.Yield()
		} else {
			time.Sleep(lockSleep)
		}
		rounds++
	}
}

func (r *Ring) unlock(w *uint32) { atomic.StoreUint32(w, 0) }

// noRole is the role argument of lockCons for a caller that is no consumer.
const noRole = 0

// lockCons takes the consumer lock, repairing what a consumer that died
// holding it left behind. role, unless noRole, is recorded for this process
// first. The caller holds cmu.
func (r *Ring) lockCons(role uint32, wait Wait) error {
	if err := r.usable(); err != nil {
		return err
	}
	if role != noRole {
		r.setRole(role)
	}
	if err := r.lock(r.w.consLock, wait); err != nil {
		return err
	}
	if v := atomic.LoadUint32(r.w.repair); v != 0 {
		if v != repairNeeded {
			r.unlock(r.w.consLock)
			return r.stopRepair(v)
		}
		return r.repairLocked()
	}
	return nil
}

// repairLocked runs repair with the consumer lock held, releasing the lock
// if repair fails.
func (r *Ring) repairLocked() error {
	err := r.repair()
	if err != nil {
		r.unlock(r.w.consLock)
	}
	return err
}
